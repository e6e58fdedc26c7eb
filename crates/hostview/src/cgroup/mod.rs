//! Cgroup layout: which hierarchies are mounted, and where each controller lives.

mod above;
mod paths;

pub use above::Above;
pub use paths::{CgroupPaths, ancestors};

use procfile::mountinfo;

use crate::error::{Error, Result};
use crate::fsio::Dir;

/// How the host mounts its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1 only.
    Legacy,
    /// v1 controllers plus a cgroup2 mount (controllers on either).
    Hybrid,
    /// cgroup2 only.
    Unified,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Legacy => "legacy (cgroup v1)",
            Layout::Hybrid => "hybrid (cgroup v1 + v2)",
            Layout::Unified => "unified (cgroup v2)",
        })
    }
}

/// The controllers lxcfs-rs reads. v1 calls the io controller `blkio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    Memory,
    Cpu,
    Cpuacct,
    Cpuset,
    Io,
    Pids,
    Hugetlb,
}

impl Controller {
    pub fn v1_name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Io => "blkio",
            Controller::Pids => "pids",
            Controller::Hugetlb => "hugetlb",
        }
    }

    /// The v2 name; cpuacct has none (its data is in `cpu.stat`).
    pub fn v2_name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu | Controller::Cpuacct => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Io => "io",
            Controller::Pids => "pids",
            Controller::Hugetlb => "hugetlb",
        }
    }
}

/// v1 controller names; other super-options (`rw`, `clone_children`, `xattr`…) are not
/// controllers. `name=…` hierarchies carry no controller.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

#[derive(Debug)]
pub struct V1Hierarchy {
    pub controllers: Vec<String>,
    /// The `root` field of mountinfo: what part of the hierarchy this mount shows.
    pub mount_root: String,
    pub mount_point: String,
    pub dir: Dir,
}

#[derive(Debug)]
pub struct V2Hierarchy {
    pub mount_root: String,
    pub mount_point: String,
    /// The root's `cgroup.controllers`: what can be enabled on v2.
    pub controllers: Vec<String>,
    pub dir: Dir,
}

/// Where a controller's files are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    V1(usize),
    V2,
}

#[derive(Debug)]
pub struct Hierarchies {
    pub v1: Vec<V1Hierarchy>,
    pub v2: Option<V2Hierarchy>,
    /// Files of the levels above containers, shared between them on the real host.
    pub above: Above,
}

impl Hierarchies {
    /// Read `proc/self/mountinfo` below `root` and open every cgroup mount relative to it.
    /// Controllers come from the super-options, not from the mount point's name, so odd
    /// mount points and co-mounts (`cpu,cpuacct`) work. The first mount of a hierarchy
    /// wins; later bind mounts of it are ignored.
    pub fn detect(root: &Dir) -> Result<Hierarchies> {
        let text = root.read_string("proc/self/mountinfo")?;
        let mut v1: Vec<V1Hierarchy> = Vec::new();
        let mut v2 = None;
        for m in mountinfo::entries(&text) {
            match m.fstype {
                "cgroup" => {
                    let controllers: Vec<String> = m
                        .super_options
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_string)
                        .collect();
                    if controllers.is_empty() || v1.iter().any(|h| h.controllers == controllers) {
                        continue;
                    }
                    let dir = match root.subdir(&m.mount_point) {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::warn!("skipping cgroup mount: {e}");
                            continue;
                        }
                    };
                    v1.push(V1Hierarchy {
                        controllers,
                        mount_root: m.root,
                        mount_point: m.mount_point,
                        dir,
                    });
                }
                "cgroup2" if v2.is_none() => {
                    let dir = match root.subdir(&m.mount_point) {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::warn!("skipping cgroup2 mount: {e}");
                            continue;
                        }
                    };
                    let controllers = dir
                        .read_optional("cgroup.controllers")?
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_string)
                        .collect();
                    v2 = Some(V2Hierarchy {
                        mount_root: m.root,
                        mount_point: m.mount_point,
                        controllers,
                        dir,
                    });
                }
                _ => {}
            }
        }
        if v1.is_empty() && v2.is_none() {
            return Err(Error::NoCgroups);
        }
        Ok(Hierarchies {
            v1,
            v2,
            above: Above::default(),
        })
    }

    pub fn layout(&self) -> Layout {
        let has_v1 = self
            .v1
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        match (has_v1, self.v2.is_some()) {
            (true, true) => Layout::Hybrid,
            (true, false) => Layout::Legacy,
            (false, _) => Layout::Unified,
        }
    }

    /// Where `c` lives: its v1 hierarchy if it has one, else v2 when the v2 root offers it.
    pub fn backend(&self, c: Controller) -> Option<Backend> {
        if let Some(i) = self
            .v1
            .iter()
            .position(|h| h.controllers.iter().any(|n| n == c.v1_name()))
        {
            return Some(Backend::V1(i));
        }
        let v2 = self.v2.as_ref()?;
        if v2.controllers.iter().any(|n| n == c.v2_name()) {
            Some(Backend::V2)
        } else {
            None
        }
    }

    pub fn backend_dir(&self, b: Backend) -> Option<&Dir> {
        match b {
            Backend::V1(i) => self.v1.get(i).map(|h| &h.dir),
            Backend::V2 => self.v2.as_ref().map(|h| &h.dir),
        }
    }

    /// Short description for the start-up log.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .v1
            .iter()
            .map(|h| format!("v1 {} at {}", h.controllers.join(","), h.mount_point))
            .collect();
        if let Some(v2) = &self.v2 {
            parts.push(format!(
                "v2 at {} (controllers: {})",
                v2.mount_point,
                if v2.controllers.is_empty() {
                    "none".to_string()
                } else {
                    v2.controllers.join(" ")
                }
            ));
        }
        parts.join("; ")
    }
}
