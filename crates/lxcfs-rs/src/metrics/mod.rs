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
//!
//! Per-container numbers are not metrics (a label per container is unbounded): the
//! busiest few of the last window are a JSON document at `/containers` on the same
//! sockets, which `status` shows.

pub mod exposition;
pub mod process;
mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

use connection::{Counters, Reads};

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
    /// How the connection's files are read ([`Reads::ALL`] index).
    reads: AtomicU8,
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
            reads: AtomicU8::new(0),
            mountpoint: mountpoint.to_path_buf(),
            probing: AtomicBool::new(false),
        }
    }

    pub fn set_reads(&self, reads: Reads) {
        let i = Reads::ALL.iter().position(|&r| r == reads).unwrap_or(0);
        self.reads
            .store(u8::try_from(i).unwrap_or(0), Ordering::Relaxed);
    }

    pub fn scrape(&self) -> exposition::Scrape {
        let worker = self.worker.load(Ordering::Relaxed);
        exposition::Scrape {
            counters: self.counters.snapshot(),
            supervisor: process::read(std::process::id()),
            worker: (worker != 0).then(|| process::read(worker)).flatten(),
            host_files: self.host_files.load(Ordering::Relaxed),
            reads: Reads::ALL
                .get(usize::from(self.reads.load(Ordering::Relaxed)))
                .copied()
                .unwrap_or(Reads::Unsettled),
        }
    }

    /// `/containers`: the busiest containers of the last window, as JSON.
    pub fn containers_json(&self) -> String {
        let b = self.counters.busiest();
        let window = b.window_ms as f64 / 1000.0;
        let doc = BusiestDoc {
            window_seconds: window,
            published_unix_seconds: b.published_unix_ms as f64 / 1000.0,
            containers: b
                .containers
                .into_iter()
                .map(|c| BusyDoc {
                    reads_per_second: if window > 0.0 {
                        c.reads as f64 / window
                    } else {
                        0.0
                    },
                    cgroup: c.cgroup,
                    pidns: c.pidns,
                    reads: c.reads,
                    reads_total: c.reads_total,
                })
                .collect(),
        };
        serde_json::to_string(&doc).unwrap_or_else(|_| "{}".into()) + "\n"
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

/// The `/containers` document (and its part of `status --json`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BusiestDoc {
    /// The window the reads were counted over (0: nothing published yet).
    pub window_seconds: f64,
    pub published_unix_seconds: f64,
    /// Busiest first, at most ten.
    pub containers: Vec<BusyDoc>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BusyDoc {
    /// Its cgroup as the host names it (memory controller's, else cgroup2's).
    pub cgroup: String,
    /// Its pid namespace inode.
    pub pidns: u64,
    /// Files read over the window, per second.
    pub reads_per_second: f64,
    /// Files read over the window.
    pub reads: u64,
    /// Files read since the serving worker first saw it.
    pub reads_total: u64,
}
