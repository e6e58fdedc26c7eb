//! The reader's `/sys/devices/system/cpu`: the host's directory seen through the
//! reader's CPU view. Only the `cpuN` directories of its visible CPUs exist (named by
//! the ids it sees, so `cpu0` is host `cpu2` in a renumbered view); everything else is
//! the host's, read-only. glibc counts those directories for `_SC_NPROCESSORS_CONF` and
//! `lscpu` walks them, so they must agree with `online`, which (like `possible`,
//! `present` and `offline`) is a virtual file rendered from the same view.
//!
//! Paths here are relative to the CPU directory, as the container names them.

use procfile::CpuView;

use crate::Host;
use crate::error::{Error, Result};
use crate::fsio::DirEntry;

/// The host directory this tree mirrors, relative to the host root.
pub const HOST_DIR: &str = "sys/devices/system/cpu";
/// Names the virtual files take in it (rendered from the view, not mirrored).
pub const VIRTUAL: [&str; 4] = ["online", "possible", "present", "offline"];

impl Host {
    /// The host path (relative to the host root) behind `rel` for reader `tid`; `None`
    /// when the reader cannot see it. A reader whose container can't be resolved sees
    /// the host's tree (fail open, as the files do).
    pub fn cpu_dir_host_path(&self, tid: u32, rel: &str) -> Option<String> {
        to_host(rel, self.reader_view(tid).as_ref())
    }

    /// The entries of directory `rel` (`""`: the CPU directory itself) for reader `tid`.
    pub fn cpu_dir_entries(&self, tid: u32, rel: &str) -> Result<Vec<DirEntry>> {
        let view = self.reader_view(tid);
        if !rel.is_empty() {
            let host_rel = to_host(rel, view.as_ref())
                .ok_or_else(|| Error::io(rel, rustix::io::Errno::NOENT))?;
            return self.root().entries(&host_rel);
        }
        let host = self.root().entries(HOST_DIR)?;
        let names: Vec<String> = host.iter().map(|e| e.name.clone()).collect();
        Ok(top_entries(&names, view.as_ref())
            .into_iter()
            .map(|name| {
                // Renumbered cpuN directories are named after a host directory.
                let kind = if cpu_index(&name).is_some() {
                    rustix::fs::FileType::Directory
                } else {
                    host.iter()
                        .find(|e| e.name == name)
                        .map_or(rustix::fs::FileType::Directory, |e| e.kind)
                };
                DirEntry { name, kind }
            })
            .collect())
    }

    fn reader_view(&self, tid: u32) -> Option<CpuView> {
        self.cpu_view(tid).ok().flatten()
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
fn to_host(rel: &str, view: Option<&CpuView>) -> Option<String> {
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
fn top_entries(host: &[String], view: Option<&CpuView>) -> Vec<String> {
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
}
