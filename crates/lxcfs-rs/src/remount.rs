//! `lxcfs-rs --remount MOUNTPOINT`: after the supervisor and its worker both died (a
//! case the supervisor cannot cover), running containers are left with bind mounts of a
//! dead FUSE connection. Once a new lxcfs-rs serves MOUNTPOINT, this binds the same files
//! again inside every such container's mount namespace, in place of the dead ones.
//!
//! How: for each mount namespace (found through `/proc/<pid>/ns/mnt`), its mountinfo
//! lists lxcfs-rs mounts; one whose `statfs` through `/proc/<pid>/root` fails with
//! ENOTCONN/ECONNABORTED is dead, and its mountinfo root field names the file of ours it
//! showed. We clone that file's mount from the live mountpoint (`open_tree`), enter the
//! namespace (`setns`, fine: this process is single-threaded), detach the dead mount,
//! attach the clone (`move_mount`), and go back.

use std::collections::HashSet;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rustix::fs::{CWD, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{MoveMountFlags, OpenTreeFlags, UnmountFlags, move_mount, open_tree, unmount};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

struct Stale {
    /// Where it is mounted, as the namespace sees it.
    target: String,
    /// Which of our files it showed (`/proc/meminfo`; `/` for the whole tree).
    file: String,
}

pub fn run(mountpoint: &Path) -> Result<()> {
    let mountpoint = std::fs::canonicalize(mountpoint)
        .with_context(|| format!("cannot use {}", mountpoint.display()))?;
    if !crate::mountpoint::is_ours(&mountpoint) || rustix::fs::statfs(&mountpoint).is_err() {
        bail!(
            "{} is not served by a live lxcfs-rs: start it first, then remount",
            mountpoint.display()
        );
    }
    let own = ns_of("self")?;
    let home = rustix::fs::open(
        "/proc/self/ns/mnt",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context("cannot open our own mount namespace")?;
    let mut seen = HashSet::from([own]);
    let (mut fixed, mut failed, mut namespaces) = (0usize, 0usize, 0usize);
    for pid in pids()? {
        let Ok(ns) = ns_of(&pid.to_string()) else {
            continue;
        };
        if !seen.insert(ns) {
            continue;
        }
        let stale = stale_mounts(pid);
        if stale.is_empty() {
            continue;
        }
        namespaces += 1;
        match rebind(pid, &stale, &mountpoint, &home) {
            Ok(n) => {
                fixed += n;
                failed += stale.len() - n;
            }
            Err(e) => {
                failed += stale.len();
                tracing::error!("remount in the mount namespace of pid {pid}: {e:#}");
            }
        }
    }
    // A closed stdout must not turn a finished remount into a panic.
    let _ = writeln!(
        std::io::stdout(),
        "lxcfs-rs: rebound {fixed} files in {namespaces} mount namespaces from {}{}",
        mountpoint.display(),
        if failed > 0 {
            format!("; {failed} could not be rebound (see above)")
        } else {
            String::new()
        }
    );
    if failed > 0 {
        bail!("{failed} dead mounts left");
    }
    Ok(())
}

fn pids() -> Result<Vec<u32>> {
    Ok(std::fs::read_dir("/proc")
        .context("cannot list /proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect())
}

fn ns_of(pid: &str) -> Result<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .with_context(|| format!("no mount namespace for {pid}"))
}

/// This namespace's lxcfs-rs mounts whose connection is dead.
fn stale_mounts(pid: u32) -> Vec<Stale> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
        return Vec::new();
    };
    procfile::mountinfo::entries(&text)
        .filter(|m| m.fstype == connection::FSTYPE || m.source == connection::SOURCE)
        .filter(|m| {
            let through = format!("/proc/{pid}/root{}", m.mount_point);
            matches!(
                rustix::fs::statfs(through.as_str()),
                Err(Errno::NOTCONN | Errno::CONNABORTED)
            )
        })
        .map(|m| Stale {
            target: m.mount_point,
            file: m.root,
        })
        .collect()
}

/// Rebind `stale` in `pid`'s mount namespace; returns how many were rebound.
fn rebind(pid: u32, stale: &[Stale], mountpoint: &Path, home: &OwnedFd) -> Result<usize> {
    // Clone the live files here, where the live mount is visible.
    let mut clones = Vec::new();
    for s in stale {
        let src = mountpoint.join(s.file.trim_start_matches('/'));
        let tree = open_tree(
            CWD,
            &src,
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .with_context(|| format!("cannot clone {}", src.display()))?;
        clones.push(tree);
    }
    let ns = rustix::fs::open(
        format!("/proc/{pid}/ns/mnt").as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Mount)).context("setns")?;
    let mut done = 0;
    for (s, tree) in stale.iter().zip(&clones) {
        let r = unmount(s.target.as_str(), UnmountFlags::DETACH).and_then(|()| {
            move_mount(
                tree.as_fd(),
                "",
                CWD,
                s.target.as_str(),
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
            )
        });
        match r {
            Ok(()) => {
                done += 1;
                tracing::info!("pid {pid}: rebound {} on {}", s.file, s.target);
            }
            Err(e) => tracing::error!("pid {pid}: cannot rebind {} on {}: {e}", s.file, s.target),
        }
    }
    move_into_link_name_space(home.as_fd(), Some(LinkNameSpaceType::Mount))
        .context("cannot return to our mount namespace")?;
    Ok(done)
}
