//! PSI triggers on `proc/pressure/*` handles (`--enable-psi-poll`).
//!
//! A trigger written to a handle is registered by `hostview` on the reader's
//! container's own pressure file; the descriptor that holds it is kept here with the
//! handle, in one epoll set a thread of its own waits on. The kernel's FUSE `poll`
//! works by notification: a POLL request that would wait carries a kernel handle,
//! answered at once with what is ready now, and the server sends `FUSE_NOTIFY_POLL`
//! with that handle when it changes, upon which the kernel asks again. So a POLL on a
//! handle with a trigger answers `POLLPRI` if the trigger fired since the last poll (the
//! kernel's PSI file clears the event as it reports it, and so do we) and nothing
//! otherwise, keeping the notifier; the epoll thread marks the trigger fired and sends
//! the notification.
//!
//! Without the flag nothing here runs: handles are never writable and POLL answers at
//! once, as before (LXCFS 7.0 kept every file's poll waiting, and readers hung).
//!
//! What a worker hand-off does: the descriptors holding the triggers are the worker's,
//! so the kernel drops the triggers with it, and the next worker does not know them
//! (nor the kernel handles of waiting pollers). A worker that is replaced on purpose
//! first wakes every waiting poller ([`Pollers::wake_all`]); a poller asking again is
//! answered as a handle without a trigger is (`POLLERR | POLLPRI` with the rest, like
//! the kernel's file without one) and must write its trigger again on a new handle.
//! A worker that crashes wakes no one itself, so the kernel handle of every poller it
//! left waiting is also kept in the connection's shared state
//! (`connection::Shared::poller_waits`), and the supervisor wakes those when a worker
//! dies; the next worker answers them as above.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};

use connection::Shared as Connection;
use fuser::{Errno, PollEvents, PollNotifier, Request};
use hostview::VirtualFile;
use rustix::event::epoll;

use crate::throttle::Throttle;
use crate::tree::{self, Kind};

/// Triggers one container (pid namespace) may hold at a time; past it a write fails
/// with `ENOSPC`. The kernel has no bound of its own per cgroup, and each trigger costs
/// it a timer and a wakeup per window.
pub const PER_CONTAINER: usize = 16;

/// The triggers of all containers together, from the worker's limit on open
/// descriptors (each trigger holds one): half of it, so that however many containers
/// hold triggers, the reads of every container still find descriptors to open their
/// cgroup and `/proc` files with. Past it a write fails with `ENOSPC` too.
fn in_all() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    usize::try_from(soft / 2).unwrap_or(usize::MAX)
}

struct Armed {
    fd: OwnedFd,
    owner: u64,
    fired: bool,
    waiter: Option<PollNotifier>,
}

#[derive(Default)]
struct Table {
    by_fh: HashMap<u64, Armed>,
    per_owner: HashMap<u64, usize>,
}

#[derive(Default)]
struct Shared {
    table: Mutex<Table>,
    /// Where waiting pollers' kernel handles are kept for the supervisor.
    conn: Option<Arc<Connection>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn waits(&self, w: &PollNotifier) {
        static SAID: Throttle = Throttle::new(std::time::Duration::from_secs(60));
        if let Some(c) = &self.conn {
            if !c.poller_waits(w.handle().0) && SAID.due() {
                tracing::warn!(
                    "PSI triggers: no room in the shared state to keep a waiting poller; \
                     should this worker crash, such pollers wait for their own timeout"
                );
            }
        }
    }

    /// `w` is notified or dropped: nobody waits on it any more.
    fn done(&self, w: &PollNotifier) {
        if let Some(c) = &self.conn {
            c.poller_done(w.handle().0);
        }
    }
}

/// The triggers of one worker.
pub struct Psi {
    shared: Arc<Shared>,
    /// The epoll set, made with its thread on the first trigger (after the worker's
    /// sandbox is in place, so the thread has it too).
    epoll: OnceLock<Option<Arc<OwnedFd>>>,
    /// Triggers all containers may hold (see [`in_all`]).
    limit: usize,
    /// Refusals for `limit` are said at most every 10 s.
    said_full: Throttle,
}

impl Psi {
    /// Triggers whose waiting pollers are kept in `conn` too (see the module), as many
    /// in all as half this process's limit on open descriptors.
    pub fn new(conn: Option<Arc<Connection>>) -> Psi {
        Psi::with_limit(conn, in_all())
    }

    fn with_limit(conn: Option<Arc<Connection>>, limit: usize) -> Psi {
        Psi {
            shared: Arc::new(Shared {
                table: Mutex::default(),
                conn,
            }),
            epoll: OnceLock::new(),
            limit,
            said_full: Throttle::new(std::time::Duration::from_secs(10)),
        }
    }

    /// `ENOSPC` for a container under [`PER_CONTAINER`] when all hold `limit`.
    fn full(&self, held: usize, owner: u64) -> Result<(), Errno> {
        if held < self.limit {
            return Ok(());
        }
        if self.said_full.due() {
            tracing::warn!(
                "PSI triggers: containers hold {held}, the most this worker keeps (half \
                 its limit on open files, RLIMIT_NOFILE): a new one from pid namespace \
                 {owner} fails with ENOSPC until others are closed"
            );
        }
        Err(Errno::ENOSPC)
    }

    fn epoll(&self) -> Option<Arc<OwnedFd>> {
        self.epoll
            .get_or_init(|| {
                let fd = epoll::create(epoll::CreateFlags::CLOEXEC)
                    .inspect_err(|e| tracing::error!("PSI triggers: no epoll set: {e}"))
                    .ok()?;
                let fd = Arc::new(fd);
                let (ep, shared) = (fd.clone(), self.shared.clone());
                std::thread::Builder::new()
                    .name("psi-poll".into())
                    .spawn(move || watch(&ep, &shared))
                    .inspect_err(|e| tracing::error!("PSI triggers: no thread: {e}"))
                    .ok()?;
                Some(fd)
            })
            .clone()
    }

    /// Keep `fd`, a registered trigger, for handle `fh` of container `owner`.
    /// `EBUSY` when the handle has one already (the kernel allows one per descriptor),
    /// `ENOSPC` past [`PER_CONTAINER`].
    pub fn admit(&self, fh: u64, owner: u64) -> Result<(), Errno> {
        let t = self.shared.lock();
        if t.by_fh.contains_key(&fh) {
            return Err(Errno::EBUSY);
        }
        if t.per_owner.get(&owner).copied().unwrap_or(0) >= PER_CONTAINER {
            return Err(Errno::ENOSPC);
        }
        self.full(t.by_fh.len(), owner)
    }

    /// Keep `fd` (checked with [`Psi::admit`] first) and watch it.
    pub fn add(&self, fh: u64, owner: u64, fd: OwnedFd) -> Result<(), Errno> {
        let ep = self.epoll().ok_or(Errno::ENOMEM)?;
        let mut t = self.shared.lock();
        if t.by_fh.contains_key(&fh) {
            return Err(Errno::EBUSY);
        }
        self.full(t.by_fh.len(), owner)?;
        let n = t.per_owner.entry(owner).or_insert(0);
        if *n >= PER_CONTAINER {
            return Err(Errno::ENOSPC);
        }
        epoll::add(
            ep.as_fd(),
            fd.as_fd(),
            epoll::EventData::new_u64(fh),
            epoll::EventFlags::PRI,
        )
        .map_err(|e| Errno::from_i32(e.raw_os_error()))?;
        *n += 1;
        t.by_fh.insert(
            fh,
            Armed {
                fd,
                owner,
                fired: false,
                waiter: None,
            },
        );
        Ok(())
    }

    /// The handle is closed: its trigger goes from the table and its count, and the
    /// descriptor to close (which removes it from the kernel and from the epoll set) is
    /// returned, for the caller to close after answering: the kernel's close of a
    /// trigger waits for an RCU grace period (and stops the group's poll thread with its
    /// last trigger), milliseconds during which other containers' RELEASEs would queue
    /// behind the table's lock, and the reader behind the answer.
    #[must_use = "the trigger stays armed until its descriptor is closed"]
    pub fn remove(&self, fh: u64) -> Option<OwnedFd> {
        let mut t = self.shared.lock();
        let a = t.by_fh.remove(&fh)?;
        if let Some(w) = &a.waiter {
            self.shared.done(w);
        }
        if let Some(n) = t.per_owner.get_mut(&a.owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.per_owner.remove(&a.owner);
            }
        }
        Some(a.fd)
    }

    /// What a POLL of handle `fh` answers, `None` when it has no trigger. The notifier
    /// is kept for the next event.
    pub fn poll(&self, fh: u64, ph: PollNotifier) -> Option<PollEvents> {
        let mut t = self.shared.lock();
        let a = t.by_fh.get_mut(&fh)?;
        if std::mem::take(&mut a.fired) {
            if let Some(w) = a.waiter.take() {
                self.shared.done(&w);
            }
            return Some(PollEvents::POLLPRI);
        }
        self.shared.waits(&ph);
        a.waiter = Some(ph);
        Some(PollEvents::empty())
    }

    /// What wakes this worker's pollers from outside the session.
    pub fn pollers(&self) -> Pollers {
        Pollers(self.shared.clone())
    }

    #[cfg(test)]
    fn count(&self, owner: u64) -> usize {
        self.shared
            .lock()
            .per_owner
            .get(&owner)
            .copied()
            .unwrap_or(0)
    }
}

/// The waiting pollers of a worker's triggers.
#[derive(Clone)]
pub struct Pollers(Arc<Shared>);

impl Pollers {
    /// Wake every waiting poller: a worker about to be replaced does, so that they ask
    /// again, and the next worker answers them.
    pub fn wake_all(&self) {
        let waiters: Vec<PollNotifier> = self
            .0
            .lock()
            .by_fh
            .values_mut()
            .filter_map(|a| a.waiter.take())
            .collect();
        for w in waiters {
            self.0.done(&w);
            let _ = w.notify();
        }
    }
}

/// The epoll thread: mark each trigger that fired and wake its poller.
fn watch(ep: &OwnedFd, shared: &Shared) {
    let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
    loop {
        events.clear();
        match epoll::wait(ep, rustix::buffer::spare_capacity(&mut events), None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::error!("PSI triggers: epoll_wait failed, no more events: {e}");
                return;
            }
        }
        let mut wake = Vec::new();
        {
            let mut t = shared.lock();
            for ev in &events {
                if let Some(a) = t.by_fh.get_mut(&ev.data.u64()) {
                    a.fired = true;
                    wake.extend(a.waiter.take());
                }
            }
        }
        for w in wake {
            shared.done(&w);
            if let Err(e) = w.notify() {
                tracing::debug!("FUSE_NOTIFY_POLL: {e}");
            }
        }
    }
}

/// Triggers as the FUSE handlers meet them.
impl crate::LxcFs {
    /// The pressure file behind `ino` when it takes PSI triggers (`--enable-psi-poll`).
    pub(crate) fn trigger_file(&self, ino: u64) -> Option<VirtualFile> {
        match tree::node(ino)?.kind {
            Kind::File(
                f @ (VirtualFile::PressureCpu
                | VirtualFile::PressureMemory
                | VirtualFile::PressureIo),
            ) if self.host.options().psi_poll => Some(f),
            _ => None,
        }
    }

    /// Register the trigger `data` written to handle `fh` (see `psi`); the bytes taken.
    pub(crate) fn write_trigger(
        &self,
        req: &Request,
        ino: u64,
        fh: u64,
        data: &[u8],
    ) -> Result<u32, Errno> {
        let file = self.trigger_file(ino).ok_or(Errno::EACCES)?;
        let owner = self.host.owner_of(req.pid());
        self.psi.admit(fh, owner)?;
        let fd = self
            .host
            .psi_trigger(req.pid(), file, data)
            .map_err(|e| Errno::from_i32(e.os_errno().unwrap_or_else(|| e.errno())))?;
        self.psi.add(fh, owner, fd)?;
        Ok(u32::try_from(data.len()).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn triggers_are_bounded_per_container_and_one_per_handle() {
        let psi = Psi::new(None);
        let fd = || rustix::pipe::pipe().unwrap().0;
        for fh in 0..PER_CONTAINER as u64 {
            assert!(psi.admit(fh, 7).is_ok());
            psi.add(fh, 7, fd()).unwrap();
        }
        assert_eq!(psi.admit(100, 7), Err(Errno::ENOSPC));
        assert_eq!(psi.add(100, 7, fd()), Err(Errno::ENOSPC));
        assert_eq!(psi.admit(0, 8), Err(Errno::EBUSY));
        // A neighbour is not affected.
        psi.add(200, 8, fd()).unwrap();
        drop(psi.remove(3));
        assert_eq!(psi.count(7), PER_CONTAINER - 1);
        psi.add(100, 7, fd()).unwrap();
        for fh in 0..=200 {
            drop(psi.remove(fh));
        }
        assert_eq!(psi.count(7), 0);
        assert_eq!(psi.count(8), 0);
    }

    #[test]
    fn triggers_of_all_containers_are_bounded_too() {
        let psi = Psi::with_limit(None, 20);
        let fd = || rustix::pipe::pipe().unwrap().0;
        for fh in 0..16 {
            psi.add(fh, 1, fd()).unwrap();
        }
        for fh in 100..104 {
            assert!(psi.admit(fh, 2).is_ok());
            psi.add(fh, 2, fd()).unwrap();
        }
        // Both under their own bound, refused for the bound of all.
        assert_eq!(psi.admit(104, 2), Err(Errno::ENOSPC));
        assert_eq!(psi.add(104, 2, fd()), Err(Errno::ENOSPC));
        assert_eq!(psi.admit(200, 3), Err(Errno::ENOSPC));
        assert_eq!(psi.add(200, 3, fd()), Err(Errno::ENOSPC));
        drop(psi.remove(0));
        psi.add(200, 3, fd()).unwrap();
        assert_eq!(psi.count(3), 1);
        assert_eq!(psi.admit(201, 3), Err(Errno::ENOSPC));
    }
}
