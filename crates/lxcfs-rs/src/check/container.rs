//! `check --pid PID`: the container a process is in, as the daemon resolves a reader,
//! and for each served file whether that reader gets the container's rendering or the
//! host's file, and why (`Host::explain`, the serving code's own answer).

use std::sync::Arc;

use hostview::cgroup::{Backend, Controller};
use hostview::{Host, Source, VirtualFile};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Cgroup {
    pub controller: &'static str,
    /// The group's directory on the host.
    pub path: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileSource {
    /// Relative to the mount (`proc/meminfo`).
    pub file: &'static str,
    /// `container` or `host`.
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContainerReport {
    pub pid: u32,
    /// Why the process could not be resolved (then the rest is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// In the host's pid namespace (not in a container): served its own cgroups.
    pub host_reader: bool,
    pub pid_namespace: Option<u64>,
    /// Host pid of its pid namespace's init, whose cgroups are the container's.
    pub init: Option<u32>,
    pub init_command: Option<String>,
    pub cgroups: Vec<Cgroup>,
    pub files: Vec<FileSource>,
}

impl ContainerReport {
    pub fn failed(pid: u32, error: String) -> ContainerReport {
        ContainerReport {
            pid,
            error: Some(error),
            host_reader: false,
            pid_namespace: None,
            init: None,
            init_command: None,
            cgroups: Vec::new(),
            files: Vec::new(),
        }
    }

    pub fn describe(&self) -> String {
        let mut s = format!("\nprocess {}\n", self.pid);
        if let Some(e) = &self.error {
            s += &format!("  cannot be resolved: {e}\n");
            return s;
        }
        let init = match (self.init, &self.init_command) {
            (Some(i), Some(c)) => format!("{i} ({c})"),
            (Some(i), None) => i.to_string(),
            _ => "?".into(),
        };
        s += &if self.host_reader {
            "  in the host's pid namespace: served the files of its own cgroups\n".to_string()
        } else {
            format!(
                "  in pid namespace {}, whose init is {init}: the container is init's cgroups\n",
                self.pid_namespace
                    .map_or_else(|| "?".into(), |n| n.to_string())
            )
        };
        for c in &self.cgroups {
            s += &format!("  {:<10} {}\n", c.controller, c.path);
        }
        for f in &self.files {
            s += &format!(
                "  {:<32} {}{}\n",
                f.file,
                f.source,
                f.why
                    .as_deref()
                    .map(|w| format!(": {w}"))
                    .unwrap_or_default()
            );
        }
        s
    }
}

pub fn check(host: Option<&Arc<Host>>, pid: u32) -> ContainerReport {
    let Some(host) = host else {
        return ContainerReport::failed(pid, "the host's cgroups cannot be read".into());
    };
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return ContainerReport::failed(pid, "no such process".into());
    }
    let c = match host.container(pid) {
        Ok(c) => c,
        Err(e) => return ContainerReport::failed(pid, e.to_string()),
    };
    let hier = host.hierarchies();
    let mut cgroups = Vec::new();
    for (ctrl, name) in [
        (Controller::Memory, "memory"),
        (Controller::Cpu, "cpu"),
        (Controller::Cpuacct, "cpuacct"),
        (Controller::Cpuset, "cpuset"),
        (Controller::Io, "io"),
        (Controller::Pids, "pids"),
        (Controller::Hugetlb, "hugetlb"),
    ] {
        let (Some(b), Some((_, rel))) = (hier.backend(ctrl), c.paths.locate(hier, ctrl)) else {
            continue;
        };
        let mount = match b {
            Backend::V1(i) => hier.v1.get(i).map(|h| h.mount_point.clone()),
            Backend::V2 => hier.v2.as_ref().map(|h| h.mount_point.clone()),
        };
        if let Some(m) = mount {
            cgroups.push(Cgroup {
                controller: name,
                path: join(&m, rel),
            });
        }
    }
    // Pressure is read from the cgroup2 group even where it holds no controller.
    if let (Some(v2), Some(rel)) = (&hier.v2, c.paths.unified()) {
        cgroups.push(Cgroup {
            controller: "cgroup2",
            path: join(&v2.mount_point, rel),
        });
    }
    let files = VirtualFile::ALL
        .into_iter()
        .map(|f| match host.explain(f, pid) {
            Source::Container => FileSource {
                file: f.host_path(),
                source: "container",
                why: None,
            },
            Source::Host(why) => FileSource {
                file: f.host_path(),
                source: "host",
                why: Some(why),
            },
        })
        .collect();
    ContainerReport {
        pid,
        error: None,
        host_reader: c.ns.is_none(),
        pid_namespace: c.ns.map(|n| n.0),
        init: c.ns.map(|_| c.init),
        init_command: c.ns.and_then(|_| {
            std::fs::read_to_string(format!("/proc/{}/comm", c.init))
                .ok()
                .map(|s| s.trim().to_string())
        }),
        cgroups,
        files,
    }
}

/// A hierarchy's mount point and a group's path relative to it (`.` is the root).
fn join(mount: &str, rel: &str) -> String {
    match rel {
        "." | "" => mount.to_string(),
        r => format!(
            "{}/{}",
            mount.trim_end_matches('/'),
            r.trim_start_matches('/')
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_paths_join_their_mount() {
        assert_eq!(join("/sys/fs/cgroup/memory", "."), "/sys/fs/cgroup/memory");
        assert_eq!(
            join("/sys/fs/cgroup/memory", "a/b"),
            "/sys/fs/cgroup/memory/a/b"
        );
        assert_eq!(join("/sys/fs/cgroup/", "/a"), "/sys/fs/cgroup/a");
    }

    #[test]
    fn an_unresolved_process_says_why_and_nothing_else() {
        let r = ContainerReport::failed(7, "no such process".into());
        assert_eq!(
            r.describe(),
            "\nprocess 7\n  cannot be resolved: no such process\n"
        );
    }
}
