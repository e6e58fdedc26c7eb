//! What the daemon tells operators: Prometheus metrics, health and readiness, served by
//! the supervisor on a root-only unix socket (always) and on a TCP address when asked
//! (`--metrics-addr`).
//!
//! Where the numbers live: the workers count requests into memory the supervisor
//! created and hands to each of them (`connection::counters`), so a worker that is
//! killed or upgraded loses nothing and counters never reset while the supervisor
//! lives (a supervisor that adopts a dead one's workers takes their counters too). The
//! supervisor, which does no filesystem work, answers the scrapes: a worker busy or
//! dying never makes a scrape wait, and a scrape never takes a serving thread.

pub mod exposition;
pub mod process;
mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use connection::Counters;

pub use server::{Listener, get_unix, serve};

/// How long `/readyz` waits for a read of the mount.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the endpoint reads, shared between the supervisor's loop and the thread that
/// answers requests.
#[derive(Debug)]
pub struct State {
    pub counters: Arc<Counters>,
    /// The serving worker's pid (0: none yet).
    pub worker: AtomicU32,
    pub host_files: AtomicBool,
    pub mountpoint: PathBuf,
    /// A readiness read that has not come back yet: no second one is started while it
    /// hangs (each would hold a thread).
    probing: AtomicBool,
}

impl State {
    pub fn new(counters: Arc<Counters>, mountpoint: &Path) -> State {
        State {
            counters,
            worker: AtomicU32::new(0),
            host_files: AtomicBool::new(false),
            mountpoint: mountpoint.to_path_buf(),
            probing: AtomicBool::new(false),
        }
    }

    pub fn scrape(&self) -> exposition::Scrape {
        let worker = self.worker.load(Ordering::Relaxed);
        exposition::Scrape {
            counters: self.counters.snapshot(),
            supervisor: process::read(std::process::id()),
            worker: (worker != 0).then(|| process::read(worker)).flatten(),
            host_files: self.host_files.load(Ordering::Relaxed),
        }
    }

    /// Whether a read of the mount answers within [`READY_TIMEOUT`]. The read runs in a
    /// thread of its own: a worker that hangs must not hang the endpoint.
    pub fn ready(self: &Arc<Self>) -> Result<(), String> {
        if self.probing.swap(true, Ordering::AcqRel) {
            return Err("an earlier read of the mount has not come back".into());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("readyz".into())
            .spawn(move || {
                let r = std::fs::read(me.mountpoint.join("proc/uptime"));
                me.probing.store(false, Ordering::Release);
                let _ = tx.send(r);
            });
        if let Err(e) = spawned {
            self.probing.store(false, Ordering::Release);
            return Err(format!("cannot start a probe: {e}"));
        }
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(b)) if !b.is_empty() => Ok(()),
            Ok(Ok(_)) => Err("proc/uptime read empty".into()),
            Ok(Err(e)) => Err(format!("proc/uptime: {e}")),
            Err(_) => Err(format!(
                "proc/uptime did not answer within {}s",
                READY_TIMEOUT.as_secs()
            )),
        }
    }
}

/// Removes the socket file when the supervisor returns from serving (a stale file left
/// by a crash is replaced at the next start and answers no one meanwhile).
pub struct RemoveOnExit(pub PathBuf);

impl Drop for RemoveOnExit {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
