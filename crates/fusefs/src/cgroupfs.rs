//! The `cgroup/` directory (`--enable-cgroup`): which host entry a reader's inode
//! stands for is `hostview::cgroupview`'s business; this module numbers the entries
//! and answers for them.
//!
//! Inode numbers are a hash of the path as the container names it
//! (`memory/memory.limit_in_bytes`), not of the host path behind it: every container
//! gets the same number for its own `memory.limit_in_bytes`, so the table grows with
//! the shapes of the containers' subtrees, not with their count, and every worker
//! computes the same numbers. Entries are per reader (attributes and listings are asked
//! anew every time, TTL 0), and the content of an inode is whatever the reader's own
//! cgroup holds under that path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use fuser::{Errno, FileAttr, FileType};
use hostview::Host;
use hostview::cgroupview::lists_pids;

use crate::attr;
use crate::handles::Source;
use crate::tree;

/// Inodes of this tree are in `[TAG, 2 * TAG)`: below the mirrored sysfs entries'
/// (`[2^62, 2^63)`), far above the static tree's.
const TAG: u64 = 1 << 61;
/// Paths the table holds before it starts over (a few MiB); numbers
/// it forgot are found again by walking the asking reader's tree.
const MAX_PATHS: usize = 1 << 16;
/// Bounds of that walk.
const WALK_DEPTH: usize = 16;
const WALK_ENTRIES: usize = 1 << 16;

pub fn owns(ino: u64) -> bool {
    (TAG..TAG << 1).contains(&ino)
}

/// FNV-1a of the path, in `[TAG, 2 * TAG)`.
fn hash_ino(rel: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rel.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h & (TAG - 1)) | TAG
}

#[derive(Default)]
pub struct CgroupTree {
    paths: Mutex<HashMap<u64, String>>,
}

impl CgroupTree {
    fn intern(&self, rel: &str) -> u64 {
        let ino = hash_ino(rel);
        let mut p = self.lock();
        if p.len() >= MAX_PATHS && !p.contains_key(&ino) {
            p.clear();
        }
        p.entry(ino).or_insert_with(|| rel.to_string());
        ino
    }

    /// The path of `ino` (`""`: the `cgroup/` directory), walking `tid`'s tree when it
    /// is unknown (a previous worker's number, or one forgotten).
    fn path(&self, host: &Host, tid: u32, ino: u64) -> Option<String> {
        if ino == tree::CGROUP {
            return Some(String::new());
        }
        if !owns(ino) {
            return None;
        }
        if let Some(p) = self.lock().get(&ino) {
            return Some(p.clone());
        }
        self.walk(host, tid);
        self.lock().get(&ino).cloned()
    }

    fn walk(&self, host: &Host, tid: u32) {
        let mut stack = vec![(String::new(), 0usize)];
        let mut seen = 0usize;
        while let Some((rel, depth)) = stack.pop() {
            for e in host.cgroup_entries(tid, &rel).unwrap_or_default() {
                seen += 1;
                if seen > WALK_ENTRIES {
                    return;
                }
                let child = join(&rel, &e.name);
                self.intern(&child);
                if e.kind == rustix::fs::FileType::Directory && depth < WALK_DEPTH {
                    stack.push((child, depth + 1));
                }
            }
        }
    }

    /// Whether `ino` is a directory of this tree (the `cgroup/` directory or below).
    pub fn is_dir_here(ino: u64) -> bool {
        ino == tree::CGROUP || owns(ino)
    }

    /// The entry `name` of directory `parent` for this reader.
    pub fn lookup(
        &self,
        host: &Host,
        tid: u32,
        parent: u64,
        name: &str,
        at: SystemTime,
    ) -> Result<FileAttr, Errno> {
        let base = self.path(host, tid, parent).ok_or(Errno::ENOENT)?;
        let rel = join(&base, name);
        self.attr_of(host, tid, &rel, at)
    }

    pub fn getattr(
        &self,
        host: &Host,
        tid: u32,
        ino: u64,
        at: SystemTime,
    ) -> Result<FileAttr, Errno> {
        let rel = self.path(host, tid, ino).ok_or(Errno::ENOENT)?;
        self.attr_of(host, tid, &rel, at)
    }

    fn attr_of(&self, host: &Host, tid: u32, rel: &str, at: SystemTime) -> Result<FileAttr, Errno> {
        let host_rel = host
            .cgroup_host_path(tid, rel)
            .map_err(|e| crate::errno(&e))?;
        let st = host.root().lstat(&host_rel).map_err(|e| crate::errno(&e))?;
        Ok(attr::of_host(self.intern(rel), &st, at))
    }

    /// What an open of `ino` reads, for this reader.
    pub fn source(&self, host: &Host, tid: u32, ino: u64) -> Result<Source, Errno> {
        let rel = self.path(host, tid, ino).ok_or(Errno::ENOENT)?;
        if rel.is_empty() {
            return Err(Errno::EISDIR);
        }
        let host_rel = host
            .cgroup_host_path(tid, &rel)
            .map_err(|e| crate::errno(&e))?;
        Ok(if lists_pids(&rel) {
            Source::Pids(host_rel)
        } else {
            Source::Host(host_rel)
        })
    }

    /// `(inode, type, name)` of directory `ino`'s entries, `.` and `..` first.
    pub fn entries(
        &self,
        host: &Host,
        tid: u32,
        ino: u64,
    ) -> Result<Vec<(u64, FileType, String)>, Errno> {
        let rel = self.path(host, tid, ino).ok_or(Errno::ENOENT)?;
        let parent = match rel.rsplit_once('/') {
            _ if rel.is_empty() => tree::ROOT,
            Some((p, _)) => self.intern(p),
            None => tree::CGROUP,
        };
        let mut out = vec![
            (ino, FileType::Directory, ".".to_string()),
            (parent, FileType::Directory, "..".to_string()),
        ];
        let listed = host
            .cgroup_entries(tid, &rel)
            .map_err(|e| crate::errno(&e))?;
        out.extend(listed.into_iter().map(|e| {
            (
                self.intern(&join(&rel, &e.name)),
                attr::kind(e.kind),
                e.name,
            )
        }));
        Ok(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, String>> {
        self.paths.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_tagged_stable_and_apart_from_sysfs() {
        let a = hash_ino("memory/memory.limit_in_bytes");
        assert!(owns(a));
        assert_eq!(a, hash_ino("memory/memory.limit_in_bytes"));
        assert!(!owns(crate::sysfs::DYN_BASE));
        assert!(!owns(1 << 62));
        assert!(!owns(tree::CGROUP));
    }
}
