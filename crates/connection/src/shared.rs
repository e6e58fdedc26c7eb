//! What every process serving one FUSE connection must agree on, kept in memory they
//! all map: whether the connection's INIT was answered (a worker started after that must
//! not wait for it), and, for FUSE passthrough, one memfd and one backing id per virtual
//! file and how many pure-passthrough opens of each are live. The supervisor creates it
//! before the first worker and hands the same descriptors to every worker it starts (a
//! supervisor that adopts orphaned workers takes them from them), so a worker that
//! replaces another answers with the ids the kernel already has attached to the inodes
//! (another id would fail the open, `EIO`) and never rewrites a memfd a pure open of a
//! dead worker may still be reading.
//!
//! The state lives in a sealed memfd mapped by every worker, as 64-bit words:
//!
//! | word | meaning |
//! |---|---|
//! | 0 | [`MAGIC`] |
//! | 1 | [`STATE_NEW`] until the first worker has answered INIT; then [`STATE_ON`] (ids registered) or [`STATE_OFF`] (no passthrough on this connection) |
//! | 2 | number of files (the layout below), checked by every process that maps it |
//! | 3 | 1 once INIT was answered (0 in the state of versions that did not keep it) |
//! | 4 + 4·i .. | file i (in [`VirtualFile::ALL`] order): backing id (0: none), live pure opens, content version, lock holder pid |
//! | 256 .. | poller slots: the kernel poll handle (`kh`) of each poller waiting on a PSI trigger, 0 when free; to the end of the first page ([`POLLERS`]) in states of versions before 65 280 slots, to the end of the state since |
//!
//! The poller slots let the supervisor wake, after a worker died, the pollers that
//! worker had promised a notification (`FUSE_NOTIFY_POLL`, [`crate::notify_poll`]):
//! the triggers died with it, and without a wake-up a poller would sleep until its own
//! timeout (forever for `poll(-1)`); woken, it polls again, and the next worker tells
//! it its trigger is gone. The first 256 lie inside the first page, which every
//! version of this state has (zeroed), and there every worker scans them all, as older
//! versions do; a state of this version has more after it, where a handle is kept in
//! a window its hash points to. A supervisor of an older version adopting workers on
//! such a state takes only the first 256 slots: a poller kept past them is not woken
//! after a crash (it waits for its own timeout), as past the 256 slots before.
//!
//! The backing files exist only on a connection that wants passthrough; without them
//! the descriptors handed on are the state alone. They are memfds, which pure opens'
//! renderings are written to ([`Backing::Memfds`]), or a namespace file that cannot be
//! read or mapped, which only makes the kernel refuse mappings of the served files
//! ([`Backing::Unmappable`]); the descriptors say which (only a memfd has seals).

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

use hostview::VirtualFile;

use crate::sys::SharedWords;
use rustix::fs::MemfdFlags;

const MAGIC: u64 = u64::from_le_bytes(*b"lxcfsPT1");
pub const STATE_NEW: u64 = 0;
pub const STATE_ON: u64 = 1;
pub const STATE_OFF: u64 = 2;
const INITIALIZED: usize = 3;
const HEADER: usize = 4;
const PER_FILE: usize = 4;
const ID: usize = 0;
const PURE: usize = 1;
const VERSION: usize = 2;
const LOCK: usize = 3;
/// Attempts at the lock before giving up on a pure answer (it is held for a pwrite).
const LOCK_SPINS: u32 = 200;

/// The first poller slot, and how many the first page holds (every version's state
/// has that page).
const POLLERS_AT: usize = 256;
pub const POLLERS: usize = 256;
/// Words of the state this build makes: its poller slots go on past the first page, so
/// that a host's thousands of containers' triggers can each be kept (65 280 slots in
/// 512 KiB of shared memory, allocated as touched: all of it once a supervisor has
/// looked for a dead worker's pollers).
const STATE_WORDS: usize = 1 << 16;
/// A handle's slot is looked for among this many from where its hash points: bounded
/// work per poll, however large the table.
const POLLER_PROBES: usize = 64;

fn words_needed() -> usize {
    HEADER + PER_FILE * VirtualFile::ALL.len()
}

/// Words mapped: the files' and the poller slots (within the first 4 KiB page, which
/// the state of every version has).
fn words_mapped() -> usize {
    words_needed().max(POLLERS_AT + POLLERS)
}

const _: () = assert!(HEADER + PER_FILE * VirtualFile::ALL.len() <= POLLERS_AT);
const _: () = assert!((POLLERS_AT + POLLERS) * 8 <= 4096);

/// What backs the virtual files of a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// No FUSE passthrough: opens are answered with direct I/O alone.
    None,
    /// One memfd per file: a pure open's rendering is written to it and the kernel
    /// serves the reads.
    Memfds,
    /// Every open carries direct I/O and, as its backing file, a namespace file of
    /// the daemon's (nsfs), which can be neither read nor mapped: reads still come to
    /// the daemon, and a mapping is refused (`ENODEV`) where direct I/O alone would map
    /// the page cache that every container's reads share.
    ///
    /// The kernel's own `/proc` and sysfs files would answer as the files we mirror,
    /// but the kernel refuses them as backing files (`ELOOP`: nothing may stack on
    /// procfs or kernfs); nsfs allows it and has no `read`, `mmap` or `O_DIRECT`.
    Unmappable,
}

/// How a connection's files are read, as settled when its first worker answered INIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reads {
    /// No worker has answered INIT yet.
    #[default]
    Unsettled,
    /// Pure passthrough from memfds (`--fuse-passthrough`): a mapping of a served file
    /// maps the memfd, the most recent pure open's rendering.
    Passthrough,
    /// Served by the daemon; the unmappable backing refuses every mapping.
    DaemonMmapRefused,
    /// Served by the daemon with direct I/O alone (no passthrough on this kernel, or,
    /// before Linux 6.12, none that takes the unmappable backing): a private mapping is
    /// filled through the page cache.
    Daemon,
}

impl Reads {
    pub const ALL: [Reads; 4] = [
        Reads::Unsettled,
        Reads::Passthrough,
        Reads::DaemonMmapRefused,
        Reads::Daemon,
    ];

    /// Its label in metrics and `status --json`.
    pub fn name(self) -> &'static str {
        match self {
            Reads::Unsettled => "unsettled",
            Reads::Passthrough => "passthrough",
            Reads::DaemonMmapRefused => "daemon_mmap_refused",
            Reads::Daemon => "daemon",
        }
    }
}

/// The backing file of [`Backing::Unmappable`].
const UNMAPPABLE: &str = "/proc/self/ns/uts";

pub struct Shared {
    state_fd: OwnedFd,
    words: SharedWords,
    /// One per virtual file, or none (no passthrough).
    backing: Vec<File>,
    /// The backing files are memfds that renderings are written to.
    writable: bool,
}

impl Shared {
    /// New state for a connection that no worker has served yet, with a backing file
    /// per virtual file when it is to try FUSE passthrough.
    pub fn create(backing: Backing) -> std::io::Result<Shared> {
        Shared::create_sized(backing, STATE_WORDS)
    }

    fn create_sized(backing: Backing, words: usize) -> std::io::Result<Shared> {
        let (state, words) = SharedWords::create("lxcfs-rs:connection", words)?;
        let mut files = Vec::new();
        match backing {
            Backing::None => {}
            Backing::Memfds => {
                for f in VirtualFile::ALL {
                    let name = format!("lxcfs-rs:{}", f.name());
                    files.push(File::from(rustix::fs::memfd_create(
                        name.as_str(),
                        MemfdFlags::CLOEXEC,
                    )?));
                }
            }
            Backing::Unmappable => {
                let ns = File::open(UNMAPPABLE).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot open {UNMAPPABLE}: {e}"))
                })?;
                for _ in VirtualFile::ALL {
                    files.push(ns.try_clone()?);
                }
            }
        }
        let w = words.words();
        w[0].store(MAGIC, Ordering::Relaxed);
        w[2].store(VirtualFile::ALL.len() as u64, Ordering::Relaxed);
        Ok(Shared {
            state_fd: state,
            words,
            backing: files,
            writable: backing == Backing::Memfds,
        })
    }

    /// What a worker's supervisor handed on: its descriptors, or none from a supervisor
    /// of a version that shared nothing when it ran without passthrough (then a state of
    /// our own, without passthrough).
    pub fn from_fds_or_new(fds: Vec<OwnedFd>) -> std::io::Result<Shared> {
        if fds.is_empty() {
            Shared::create(Backing::None)
        } else {
            Shared::from_fds(fds)
        }
    }

    /// The bookkeeping another process created: its descriptors in [`fds`](Self::fds)
    /// order.
    pub fn from_fds(mut fds: Vec<OwnedFd>) -> std::io::Result<Shared> {
        if fds.len() != 1 && fds.len() != 1 + VirtualFile::ALL.len() {
            return Err(std::io::Error::other(format!(
                "shared state: {} backing files, this build serves {} files",
                fds.len().saturating_sub(1),
                VirtualFile::ALL.len()
            )));
        }
        let backing: Vec<File> = fds.split_off(1).into_iter().map(File::from).collect();
        let writable = backing
            .first()
            .is_some_and(|m| rustix::fs::fcntl_get_seals(m).is_ok());
        let state_fd = fds.remove(0);
        // All of it: the state of an older version is its first page, a newer one's
        // may hold more poller slots.
        let words = SharedWords::map_all(&state_fd, words_mapped(), STATE_WORDS)?;
        let w = words.words();
        if w[0].load(Ordering::Relaxed) != MAGIC
            || w[2].load(Ordering::Relaxed) != VirtualFile::ALL.len() as u64
        {
            return Err(std::io::Error::other(
                "shared state was made by an incompatible lxcfs-rs build",
            ));
        }
        Ok(Shared {
            state_fd,
            words,
            backing,
            writable,
        })
    }

    /// The descriptors to hand to another process: the state first, then one memfd per
    /// file.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        std::iter::once(self.state_fd.as_fd())
            .chain(self.backing.iter().map(|m| m.as_fd()))
            .collect()
    }

    pub fn state(&self) -> u64 {
        self.words.words()[1].load(Ordering::Acquire)
    }

    /// Whether the connection has backing files for passthrough (it was created
    /// wanting it).
    pub fn wants_passthrough(&self) -> bool {
        !self.backing.is_empty()
    }

    /// How the files are read (settled by the first worker's INIT).
    pub fn reads(&self) -> Reads {
        match self.state() {
            STATE_NEW => Reads::Unsettled,
            STATE_ON if self.writable => Reads::Passthrough,
            STATE_ON => Reads::DaemonMmapRefused,
            _ => Reads::Daemon,
        }
    }

    /// Whether the backing files are memfds that renderings are written to; without,
    /// every open that carries one is served with direct I/O as well.
    pub fn holds_renderings(&self) -> bool {
        self.writable
    }

    /// Whether some worker answered the connection's INIT: later ones must not wait
    /// for it. Also true once passthrough was settled, which happens at INIT, for the
    /// state of versions that did not keep the flag.
    pub fn initialized(&self) -> bool {
        self.words.words()[INITIALIZED].load(Ordering::Acquire) != 0 || self.state() != STATE_NEW
    }

    /// Said by the worker that answers INIT, and by a supervisor adopting a connection.
    pub fn set_initialized(&self) {
        self.words.words()[INITIALIZED].store(1, Ordering::Release);
    }

    /// Called once per connection, by the worker that answered INIT, before it serves
    /// any request: register every memfd (when passthrough was negotiated) and publish
    /// the ids. A file whose registration fails is served without passthrough for the
    /// life of the connection, like every file when `negotiated` is false.
    ///
    /// `backing` registers one memfd with the connection and returns its id (the
    /// transport's `FUSE_DEV_IOC_BACKING_OPEN`).
    pub fn register(
        &self,
        negotiated: bool,
        mut backing: impl FnMut(&File) -> std::io::Result<u32>,
    ) {
        if self.state() != STATE_NEW {
            return;
        }
        let mut registered = 0;
        if negotiated {
            for (i, memfd) in self.backing.iter().enumerate() {
                match backing(memfd) {
                    Ok(id) => {
                        self.file(i)[ID].store(u64::from(id), Ordering::Relaxed);
                        registered += 1;
                    }
                    Err(e) if !self.writable => {
                        // One backing file for all: the kernel refuses it for every file.
                        tracing::warn!(
                            "FUSE passthrough: this kernel does not take a backing file that \
                             cannot be read ({e}; Linux 6.12+ does): a shared mapping of a \
                             served file is refused, a private one is filled through the \
                             page cache"
                        );
                        break;
                    }
                    Err(e) => tracing::warn!(
                        "FUSE passthrough: cannot register a backing file for {} ({e}); \
                         serving it with direct I/O",
                        VirtualFile::ALL.get(i).map_or("?", |f| f.name())
                    ),
                }
            }
        }
        let state = if registered > 0 { STATE_ON } else { STATE_OFF };
        self.words.words()[1].store(state, Ordering::Release);
        if registered > 0 && self.writable {
            tracing::info!("FUSE passthrough: {registered} backing files registered");
        } else if registered > 0 {
            tracing::info!(
                "FUSE passthrough off: reads are served with direct I/O, and {registered} \
                 files carry an unmappable backing file, so mmap is refused (ENODEV)"
            );
        }
    }

    fn file(&self, i: usize) -> &[AtomicU64] {
        self.words.range(HEADER + PER_FILE * i, PER_FILE)
    }

    fn word(&self, i: usize, w: usize) -> Option<&AtomicU64> {
        self.file(i).get(w)
    }

    /// File `i`'s backing id, if the connection has one for it.
    pub fn id(&self, i: usize) -> Option<u32> {
        if self.state() != STATE_ON {
            return None;
        }
        let id = self.word(i, ID)?.load(Ordering::Relaxed);
        u32::try_from(id).ok().filter(|&id| id != 0)
    }

    pub fn pure(&self, i: usize) -> u64 {
        self.word(i, PURE)
            .map_or(u64::MAX, |w| w.load(Ordering::Acquire))
    }

    pub fn add_pure(&self, i: usize) {
        if let Some(w) = self.word(i, PURE) {
            w.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A pure open of file `i` was released (never below zero: a release we could not
    /// count, for instance after a restart, must not make the count lie low).
    pub fn release_pure(&self, i: usize) {
        if let Some(w) = self.word(i, PURE) {
            let _ = w.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1));
        }
    }

    pub fn version(&self, i: usize) -> u64 {
        self.word(i, VERSION)
            .map_or(0, |w| w.load(Ordering::Acquire))
    }

    /// Make memfd `i` hold exactly `content`; the new version on success. The version
    /// moves first, so a failed write leaves no process believing it knows the content.
    /// Only under [`lock`](Self::lock) and with no pure open live.
    pub fn rewrite(&self, i: usize, content: &[u8]) -> std::io::Result<u64> {
        let (Some(memfd), Some(v)) = (self.backing.get(i), self.word(i, VERSION)) else {
            return Err(std::io::Error::other("no such file"));
        };
        if !self.writable {
            return Err(std::io::Error::other("the backing file is not a memfd"));
        }
        let version = v.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        memfd.write_all_at(content, 0)?;
        memfd.set_len(content.len() as u64)?;
        Ok(version)
    }

    /// The cross-process lock of file `i`, if it can be had at once or after a short
    /// spin. A holder that died is replaced (its pid no longer exists).
    pub fn lock(&self, i: usize) -> Option<LockGuard<'_>> {
        let w = self.word(i, LOCK)?;
        let me = u64::from(std::process::id());
        for spin in 0..LOCK_SPINS {
            match w.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Some(LockGuard { word: w, me }),
                Err(holder) if holder == me => return None,
                Err(holder) => {
                    if spin % 50 == 49 && !alive(holder) {
                        let _ = w.compare_exchange(holder, 0, Ordering::AcqRel, Ordering::Relaxed);
                    }
                    std::thread::yield_now();
                }
            }
        }
        None
    }
}

/// The poller slots.
impl Shared {
    fn pollers(&self) -> &[AtomicU64] {
        self.words.words().get(POLLERS_AT..).unwrap_or(&[])
    }

    /// The slots where handle `kh` may be kept: [`POLLER_PROBES`] from where its hash
    /// points, around the table. (Workers of versions that scanned the first page's 256
    /// from its start keep theirs there; the supervisor takes every slot.)
    fn poller_window(&self, kh: u64) -> impl Iterator<Item = &AtomicU64> {
        let slots = self.pollers();
        let n = slots.len().max(1);
        // A state of one page: all of its 256, as its own version scans them.
        let (start, probes) = if slots.len() <= POLLERS {
            (0, slots.len())
        } else {
            // Fibonacci hashing: kernel handles are sequential, their slots spread.
            let h = (kh.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17) as usize % n;
            (h, POLLER_PROBES)
        };
        (0..probes).filter_map(move |i| slots.get((start + i) % n))
    }

    /// A poller with kernel handle `kh` waits for a notification from this worker;
    /// false when its slots are all taken (it then waits for its own timeout if the
    /// worker dies). A handle already kept is not kept twice (but for two threads
    /// keeping it at once, which costs a second wake-up).
    pub fn poller_waits(&self, kh: u64) -> bool {
        if kh == 0 {
            return false;
        }
        if self
            .poller_window(kh)
            .any(|w| w.load(Ordering::Acquire) == kh)
        {
            return true;
        }
        self.poller_window(kh).any(|w| {
            w.compare_exchange(0, kh, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// The poller with handle `kh` was notified, or its file closed.
    pub fn poller_done(&self, kh: u64) {
        if kh == 0 {
            return;
        }
        for w in self.poller_window(kh) {
            let _ = w.compare_exchange(kh, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Every kept handle, emptying the slots: the pollers a dead worker left waiting.
    pub fn take_pollers(&self) -> Vec<u64> {
        self.pollers()
            .iter()
            .filter(|w| w.load(Ordering::Relaxed) != 0)
            .map(|w| w.swap(0, Ordering::AcqRel))
            .filter(|&kh| kh != 0)
            .collect()
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("state", &self.state())
            .field("files", &self.backing.len())
            .finish()
    }
}

pub struct LockGuard<'a> {
    word: &'a AtomicU64,
    me: u64,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self
            .word
            .compare_exchange(self.me, 0, Ordering::Release, Ordering::Relaxed);
    }
}

fn alive(pid: u64) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// For the tests of the crates that use the state.
impl Shared {
    /// As if a first worker had registered every file.
    #[doc(hidden)]
    pub fn set_ids_for_test(&self) {
        for i in 0..VirtualFile::ALL.len() {
            if let Some(w) = self.word(i, ID) {
                w.store(100 + i as u64, Ordering::Relaxed);
            }
        }
        self.words.words()[1].store(STATE_ON, Ordering::Release);
    }

    #[doc(hidden)]
    pub fn memfd_for_test(&self, i: usize) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let n = self.backing[i].read_at(&mut buf, 0).unwrap_or(0);
        buf.truncate(n);
        buf
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// What another process would inherit.
    fn fds_of(a: &Shared) -> Vec<OwnedFd> {
        a.fds()
            .iter()
            .map(|f| f.try_clone_to_owned().unwrap())
            .collect()
    }

    #[test]
    fn poller_slots_are_shared_bounded_and_emptied_by_take() {
        let a = Shared::create(Backing::None).unwrap();
        let b = Shared::from_fds(fds_of(&a)).unwrap();
        assert!(!a.poller_waits(0), "0 is no handle");
        assert!(a.poller_waits(5));
        assert!(a.poller_waits(5), "kept once");
        assert!(b.poller_waits(9));
        a.poller_done(9);
        assert_eq!(b.take_pollers(), vec![5]);
        assert!(a.take_pollers().is_empty());
        // A host's worth: 16 triggers for each of 2 000 containers, handles as the
        // kernel numbers them (in sequence, with other opens between).
        let many: Vec<u64> = (0..32_000u64).map(|i| 1_000 + 3 * i).collect();
        for &kh in &many {
            assert!(a.poller_waits(kh), "{kh} not kept");
        }
        b.poller_done(many[7]);
        let mut all = b.take_pollers();
        all.sort_unstable();
        assert_eq!(all.len(), many.len() - 1);
        assert!(!all.contains(&many[7]) && all.contains(&many[8]));
        // The slots do not overlap the files' words.
        assert_eq!(a.id(VirtualFile::ALL.len() - 1), None);
    }

    /// The state of a version whose slots were the first page's 256: a worker of this
    /// one keeps as many handles there, and refuses them once all are taken.
    #[test]
    fn a_one_page_state_keeps_its_256() {
        let old = Shared::create_sized(Backing::None, words_mapped()).unwrap();
        let new = Shared::from_fds(fds_of(&old)).unwrap();
        let kept: Vec<u64> = (1..=1_000u64).filter(|&kh| new.poller_waits(kh)).collect();
        assert_eq!(kept.len(), POLLERS);
        let refused = (1..=1_000u64).find(|kh| !kept.contains(kh)).unwrap();
        assert!(!new.poller_waits(refused));
        let mut taken = old.take_pollers();
        taken.sort_unstable();
        assert_eq!(taken, kept);
        assert!(new.poller_waits(refused), "room again");
    }

    #[test]
    fn a_second_process_sees_the_same_words_and_files() {
        let a = Shared::create(Backing::Memfds).unwrap();
        let fds = fds_of(&a);
        let b = Shared::from_fds(fds).unwrap();
        assert_eq!(b.state(), STATE_NEW);
        a.file(3)[ID].store(7, Ordering::Relaxed);
        a.words.words()[1].store(STATE_ON, Ordering::Relaxed);
        assert_eq!(b.id(3), Some(7));
        assert_eq!(b.id(4), None);
        b.add_pure(3);
        assert_eq!(a.pure(3), 1);
        a.release_pure(3);
        a.release_pure(3);
        assert_eq!(b.pure(3), 0, "never below zero");
        let v = a.rewrite(3, b"hello").unwrap();
        assert_eq!(b.version(3), v);
        let mut buf = [0u8; 8];
        let n = b.backing[3].read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf[..n], b"hello");
    }

    #[test]
    fn initialized_is_shared_with_or_without_passthrough() {
        for backing in [Backing::None, Backing::Memfds, Backing::Unmappable] {
            let passthrough = backing != Backing::None;
            let a = Shared::create(backing).unwrap();
            assert_eq!(
                a.fds().len(),
                if passthrough {
                    1 + VirtualFile::ALL.len()
                } else {
                    1
                }
            );
            let fds = fds_of(&a);
            let b = Shared::from_fds(fds).unwrap();
            assert_eq!(b.wants_passthrough(), passthrough);
            assert_eq!(b.holds_renderings(), backing == Backing::Memfds);
            assert!(!b.initialized());
            a.set_initialized();
            assert!(b.initialized());
        }
        // An earlier version's state: no flag, but passthrough was settled at INIT.
        let c = Shared::create(Backing::Memfds).unwrap();
        c.register(false, |_| Ok(1));
        assert_eq!(c.state(), STATE_OFF);
        assert!(c.initialized());
    }

    #[test]
    fn reads_say_what_init_settled() {
        for (backing, negotiated, want) in [
            (Backing::Memfds, true, Reads::Passthrough),
            (Backing::Unmappable, true, Reads::DaemonMmapRefused),
            (Backing::Memfds, false, Reads::Daemon),
            (Backing::Unmappable, false, Reads::Daemon),
            (Backing::None, true, Reads::Daemon),
        ] {
            let a = Shared::create(backing).unwrap();
            assert_eq!(a.reads(), Reads::Unsettled);
            a.register(negotiated, |_| Ok(7));
            let b = Shared::from_fds(fds_of(&a)).unwrap();
            assert_eq!(b.reads(), want, "{backing:?}, negotiated: {negotiated}");
        }
    }

    #[test]
    fn an_unmappable_backing_the_kernel_refuses_is_tried_once() {
        let a = Shared::create(Backing::Unmappable).unwrap();
        let mut tries = 0;
        a.register(true, |_| {
            tries += 1;
            Err(std::io::Error::from_raw_os_error(libc::EOPNOTSUPP))
        });
        assert_eq!(tries, 1);
        assert_eq!(a.reads(), Reads::Daemon);
        assert_eq!(a.id(0), None);
    }

    #[test]
    fn an_unmappable_backing_is_never_written() {
        let a = Shared::create(Backing::Unmappable).unwrap();
        let b = Shared::from_fds(fds_of(&a)).unwrap();
        for s in [&a, &b] {
            assert!(!s.holds_renderings());
            assert!(s.rewrite(0, b"not the kernel's").is_err());
        }
    }

    #[test]
    fn the_lock_excludes_and_a_dead_holder_is_replaced() {
        let a = Shared::create(Backing::Memfds).unwrap();
        let g = a.lock(1).unwrap();
        assert!(a.lock(1).is_none(), "held by this process");
        drop(g);
        assert!(a.lock(1).is_some());
        // A pid that cannot exist holds it: taken over.
        a.file(1)[LOCK].store(u64::from(u32::MAX >> 1), Ordering::Relaxed);
        assert!(a.lock(1).is_some());
    }

    #[test]
    fn a_wrong_layout_is_refused() {
        let a = Shared::create(Backing::Memfds).unwrap();
        let mut fds: Vec<OwnedFd> = fds_of(&a);
        fds.pop();
        assert!(Shared::from_fds(fds).is_err());
        let fds = fds_of(&a);
        a.words.words()[0].store(1, Ordering::Relaxed);
        assert!(Shared::from_fds(fds).is_err());
    }
}
