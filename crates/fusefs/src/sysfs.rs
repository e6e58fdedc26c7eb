//! Inode numbers for the entries below `/sys/devices/system/cpu` that are mirrored from
//! the host (which entries a reader sees, and the host path behind each, is
//! `hostview::cpudir`'s business). Entries get numbers on first sight, keyed by their
//! path as the container names it; the set is bounded by the host's tree.

use std::collections::HashMap;
use std::sync::Mutex;

use hostview::cpudir::HOST_DIR;

/// Dynamic inodes are at or above this, far above the static tree's.
pub const DYN_BASE: u64 = 1 << 32;
/// Bounds of the walk that rebuilds the inode table.
const WALK_DEPTH: usize = 8;
const WALK_ENTRIES: usize = 1 << 20;

/// Inode numbers of mirrored entries are a hash of their path (as the container
/// names it), so they are the same in every worker: after a worker is replaced, the
/// kernel still holds the numbers the previous one gave out, and the new one finds
/// their paths again by walking the host tree once.
#[derive(Default)]
pub struct Inodes {
    paths: Mutex<HashMap<u64, String>>,
}

impl Inodes {
    pub fn intern(&self, rel: &str) -> u64 {
        let ino = hash_ino(rel);
        self.lock().entry(ino).or_insert_with(|| rel.to_string());
        ino
    }

    /// The path of `ino`; `root` is walked when it is unknown (a previous worker's).
    pub fn path(&self, ino: u64, root: &hostview::Dir) -> Option<String> {
        if ino < DYN_BASE {
            return None;
        }
        if let Some(p) = self.lock().get(&ino) {
            return Some(p.clone());
        }
        self.walk(root);
        self.lock().get(&ino).cloned()
    }

    fn walk(&self, root: &hostview::Dir) {
        let mut stack = vec![(String::new(), 0usize)];
        let mut seen = 0usize;
        while let Some((rel, depth)) = stack.pop() {
            let dir = if rel.is_empty() {
                HOST_DIR.to_string()
            } else {
                format!("{HOST_DIR}/{rel}")
            };
            for e in root.entries(&dir).unwrap_or_default() {
                seen += 1;
                if seen > WALK_ENTRIES {
                    return;
                }
                let child = if rel.is_empty() {
                    e.name.clone()
                } else {
                    format!("{rel}/{}", e.name)
                };
                self.intern(&child);
                if e.kind == rustix::fs::FileType::Directory && depth < WALK_DEPTH {
                    stack.push((child, depth + 1));
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, String>> {
        self.paths.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// FNV-1a of the path, in `[2^62, 2^63)`: never a static inode, never the kernel's
/// reserved values.
fn hash_ino(rel: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rel.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h & ((1 << 62) - 1)) | (1 << 62)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn inodes_are_stable_across_tables() {
        let i = Inodes::default();
        let a = i.intern("cpu0");
        assert_eq!(i.intern("cpu0"), a);
        let b = i.intern("cpu0/topology");
        assert_ne!(a, b);
        assert!(a >= DYN_BASE && b >= DYN_BASE);
        // Another worker's table gives the same numbers.
        assert_eq!(Inodes::default().intern("cpu0/topology"), b);
    }
}
