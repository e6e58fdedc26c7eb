//! The busiest containers: which read the most over the last window.
//!
//! A read costs one relaxed increment on its container's cache entry (found anyway to
//! render it). Ranking happens off the read path, every few seconds, in one thread:
//! the counts of every cached container are copied out (the cache is bounded, so is
//! this), compared with the last window's, and the top few kept. Memory: one number
//! per cached container between two windows.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use crate::Host;
use crate::cache::ContainerKey;

/// One container's reads over a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyContainer {
    /// Its cgroup, as the host names it (`/lxc/web1`, `/system.slice/docker-….scope`).
    pub cgroup: String,
    /// Its pid namespace inode.
    pub pidns: u64,
    /// Files read over the window.
    pub reads: u64,
    /// Files read since this worker first saw it.
    pub reads_total: u64,
}

/// The counts seen at the last window, per container.
#[derive(Default)]
pub struct ReadTally {
    last: HashMap<ContainerKey, u64>,
}

impl ReadTally {
    /// The `n` containers that read the most since the previous call (those that read
    /// nothing left out), busiest first.
    pub fn window(&mut self, host: &Host, n: usize) -> Vec<BusyContainer> {
        let all = host.cache.all();
        let mut next = HashMap::with_capacity(all.len());
        let mut ranked = Vec::with_capacity(all.len());
        for c in all {
            let total = c.reads.load(Ordering::Relaxed);
            let before = self.last.get(c.key()).copied().unwrap_or(0);
            next.insert(c.key().clone(), total);
            let d = total.saturating_sub(before);
            if d > 0 {
                ranked.push((d, total, c));
            }
        }
        self.last = next;
        ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        ranked
            .into_iter()
            .take(n)
            .map(|(reads, reads_total, c)| BusyContainer {
                cgroup: host.cgroup_name(&c),
                pidns: c.ns.map_or(0, |n| n.0),
                reads,
                reads_total,
            })
            .collect()
    }
}
