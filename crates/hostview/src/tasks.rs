//! Counting a container's tasks: `/proc/stat`'s process lines and `/proc/loadavg`'s
//! `running/total last_pid`.

use procfile::pid::{parse_status, status_state};

use crate::cgroup::{Backend, CgroupPaths, Controller, Hierarchies};
use crate::error::Result;
use crate::fsio::Dir;

/// A container with more tasks than this is counted partially: the counts are gauges
/// and must not make one read take seconds.
const MAX_TASKS: usize = 16384;
/// Sub-cgroups deeper than this below the container are not visited.
pub const MAX_DEPTH: usize = 32;

/// What a container's tasks look like right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// State R.
    pub running: u64,
    /// State D.
    pub blocked: u64,
    pub total: u64,
    /// The highest pid in the container's pid namespace among its tasks; its pids are
    /// allocated in sequence, so this approximates its most recent pid and the forks
    /// since it started. `None` for host readers.
    pub last_pid: Option<u64>,
}

/// The hierarchy whose cgroups list a container's threads, and the list's name: a v1
/// hierarchy's `tasks` or v2's `cgroup.threads`.
pub fn hierarchy(hier: &Hierarchies) -> Option<(Option<Controller>, &Dir, &'static str)> {
    for c in [
        Controller::Pids,
        Controller::Cpu,
        Controller::Memory,
        Controller::Cpuset,
    ] {
        if let Some(b) = hier.backend(c) {
            let dir = hier.backend_dir(b)?;
            let list = match b {
                Backend::V1(_) => "tasks",
                Backend::V2 => "cgroup.threads",
            };
            return Some((Some(c), dir, list));
        }
    }
    let v2 = hier.v2.as_ref()?;
    Some((None, &v2.dir, "cgroup.threads"))
}

/// The container's cgroup in [`hierarchy`].
pub fn container_path<'p>(hier: &Hierarchies, paths: &'p CgroupPaths) -> Option<&'p str> {
    match hierarchy(hier)? {
        (Some(c), _, _) => paths.locate(hier, c).map(|(_, p)| p),
        (None, _, _) => paths.unified(),
    }
}

/// Count the tasks in the container's cgroup subtree.
pub fn count(
    hier: &Hierarchies,
    paths: &CgroupPaths,
    proc: &Dir,
    in_own_ns: bool,
) -> Result<Counts> {
    let (Some((_, dir, list)), Some(path)) = (hierarchy(hier), container_path(hier, paths)) else {
        return Ok(Counts::default());
    };
    let mut counts = Counts::default();
    let mut last_pid = 0u64;
    let mut stack = vec![(path.to_string(), 0usize)];
    while let Some((cg, depth)) = stack.pop() {
        let Some(text) = dir.read_optional(&format!("{cg}/{list}"))? else {
            continue;
        };
        for tid in text.lines().filter_map(procfile::value::parse_u64) {
            if counts.total as usize >= MAX_TASKS {
                break;
            }
            // Tasks exit all the time; a vanished one is simply not counted.
            let Ok(status) = proc.read_lossy(&format!("{tid}/status")) else {
                continue;
            };
            counts.total += 1;
            match status_state(&status) {
                Some(b'R') => counts.running += 1,
                Some(b'D') => counts.blocked += 1,
                _ => {}
            }
            // Tasks of the cgroup outside any nested pid namespace (the runtime's
            // `unshare`, a `--pid=host` helper) would leak host pids.
            let st = parse_status(&status);
            if let (Some(inner), true) = (st.nspid_inner, st.nspid_depth > 1) {
                last_pid = last_pid.max(u64::from(inner));
            }
        }
        if depth < MAX_DEPTH {
            for e in dir.entries(&cg).unwrap_or_default() {
                if e.kind == rustix::fs::FileType::Directory {
                    stack.push((format!("{cg}/{}", e.name), depth + 1));
                }
            }
        }
    }
    counts.last_pid = (in_own_ns && last_pid > 0).then_some(last_pid);
    Ok(counts)
}
