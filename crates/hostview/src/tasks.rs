//! Counting a container's tasks for the process lines of `/proc/stat`.

use procfile::pid::{parse_status, status_state};
use procfile::render::ProcessCounts;

use crate::cgroup::{Backend, CgroupPaths, Controller, Hierarchies};
use crate::error::Result;
use crate::fsio::Dir;

/// A container with more tasks than this is counted partially: the count is a gauge
/// and must not make one read take seconds.
const MAX_TASKS: usize = 16384;
/// Sub-cgroups deeper than this below the container are not visited.
const MAX_DEPTH: usize = 32;

/// Running (R) and blocked (D) tasks in the container's cgroup subtree, and the highest
/// pid allocated in its pid namespace seen among them (its pids are allocated in
/// sequence, so that approximates the forks since it started; `None` for host readers).
pub fn counts(
    hier: &Hierarchies,
    paths: &CgroupPaths,
    proc: &Dir,
    in_own_ns: bool,
) -> Result<ProcessCounts> {
    let Some((dir, path, list)) = task_source(hier, paths) else {
        return Ok(ProcessCounts::default());
    };
    let (mut running, mut blocked, mut last_pid) = (0u64, 0u64, 0u64);
    let mut seen = 0usize;
    let mut stack = vec![(path.to_string(), 0usize)];
    while let Some((cg, depth)) = stack.pop() {
        let Some(text) = dir.read_optional(&format!("{cg}/{list}"))? else {
            continue;
        };
        for tid in text.lines().filter_map(procfile::value::parse_u64) {
            if seen >= MAX_TASKS {
                break;
            }
            seen += 1;
            // Tasks exit all the time; a vanished one is simply not counted.
            let Ok(status) = proc.read_string(&format!("{tid}/status")) else {
                continue;
            };
            match status_state(&status) {
                Some(b'R') => running += 1,
                Some(b'D') => blocked += 1,
                _ => {}
            }
            if let Some(inner) = parse_status(&status).nspid_inner {
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
    Ok(ProcessCounts {
        processes: (in_own_ns && last_pid > 0).then_some(last_pid),
        procs_running: Some(running),
        procs_blocked: Some(blocked),
    })
}

/// Where the container's thread list is: a v1 hierarchy's `tasks` or v2's
/// `cgroup.threads`.
fn task_source<'h>(
    hier: &'h Hierarchies,
    paths: &'h CgroupPaths,
) -> Option<(&'h Dir, &'h str, &'static str)> {
    for c in [
        Controller::Pids,
        Controller::Cpu,
        Controller::Memory,
        Controller::Cpuset,
    ] {
        if let (Some(b), Some((dir, path))) = (hier.backend(c), paths.locate(hier, c)) {
            let list = match b {
                Backend::V1(_) => "tasks",
                Backend::V2 => "cgroup.threads",
            };
            return Some((dir, path, list));
        }
    }
    let v2 = hier.v2.as_ref()?;
    Some((&v2.dir, paths.unified()?, "cgroup.threads"))
}
