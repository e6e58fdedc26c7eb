//! The containers' notification descriptors, and the threads that answer them.
//!
//! One epoll instance watches every descriptor, each armed `EPOLLONESHOT`: exactly one
//! thread takes a ready descriptor, receives and answers one call, and re-arms it. So a
//! container calling sysinfo in a tight loop holds at most one thread at a time and
//! the others keep answering everyone else. (`SECCOMP_IOCTL_NOTIF_RECV` blocks when
//! nothing is pending: only the thread that was woken may receive.)

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hostview::Host;
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};

use super::answer;

/// One container's filter.
pub struct Listener {
    pub fd: OwnedFd,
    pub name: String,
}

pub struct Registry {
    epoll: OwnedFd,
    listeners: Mutex<HashMap<u64, Arc<Listener>>>,
    next: AtomicU64,
    /// A live upgrade is under way: threads stop taking calls (see `handover`).
    paused: AtomicBool,
    /// Threads serving, and those of them stopped by `paused`.
    threads: AtomicUsize,
    parked: AtomicUsize,
}

/// How long a thread waits for a call before it looks at `paused` again.
const WAKE: rustix::time::Timespec = rustix::time::Timespec {
    tv_sec: 0,
    tv_nsec: 50_000_000,
};

const ARMED: EventFlags = EventFlags::IN.union(EventFlags::ONESHOT);

impl Registry {
    pub fn new() -> rustix::io::Result<Registry> {
        Ok(Registry {
            epoll: epoll::create(CreateFlags::CLOEXEC)?,
            listeners: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            paused: AtomicBool::new(false),
            threads: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Listener>>> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, fd: OwnedFd, name: String) -> rustix::io::Result<()> {
        if let Err(e) = super::sys::sync_wake_up(&fd) {
            tracing::debug!("container {name}: no synchronous wake-ups ({e})");
        }
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let l = Arc::new(Listener { fd, name });
        self.lock().insert(token, l.clone());
        if let Err(e) = epoll::add(&self.epoll, &l.fd, EventData::new_u64(token), ARMED) {
            self.lock().remove(&token);
            return Err(e);
        }
        Ok(())
    }

    /// Stop taking calls; [`drained`](Self::drained) once no thread answers one.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Every answering thread is stopped between two calls.
    pub fn drained(&self) -> bool {
        self.parked.load(Ordering::SeqCst) == self.threads.load(Ordering::SeqCst)
    }

    /// Every container's listener.
    pub fn descriptors(&self) -> Vec<Arc<Listener>> {
        self.lock().values().cloned().collect()
    }

    /// Answer calls forever (one of the answering threads).
    pub fn serve(&self, host: &Host) {
        self.threads.fetch_add(1, Ordering::SeqCst);
        let mut events = Vec::with_capacity(1);
        loop {
            if self.paused.load(Ordering::SeqCst) {
                self.parked.fetch_add(1, Ordering::SeqCst);
                while self.paused.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                self.parked.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            events.clear();
            if let Err(e) = epoll::wait(&self.epoll, spare(&mut events), Some(&WAKE)) {
                if e != rustix::io::Errno::INTR {
                    tracing::error!("epoll_wait: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                continue;
            }
            for ev in &events {
                self.ready(ev, host);
            }
        }
    }

    fn ready(&self, ev: &Event, host: &Host) {
        let token = ev.data.u64();
        let flags = ev.flags;
        let Some(l) = self.lock().get(&token).cloned() else {
            return;
        };
        if flags.contains(EventFlags::IN) {
            answer::one(l.fd.as_fd(), host);
        }
        // HUP: no task uses the filter any more (the container is gone).
        if flags.intersects(EventFlags::HUP | EventFlags::ERR) {
            self.remove(token, &l);
            return;
        }
        if let Err(e) = epoll::modify(&self.epoll, &l.fd, EventData::new_u64(token), ARMED) {
            tracing::warn!("container {}: cannot re-arm its listener: {e}", l.name);
            self.remove(token, &l);
        }
    }

    fn remove(&self, token: u64, l: &Listener) {
        let _ = epoll::delete(&self.epoll, &l.fd);
        if self.lock().remove(&token).is_some() {
            tracing::info!("container {} is gone", l.name);
        }
    }
}

fn spare(v: &mut Vec<Event>) -> rustix::buffer::SpareCapacity<'_, Event> {
    rustix::buffer::spare_capacity(v)
}
