//! Recovering from a supervisor crash. Its workers outlive it and keep serving, so the
//! containers' files keep working; a new `lxcfs-rs` on the same mountpoint finds such an
//! orphaned worker, takes a duplicate of its FUSE connection (`pidfd_getfd`) and
//! supervises it from then on, replacing the orphan with a worker of its own.

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use connection::{Counters, Shared, WorkerArgs};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};

/// A worker of a dead supervisor still serving `mountpoint`.
pub struct Orphan {
    pub pid: Pid,
    pub fuse: OwnedFd,
    /// Its generation: ours must be higher, or file handles could collide.
    pub generation: u64,
    /// The connection's shared state, which our workers must share with it (a fresh
    /// one if it had none to share).
    pub shared: Shared,
    /// The daemon's counters, which go on from where the dead supervisor left them
    /// (none from a version that kept none, or when they cannot be taken).
    pub counters: Option<Counters>,
}

/// Find the orphaned worker(s) serving `mountpoint` and take the connection from one.
/// Only called while we hold the pidfile lock, i.e. no supervisor is alive.
pub fn adopt(mountpoint: &Path) -> Result<Vec<Orphan>> {
    let want = mountpoint.to_string_lossy();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
            .and_then(Pid::from_raw)
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let mut argv = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(std::ffi::OsStr::from_bytes);
        let is_ours = argv
            .next()
            .is_some_and(|a| a.as_bytes().ends_with(b"lxcfs-rs"));
        let args: Vec<&std::ffi::OsStr> = argv.collect();
        if !is_ours || !connection::args::is_worker(&args) {
            continue;
        }
        let Ok(worker) = WorkerArgs::from_args(&args) else {
            continue;
        };
        if worker.mountpoint.as_os_str().as_bytes() != want.as_bytes() {
            continue;
        }
        // A worker whose supervisor lives is not ours to take, whatever pidfile that
        // supervisor holds: two supervisors must never serve one connection.
        if let Some(parent) = parent_supervisor(pid) {
            bail!(
                "{} is already served by a running lxcfs-rs (pid {parent}); stop it first",
                mountpoint.display()
            );
        }
        let pidfd = pidfd_open(pid, PidfdFlags::empty())
            .with_context(|| format!("cannot open orphaned worker {}", pid.as_raw_nonzero()))?;
        let take = |n: i32, what: &str| {
            pidfd_getfd(&pidfd, n, PidfdGetfdFlags::empty()).with_context(|| {
                format!(
                    "cannot take {what} from orphaned worker {}",
                    pid.as_raw_nonzero()
                )
            })
        };
        let fuse = take(worker.fuse_fd, "the FUSE connection")?;
        let fds = worker
            .shared_fds
            .iter()
            .map(|&n| take(n, "the connection's shared state"))
            .collect::<Result<Vec<_>>>()?;
        let shared = Shared::from_fds_or_new(fds)
            .with_context(|| format!("orphaned worker {}'s shared state", pid.as_raw_nonzero()))?;
        let counters = worker.counters_fd.and_then(|n| {
            take(n, "the daemon's counters")
                .and_then(|fd| Ok(Counters::from_fd(fd)?))
                .inspect_err(|e| tracing::warn!("counting from zero: {e:#}"))
                .ok()
        });
        found.push(Orphan {
            pid,
            fuse,
            generation: worker.generation,
            shared,
            counters,
        });
    }
    if found.is_empty() {
        bail!(
            "{} is served by lxcfs-rs but no supervisor or worker for it was found",
            mountpoint.display()
        );
    }
    Ok(found)
}

/// The pid of `pid`'s parent if that parent is an lxcfs-rs process (a live supervisor;
/// an orphan's parent is init or a subreaper).
fn parent_supervisor(pid: Pid) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.as_raw_nonzero())).ok()?;
    let ppid = procfile::pid::parse_status(&status).ppid?;
    let cmdline = std::fs::read(format!("/proc/{ppid}/cmdline")).ok()?;
    let argv0 = cmdline.split(|&b| b == 0).next()?;
    argv0.ends_with(b"lxcfs-rs").then_some(ppid as i32)
}
