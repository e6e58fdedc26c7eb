//! `/sys/devices/system/cpu`, passed through from the host, seen through the reader's
//! CPU view: only the `cpuN` directories of its visible CPUs exist (named by the ids
//! it sees, so `cpu0` is host `cpu2` in a renumbered view), everything else is the
//! host's, read-only. glibc counts those directories for `_SC_NPROCESSORS_CONF` and
//! `lscpu` walks them, so they must agree with `online`.
//!
//! Entries below the CPU directory get inode numbers on first sight, keyed by their
//! path as the container names it; the set is bounded by the host's tree.

use std::collections::HashMap;
use std::sync::Mutex;

use procfile::CpuView;

/// Dynamic inodes are at or above this, far above the static tree's.
pub const DYN_BASE: u64 = 1 << 32;
/// The host directory this tree mirrors, relative to the host root.
pub const HOST_DIR: &str = "sys/devices/system/cpu";
/// Names the static tree serves itself (rendered from the view).
pub const VIRTUAL: [&str; 4] = ["online", "possible", "present", "offline"];
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

/// `cpu12` → 12; `cpufreq`, `cpuidle` → None.
pub fn cpu_index(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("cpu")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The host path (relative to the host root) behind `rel` for a reader with `view`
/// (`None`: the host itself); `None` when the reader cannot see it.
pub fn to_host(rel: &str, view: Option<&CpuView>) -> Option<String> {
    let (first, rest) = match rel.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (rel, None),
    };
    let first = match (cpu_index(first), view) {
        (Some(shown), Some(v)) => format!("cpu{}", v.host_id_of(shown)?),
        _ => first.to_string(),
    };
    Some(match rest {
        Some(r) => format!("{HOST_DIR}/{first}/{r}"),
        None => format!("{HOST_DIR}/{first}"),
    })
}

/// Names of the CPU directory's mirrored entries for a reader: the host's entries
/// other than the virtual lists and the `cpuN` directories, then one `cpuN` per
/// visible CPU in the reader's numbering.
pub fn top_entries(host: &[String], view: Option<&CpuView>) -> Vec<String> {
    let mut out: Vec<String> = host
        .iter()
        .filter(|n| !VIRTUAL.contains(&n.as_str()) && cpu_index(n).is_none())
        .cloned()
        .collect();
    match view {
        None => out.extend(host.iter().filter(|n| cpu_index(n).is_some()).cloned()),
        Some(v) => {
            for slot in 0..v.len() {
                let host_id = v.host_ids().get(slot).copied().unwrap_or(0);
                if host.iter().any(|n| cpu_index(n) == Some(host_id)) {
                    out.push(format!("cpu{}", v.shown_id(slot)));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use procfile::{CpuQuota, CpuSet};

    fn view(cpuset: &str, cfs: bool) -> CpuView {
        CpuView::new(
            &CpuSet::parse("0-3").unwrap(),
            Some(&CpuSet::parse(cpuset).unwrap()),
            CpuQuota::new(100_000, 100_000),
            cfs,
        )
    }

    #[test]
    fn translation_follows_the_view() {
        let v = view("2-3", false);
        assert_eq!(
            to_host("cpu2/topology/core_id", Some(&v)).unwrap(),
            "sys/devices/system/cpu/cpu2/topology/core_id"
        );
        assert!(to_host("cpu0", Some(&v)).is_none());
        assert_eq!(
            to_host("cpufreq/policy0", Some(&v)).unwrap(),
            "sys/devices/system/cpu/cpufreq/policy0"
        );
        let r = view("2-3", true);
        assert_eq!(
            to_host("cpu0/online", Some(&r)).unwrap(),
            "sys/devices/system/cpu/cpu2/online"
        );
        assert!(to_host("cpu1", Some(&r)).is_none());
        assert_eq!(
            to_host("cpu3", None).unwrap(),
            "sys/devices/system/cpu/cpu3"
        );
    }

    #[test]
    fn listing_shows_only_visible_cpus() {
        let host: Vec<String> = [
            "cpu0",
            "cpu1",
            "cpu2",
            "cpu3",
            "cpufreq",
            "online",
            "kernel_max",
            "cpuidle",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            top_entries(&host, Some(&view("1,3", false))),
            ["cpufreq", "kernel_max", "cpuidle", "cpu1", "cpu3"]
        );
        assert_eq!(
            top_entries(&host, Some(&view("2-3", true))),
            ["cpufreq", "kernel_max", "cpuidle", "cpu0"]
        );
        assert_eq!(top_entries(&host, None).len(), 7);
    }

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
