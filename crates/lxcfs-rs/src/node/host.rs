//! Acting on the node from a privileged container: its namespaces, and files on it.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

/// Enter the mount and cgroup namespaces of `pid`, a process of the node. Our pid
/// namespace must already be the node's (hostPID): the daemon we start must see every
/// container's processes, and `pid` must mean the same process to us and to it.
///
/// Must run while this process has one thread: the kernel refuses a mount-namespace
/// switch to a process whose threads share its filesystem context.
pub fn enter(pid: u32) -> Result<()> {
    let ns = |kind: &str| format!("/proc/{pid}/ns/{kind}");
    let same = |kind: &str| -> Result<bool> {
        let ours = std::fs::metadata(format!("/proc/self/ns/{kind}"))
            .with_context(|| format!("cannot read our {kind} namespace"))?;
        let theirs = std::fs::metadata(ns(kind))
            .with_context(|| format!("cannot read the {kind} namespace of pid {pid}"))?;
        Ok(ours.ino() == theirs.ino() && ours.dev() == theirs.dev())
    };
    if !same("pid")? {
        bail!(
            "pid {pid} is in another pid namespace than ours: run this container with hostPID: true"
        );
    }
    // Both opened before either switch: after the mount switch, /proc is the node's.
    let cgroup =
        File::open(ns("cgroup")).with_context(|| format!("cannot open {}", ns("cgroup")))?;
    let mnt = File::open(ns("mnt")).with_context(|| format!("cannot open {}", ns("mnt")))?;
    if !same("cgroup")? {
        move_into_link_name_space(cgroup.as_fd(), Some(LinkNameSpaceType::ControlGroup))
            .context("cannot enter the node's cgroup namespace (is the container privileged?)")?;
    }
    if !same("mnt")? {
        move_into_link_name_space(mnt.as_fd(), Some(LinkNameSpaceType::Mount))
            .context("cannot enter the node's mount namespace (is the container privileged?)")?;
        std::env::set_current_dir("/").context("cannot change to the node's /")?;
    }
    Ok(())
}

/// Put `content` at `path` unless it is already there, atomically (a temporary file in
/// the same directory renamed over it), so that a process running the old file keeps
/// its image and a reader never sees half a file. Returns whether it changed.
pub fn install_file(path: &Path, content: &[u8], mode: u32) -> Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == content) {
        return Ok(false);
    }
    let dir = path
        .parent()
        .with_context(|| format!("{} has no directory", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".new");
    let tmp = dir.join(tmp_name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(content)
        .and_then(|()| f.set_permissions(std::fs::Permissions::from_mode(mode)))
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn install_file_replaces_by_rename_and_only_when_different() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bin/lxcfs-rs");
        assert!(install_file(&p, b"one", 0o755).unwrap());
        let first = std::fs::metadata(&p).unwrap();
        assert_eq!(first.permissions().mode() & 0o777, 0o755);
        assert!(!install_file(&p, b"one", 0o755).unwrap());
        assert_eq!(std::fs::metadata(&p).unwrap().ino(), first.ino());
        assert!(install_file(&p, b"two", 0o755).unwrap());
        // A new inode: a process running the old binary keeps its image.
        assert_ne!(std::fs::metadata(&p).unwrap().ino(), first.ino());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path().join("bin")).unwrap().count(), 1);
    }
}
