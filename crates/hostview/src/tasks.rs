//! Counting a container's tasks: `/proc/stat`'s process lines and `/proc/loadavg`'s
//! `running/total last_pid`.
//!
//! The cost of a count is bounded whatever the container does. With taskstats (every
//! real host with `CONFIG_TASKSTATS`) the kernel counts each cgroup's task states in one
//! netlink round trip, and we read, per cgroup, its task list (for the total) and one
//! task's `status` (the highest host tid's, for `last_pid`): the cost grows with the
//! number of cgroups (at most [`MAX_CGROUPS`]), not of tasks. Without it, one `status`
//! per task is read, for at most [`MAX_TASKS`] tasks.

use procfile::pid::{parse_status, status_state};

use crate::cgroup::{Backend, CgroupPaths, Controller, Hierarchies};
use crate::error::Result;
use crate::fsio::Dir;
use crate::taskstats::Taskstats;

/// A container with more tasks than this is counted partially: the counts are gauges
/// and must not make one read take seconds.
const MAX_TASKS: usize = 16384;
/// Sub-cgroups deeper than this below the container are not visited.
pub const MAX_DEPTH: usize = 32;
/// Cgroups of one container visited per count; past it, the counts are partial.
pub const MAX_CGROUPS: usize = 1024;

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
    /// The counted cgroup's directory inode: a cgroup made again under its name (LXC
    /// restarting a container) is another, whose `last_pid` starts afresh.
    pub cgroup_ino: u64,
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

/// Count the tasks in the container's cgroup subtree, with the kernel's per-cgroup
/// counts when `kernel` is given (and works for a cgroup), else through `/proc`.
pub fn count(
    hier: &Hierarchies,
    paths: &CgroupPaths,
    proc: &Dir,
    in_own_ns: bool,
    mut kernel: Option<&mut Taskstats>,
) -> Result<Counts> {
    let (Some((_, dir, list)), Some(path)) = (hierarchy(hier), container_path(hier, paths)) else {
        return Ok(Counts::default());
    };
    let mut counts = Counts::default();
    let mut last_pid = 0u64;
    let mut visited = 0;
    let mut stack = vec![(path.to_string(), 0usize)];
    while let Some((cg, depth)) = stack.pop() {
        if visited >= MAX_CGROUPS {
            break;
        }
        visited += 1;
        // One descriptor for the task list, the kernel's counts and the listing.
        let here = match dir.listable(&cg) {
            Ok(d) => d,
            // Removed meanwhile (a container's cgroups come and go).
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        if visited == 1 {
            counts.cgroup_ino = rustix::fs::fstat(here.fd()).map_or(0, |st| st.st_ino);
        }
        let Some(text) = here.read_optional(list)? else {
            continue;
        };
        let tids = text.lines().filter_map(procfile::value::parse_u64);
        let by_kernel = kernel.as_deref_mut().and_then(|t| kernel_counts(t, &here));
        if let Some((running, blocked)) = by_kernel {
            counts.running += running;
            counts.blocked += blocked;
            let tids: Vec<u64> = tids.collect();
            counts.total += tids.len() as u64;
            // Pids are allocated in every namespace level at once, in sequence: the
            // newest host tid carries the newest pid of the container's numbering.
            let pid_max = *PID_MAX.get_or_init(|| {
                proc.read_string("sys/kernel/pid_max")
                    .ok()
                    .and_then(|s| procfile::value::parse_u64(&s))
                    .unwrap_or(PID_MAX_LIMIT)
            });
            let newest = newest_tid(tids, pid_max);
            if let Some(Ok(status)) = newest.map(|t| proc.read_lossy(&format!("{t}/status"))) {
                last_pid = last_pid.max(inner_pid(&status));
            }
        } else {
            for tid in tids {
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
                last_pid = last_pid.max(inner_pid(&status));
            }
        }
        if depth < MAX_DEPTH {
            for e in here.into_entries().unwrap_or_default() {
                if e.kind == rustix::fs::FileType::Directory {
                    stack.push((format!("{cg}/{}", e.name), depth + 1));
                }
            }
        }
    }
    counts.last_pid = (in_own_ns && last_pid > 0).then_some(last_pid);
    Ok(counts)
}

/// The kernel's bound of `pid_max` on 64-bit hosts, when it cannot be read.
const PID_MAX_LIMIT: u64 = 1 << 22;
static PID_MAX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// The newest of a cgroup's host tids. Pids are handed out in sequence and wrap at
/// `pid_max`, so a container's tids lie on an arc of that circle and its newest is at
/// the arc's end, just before the widest gap: the largest tid, unless the arc wraps
/// (a host with the default `pid_max` of 32 768 wraps every few minutes when busy).
fn newest_tid(mut tids: Vec<u64>, pid_max: u64) -> Option<u64> {
    tids.sort_unstable();
    let (&first, &last) = (tids.first()?, tids.last()?);
    let mut widest = (pid_max.saturating_sub(last).saturating_add(first), last);
    for w in tids.windows(2) {
        let gap = w[1].saturating_sub(w[0]);
        if gap > widest.0 {
            widest = (gap, w[0]);
        }
    }
    Some(widest.1)
}

/// A task's pid in its innermost pid namespace, 0 for tasks of the cgroup outside any
/// nested pid namespace (the runtime's `unshare`, a `--pid=host` helper), whose host
/// pids would leak.
fn inner_pid(status: &str) -> u64 {
    let st = parse_status(status);
    match (st.nspid_inner, st.nspid_depth > 1) {
        (Some(inner), true) => u64::from(inner),
        _ => 0,
    }
}

/// Running (R) and uninterruptible (D) tasks of one cgroup, counted by the kernel.
fn kernel_counts(t: &mut Taskstats, cgroup: &Dir) -> Option<(u64, u64)> {
    let stats = t.cgroup(cgroup.fd()).ok()?;
    Some((stats.running, stats.uninterruptible))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_tid_is_at_the_end_of_the_arc_even_when_pids_wrapped() {
        assert_eq!(newest_tid(vec![9, 1, 5], 32768), Some(9));
        assert_eq!(newest_tid(vec![7], 32768), Some(7));
        assert_eq!(newest_tid(Vec::new(), 32768), None);
        // The container's init took 32 700, then pids wrapped: its newest are low.
        assert_eq!(newest_tid(vec![32700, 300, 301], 32768), Some(301));
        assert_eq!(newest_tid(vec![32767, 32766, 2], 32768), Some(2));
        // A pid_max read wrong (or none) still leaves the widest gap to decide.
        assert_eq!(newest_tid(vec![32700, 300, 301], 0), Some(301));
    }
}
