//! The per-container load average sampler.
//!
//! Every 5 seconds (the kernel's interval) it walks the whole cgroup tree of the
//! task-listing hierarchy, counts each cgroup's runnable and uninterruptible tasks —
//! through taskstats, where the kernel counts in one round trip per cgroup, else from
//! `/proc` — sums them over each subtree and feeds every cgroup's averages. So a
//! container's load is tracked from its start (or the daemon's), not from its first
//! read, and a read never waits for the sampler: it takes an `Arc` of the last sample.

use std::collections::HashMap;
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
                    "load sampler: more than {MAX_CGROUPS} cgroups; each subtree is sampled \
                     to its fair share of them, the cgroups past it are not (their load \
                     shows 0, and their parents' leaves them out) while there are so many"
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
/// host), at most `max` of them, and whether that was all. Past the bound each subtree
/// keeps a fair share: the children of a cgroup are visited in turn, each with an
/// equal part of what is left to visit (what one does not use goes to those after
/// it), so a tenant making cgroups without end below its container takes its share
/// and no more, and every other container, however deep, keeps its own.
fn walk(dir: &Dir, max: usize, mut active: impl FnMut(&Dir) -> u64) -> (Vec<(String, u64)>, bool) {
    let mut w = Walk {
        dir,
        own: Vec::new(),
        complete: true,
        active: &mut active,
    };
    let top = child_dirs(dir.entries(".").unwrap_or_default());
    w.share("", top, 1, max);
    (w.own, w.complete)
}

struct Walk<'a> {
    dir: &'a Dir,
    own: Vec<(String, u64)>,
    complete: bool,
    active: &'a mut dyn FnMut(&Dir) -> u64,
}

impl Walk<'_> {
    /// Visit `children` of `parent` and their subtrees, `budget` cgroups at most in
    /// all; how many were visited.
    fn share(&mut self, parent: &str, children: Vec<String>, depth: usize, budget: usize) -> usize {
        let mut left = budget;
        let n = children.len();
        for (i, name) in children.into_iter().enumerate() {
            if left == 0 {
                self.complete = false;
                break;
            }
            let part = (left / (n - i)).max(1);
            let cg = if parent.is_empty() {
                name
            } else {
                format!("{parent}/{name}")
            };
            left -= self.subtree(cg, depth, part).min(left);
        }
        budget - left
    }

    /// Visit `cg` (`budget` ≥ 1) and what of its subtree the rest allows.
    fn subtree(&mut self, cg: String, depth: usize, budget: usize) -> usize {
        // One descriptor for the kernel's counts, the task list and the listing.
        let Ok(here) = self.dir.listable(&cg) else {
            // Removed since its parent was listed: no task, no child.
            self.own.push((cg, 0));
            return 1;
        };
        let n = (self.active)(&here);
        let children = if depth < tasks::MAX_DEPTH {
            child_dirs(here.into_entries().unwrap_or_default())
        } else {
            Vec::new()
        };
        self.own.push((cg.clone(), n));
        if children.is_empty() {
            return 1;
        }
        if budget <= 1 {
            self.complete = false;
            return 1;
        }
        1 + self.share(&cg, children, depth + 1, budget - 1)
    }
}

fn child_dirs(entries: Vec<crate::fsio::DirEntry>) -> Vec<String> {
    entries
        .into_iter()
        .filter(|e| e.kind == rustix::fs::FileType::Directory)
        .map(|e| e.name)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn past_the_bound_a_tenants_cgroups_take_its_share_not_other_containers() {
        let root = tempfile::tempdir().unwrap();
        let mk = |p: &str| std::fs::create_dir_all(root.path().join(p)).unwrap();
        // Pods whose containers sit two levels down, as Kubernetes nests them; two
        // tenants among the pods, first and last in any listing order, and a third
        // near the root, make cgroups below their containers' without end.
        let pods = ["a-tenant", "b", "c", "d", "z-tenant"];
        for p in pods {
            mk(&format!("kubepods/{p}/ctr"));
        }
        for i in 0..100 {
            mk(&format!("kubepods/a-tenant/ctr/t{i}/u"));
            mk(&format!("kubepods/z-tenant/ctr/t{i}/u"));
            mk(&format!("lxc-tenant/t{i}"));
        }
        let dir = Dir::open(root.path()).unwrap();
        let (own, complete) = walk(&dir, 60, |_| 1);
        assert!(!complete);
        assert!(own.len() <= 60, "{}", own.len());
        for p in pods {
            let ctr = format!("kubepods/{p}/ctr");
            assert!(
                own.iter().any(|(q, _)| *q == ctr),
                "{ctr} not sampled: {own:?}"
            );
        }
        // The quiet pods' whole subtrees, and the tenants' own cgroups.
        let under = |prefix: &str| own.iter().filter(|(q, _)| q.starts_with(prefix)).count();
        for p in ["b", "c", "d"] {
            assert_eq!(under(&format!("kubepods/{p}")), 2, "{own:?}");
        }
        assert!(
            under("lxc-tenant") >= 2 && under("lxc-tenant") <= 40,
            "{own:?}"
        );
        // All of it when the bound allows.
        let (own, complete) = walk(&dir, 10_000, |_| 1);
        assert!(complete);
        assert_eq!(own.len(), 1 + 2 * pods.len() + 2 * 100 * 2 + 1 + 100);
        // A bound of 0 visits nothing, and says so.
        assert_eq!(walk(&dir, 0, |_| 1), (Vec::new(), false));
    }
}
