//! Recovering from a supervisor crash. Its workers outlive it and keep serving, so the
//! containers' files keep working; a new `lxcfs-rs` on the same mountpoint finds such an
//! orphaned worker, takes a duplicate of its FUSE connection (`pidfd_getfd`) and
//! supervises it from then on, replacing the orphan with a worker of its own.

use std::os::fd::OwnedFd;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};

/// A worker of a dead supervisor still serving `mountpoint`.
pub struct Orphan {
    pub pid: Pid,
    pub fuse: OwnedFd,
    /// Its `--generation`: ours must be higher, or file handles could collide.
    pub generation: u64,
    /// The connection's passthrough bookkeeping (`--pt-fds`), which our workers must
    /// share with it.
    pub share: Option<fusefs::PtShare>,
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
        let args: Vec<&[u8]> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        let is_worker = args.iter().any(|a| *a == b"--worker")
            && args.last().is_some_and(|a| *a == want.as_bytes())
            && args.first().is_some_and(|a| a.ends_with(b"lxcfs-rs"));
        if !is_worker {
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
        let fd_num = arg_after::<i32>(&args, b"--fuse-fd");
        let Some(fd_num) = fd_num else { continue };
        let generation = arg_after::<u64>(&args, b"--generation").unwrap_or(0);
        let pidfd = pidfd_open(pid, PidfdFlags::empty())
            .with_context(|| format!("cannot open orphaned worker {}", pid.as_raw_nonzero()))?;
        let fuse = pidfd_getfd(&pidfd, fd_num, PidfdGetfdFlags::empty()).with_context(|| {
            format!(
                "cannot take the FUSE connection from orphaned worker {}",
                pid.as_raw_nonzero()
            )
        })?;
        let share = match arg_after::<String>(&args, b"--pt-fds") {
            None => None,
            Some(list) => {
                let mut fds = Vec::new();
                for n in list.split(',') {
                    let n: i32 = n.parse().with_context(|| format!("bad --pt-fds {list}"))?;
                    fds.push(
                        pidfd_getfd(&pidfd, n, PidfdGetfdFlags::empty()).with_context(|| {
                            format!(
                                "cannot take the passthrough state from orphaned worker {}",
                                pid.as_raw_nonzero()
                            )
                        })?,
                    );
                }
                Some(fusefs::PtShare::from_fds(fds).with_context(|| {
                    format!(
                        "orphaned worker {}'s passthrough state",
                        pid.as_raw_nonzero()
                    )
                })?)
            }
        };
        found.push(Orphan {
            pid,
            fuse,
            generation,
            share,
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

/// The value following `flag` in a command line, parsed.
fn arg_after<T: std::str::FromStr>(args: &[&[u8]], flag: &[u8]) -> Option<T> {
    args.windows(2)
        .find(|w| w[0] == flag)
        .and_then(|w| std::str::from_utf8(w[1]).ok())
        .and_then(|s| s.parse().ok())
}
