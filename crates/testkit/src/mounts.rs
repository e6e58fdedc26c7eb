//! The FUSE mounts a test or the benchmark made, as `/proc/self/mountinfo` lists them.

use std::fs;
use std::path::Path;

use procfile::mountinfo::unescape;
use rustix::mount::{UnmountFlags, unmount};

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone)]
pub struct MountEntry {
    pub id: u64,
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
}

/// Our mount namespace's mounts; empty when mountinfo cannot be read.
pub fn mounts() -> Vec<MountEntry> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some(MountEntry {
                id: pre.first()?.parse().ok()?,
                mount_point: unescape(pre.get(4)?),
                fstype: post.first()?.to_string(),
                source: unescape(post.get(1)?),
            })
        })
        .collect()
}

/// The FUSE mounts at `path`, bottom first.
pub fn fuse_mounts_at(path: &Path) -> Vec<MountEntry> {
    let target = path.to_string_lossy();
    mounts()
        .into_iter()
        .filter(|m| m.mount_point == target && m.fstype.starts_with("fuse"))
        .collect()
}

pub fn is_mounted(path: &Path) -> bool {
    !fuse_mounts_at(path).is_empty()
}

/// Detach every FUSE mount at `path` (the `umount -l` of a cleanup).
pub fn force_unmount(path: &Path) {
    for _ in 0..8 {
        if !is_mounted(path) {
            return;
        }
        if let Err(e) = unmount(path, UnmountFlags::DETACH) {
            eprintln!("umount -l {}: {e}", path.display());
            return;
        }
    }
}
