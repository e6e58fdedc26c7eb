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

/// Dynamic inodes start here, far above the static tree's.
pub const DYN_BASE: u64 = 1 << 32;
/// The host directory this tree mirrors, relative to the host root.
pub const HOST_DIR: &str = "sys/devices/system/cpu";
/// Names the static tree serves itself (rendered from the view).
pub const VIRTUAL: [&str; 4] = ["online", "possible", "present", "offline"];

#[derive(Default)]
pub struct Inodes {
    inner: Mutex<(HashMap<String, u64>, Vec<String>)>,
}

impl Inodes {
    /// The inode of `rel` (a path below the CPU directory, as the container names it).
    pub fn intern(&self, rel: &str) -> u64 {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&ino) = g.0.get(rel) {
            return ino;
        }
        let ino = DYN_BASE + g.1.len() as u64;
        g.0.insert(rel.to_string(), ino);
        g.1.push(rel.to_string());
        ino
    }

    pub fn path(&self, ino: u64) -> Option<String> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let i = usize::try_from(ino.checked_sub(DYN_BASE)?).ok()?;
        g.1.get(i).cloned()
    }
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

/// Names of the CPU directory's passthrough entries for a reader: the host's entries
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
    fn inodes_are_stable() {
        let i = Inodes::default();
        let a = i.intern("cpu0");
        assert_eq!(i.intern("cpu0"), a);
        let b = i.intern("cpu0/topology");
        assert_ne!(a, b);
        assert_eq!(i.path(b).as_deref(), Some("cpu0/topology"));
        assert!(i.path(1).is_none());
    }
}
