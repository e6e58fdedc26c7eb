//! The per-container load average sampler.
//!
//! Every 5 seconds (the kernel's interval) it walks the whole cgroup tree of the
//! task-listing hierarchy, counts each cgroup's runnable and uninterruptible tasks —
//! through taskstats, where the kernel counts in one round trip per cgroup, else from
//! `/proc` — sums them over each subtree and feeds every cgroup's averages. So a
//! container's load is tracked from its start (or the daemon's), not from its first
//! read, and a read never waits for the sampler: it takes an `Arc` of the last sample.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use procfile::loadavg::LoadAvg;

use crate::Host;
use crate::fsio::Dir;
use crate::tasks;
use crate::taskstats::Taskstats;

pub const INTERVAL: Duration = Duration::from_secs(5);
/// Bound on the cgroups sampled, against a runaway tree.
const MAX_CGROUPS: usize = 65536;

#[derive(Default)]
pub struct Loads {
    current: Mutex<Arc<HashMap<String, LoadAvg>>>,
    started: AtomicBool,
    stop: AtomicBool,
    /// The last sample left cgroups out (said when it starts and when it ends).
    partial: AtomicBool,
}

impl Loads {
    pub fn get(&self, path: &str) -> Option<LoadAvg> {
        self.snapshot().get(path).copied()
    }

    pub fn running(&self) -> bool {
        self.started.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Arc<HashMap<String, LoadAvg>> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn publish(&self, map: HashMap<String, LoadAvg>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(map);
    }
}

/// How tasks are counted.
enum Counter {
    Kernel(Taskstats),
    Procfs,
}

impl Host {
    /// Start the sampler thread (idempotent). Uses taskstats on the real host and falls
    /// back to `/proc` when the kernel has no taskstats or the root is a fixture.
    pub fn start_loadavg(self: &Arc<Self>) -> std::io::Result<()> {
        if self.loads.started.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let counter = match (self.real_root, Taskstats::open()) {
            (true, Ok(t)) => Counter::Kernel(t),
            (true, Err(e)) => {
                tracing::warn!(
                    "taskstats unavailable ({e}); the load sampler counts tasks through /proc"
                );
                Counter::Procfs
            }
            (false, _) => Counter::Procfs,
        };
        tracing::info!(
            "load average sampler: every {}s, counting with {}",
            INTERVAL.as_secs(),
            match counter {
                Counter::Kernel(_) => "taskstats (CGROUPSTATS)",
                Counter::Procfs => "/proc",
            }
        );
        let host = self.clone();
        std::thread::Builder::new()
            .name("loadavg".into())
            .spawn(move || host.sample_loop(counter))?;
        Ok(())
    }

    /// Stop the sampler (tests; the daemon just exits).
    pub fn stop_loadavg(&self) {
        self.loads.stop.store(true, Ordering::Relaxed);
    }

    fn sample_loop(&self, mut counter: Counter) {
        let mut next = Instant::now();
        while !self.loads.stop.load(Ordering::Relaxed) {
            self.sample_once(&mut counter);
            next += INTERVAL;
            let now = Instant::now();
            if next < now {
                // Fell behind (a suspended host, a huge tree): resume the cadence.
                next = now + INTERVAL;
            }
            std::thread::sleep(next - now);
        }
    }

    fn sample_once(&self, counter: &mut Counter) {
        let Some((_, dir, list)) = tasks::hierarchy(&self.hier) else {
            return;
        };
        let began = Instant::now();
        let (own, complete) = walk(dir, MAX_CGROUPS, |here| {
            self.active_tasks(counter, here, list)
        });
        if self.loads.partial.swap(!complete, Ordering::Relaxed) == complete {
            if complete {
                tracing::info!("load sampler: every cgroup sampled again");
            } else {
                tracing::warn!(
                    "load sampler: more than {MAX_CGROUPS} cgroups; those deepest in the \
                     tree are not sampled (their load shows 0, and their parents' leaves \
                     them out) while there are so many"
                );
            }
        }
        let mut subtree: HashMap<&str, u64> = own.iter().map(|(p, _)| (p.as_str(), 0)).collect();
        for (path, n) in &own {
            let mut p = path.as_str();
            loop {
                if let Some(v) = subtree.get_mut(p) {
                    *v = v.saturating_add(*n);
                }
                match p.rfind('/') {
                    Some(i) => p = &p[..i],
                    None => break,
                }
            }
        }
        let old = self.loads.snapshot();
        let mut next = HashMap::with_capacity(subtree.len());
        for (path, active) in subtree {
            let mut load = old.get(path).copied().unwrap_or_default();
            load.sample(active);
            next.insert(path.to_string(), load);
        }
        self.loads.publish(next);
        // What a tick costs (the end-to-end tests read it, and the daemon's metrics):
        // it grows with the cgroups, not with their tasks, when the kernel counts them.
        let took = began.elapsed();
        self.observe(|o| o.sampled(own.len(), took));
        tracing::debug!(
            "load sampler: {} cgroups in {} µs",
            own.len(),
            took.as_micros()
        );
    }

    /// Runnable + uninterruptible tasks of one cgroup (not its children).
    /// Running and uninterruptible tasks of the cgroup opened as `cgroup`.
    fn active_tasks(&self, counter: &mut Counter, cgroup: &Dir, list: &str) -> u64 {
        if let Counter::Kernel(t) = counter {
            if let Ok(stats) = t.cgroup(cgroup.fd()) {
                return stats.running.saturating_add(stats.uninterruptible);
            }
        }
        let Ok(text) = cgroup.read_string(list) else {
            return 0;
        };
        text.lines()
            .filter_map(procfile::value::parse_u64)
            .filter(|tid| {
                self.proc
                    .read_lossy(&format!("{tid}/stat"))
                    .ok()
                    .and_then(|s| procfile::pid::parse_stat(&s))
                    .is_some_and(|st| st.state == b'R' || st.state == b'D')
            })
            .count() as u64
    }
}

/// Own counts (`active`) of the cgroups below the root of `dir` (the root is the
/// host), breadth first, at most `max`, and whether that was all of them. Breadth
/// first, so that when a tree has more (a tenant making cgroups below its container's
/// without end), what is left out is the deepest levels, below every container's own
/// cgroup, not whole containers that happened to be listed after the tenant's.
fn walk(dir: &Dir, max: usize, mut active: impl FnMut(&Dir) -> u64) -> (Vec<(String, u64)>, bool) {
    let mut own: Vec<(String, u64)> = Vec::new();
    let mut queue: VecDeque<(String, usize)> = dir
        .entries(".")
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.kind == rustix::fs::FileType::Directory)
        .map(|e| (e.name, 1))
        .collect();
    let mut complete = true;
    while let Some((cg, depth)) = queue.pop_front() {
        if own.len() >= max {
            complete = false;
            break;
        }
        // One descriptor for the kernel's counts, the task list and the listing.
        let Ok(here) = dir.listable(&cg) else {
            // Removed since its parent was listed: no task, no child.
            own.push((cg, 0));
            continue;
        };
        own.push((cg.clone(), active(&here)));
        if depth < tasks::MAX_DEPTH {
            for e in here.into_entries().unwrap_or_default() {
                if e.kind != rustix::fs::FileType::Directory {
                    continue;
                }
                // Names past the bound are not kept waiting either.
                if own.len() + queue.len() >= max {
                    complete = false;
                    break;
                }
                queue.push_back((format!("{cg}/{}", e.name), depth + 1));
            }
        }
    }
    (own, complete)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn past_the_bound_the_deepest_cgroups_are_left_out_not_later_containers() {
        let root = tempfile::tempdir().unwrap();
        // Pods whose containers sit one level down, as Kubernetes nests them; two
        // tenants, first and last in any listing order, make cgroups below their
        // containers' without end.
        let pods = ["a-tenant", "b", "c", "d", "z-tenant"];
        for p in pods {
            std::fs::create_dir_all(root.path().join(format!("pods/{p}/ctr"))).unwrap();
        }
        for i in 0..50 {
            for t in ["a-tenant", "z-tenant"] {
                std::fs::create_dir_all(root.path().join(format!("pods/{t}/ctr/t{i}/u"))).unwrap();
            }
        }
        let dir = Dir::open(root.path()).unwrap();
        let (own, complete) = walk(&dir, 40, |_| 1);
        assert!(!complete);
        assert!(own.len() <= 40, "{}", own.len());
        for p in pods {
            let ctr = format!("pods/{p}/ctr");
            assert!(
                own.iter().any(|(q, _)| *q == ctr),
                "{ctr} not sampled: {own:?}"
            );
        }
        // All of it when the bound allows.
        let (own, complete) = walk(&dir, 1000, |_| 1);
        assert!(complete);
        assert_eq!(own.len(), 1 + 2 * pods.len() + 2 * 50 * 2);
    }
}
