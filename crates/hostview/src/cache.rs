//! What is derived from a pid namespace's init, cached per namespace.
//!
//! Resolving init and reading its cgroup file costs a few syscalls; doing it on every
//! open would dominate a read. An entry is checked on every use (init must still be in
//! that namespace; when a namespace's init exits the kernel kills the namespace, so this
//! also catches a recycled pid), its cgroup paths are re-read after [`PATHS_TTL`] (a
//! runtime may move a container's init), idle entries are pruned, and the table is
//! bounded so that thousands of short-lived containers cannot grow it without limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bounded::make_room;
use crate::cgroup::CgroupPaths;
use crate::pidns::NsId;

/// How long cgroup paths are trusted before `/proc/<init>/cgroup` is read again.
pub const PATHS_TTL: Duration = Duration::from_secs(1);
/// Entries unused this long are dropped at the next prune.
pub const IDLE: Duration = Duration::from_secs(60);
/// Hard bound on entries; past it, the least recently used go first.
pub const MAX_ENTRIES: usize = 16384;
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// One container as the daemon sees it.
#[derive(Debug)]
pub struct Container {
    /// Host pid of its pid namespace's init (the reader itself for host readers).
    pub init: u32,
    /// `None` for a reader in the daemon's own pid namespace.
    pub ns: Option<NsId>,
    pub paths: CgroupPaths,
    /// When init started, in ns since boot (`None` for host readers).
    pub start_ns: Option<u64>,
    pub fetched: Instant,
    /// Files its readers were served (renderings, shared ones included), carried over
    /// from the entry this one refreshes: what `status` ranks the busiest by.
    pub reads: AtomicU64,
    key: ContainerKey,
    /// Who its readers' handles are charged to, once a read has asked (see
    /// `Host::owner_of`): a namespace's parents never change, so a refresh of the same
    /// container keeps it.
    owner: std::sync::OnceLock<NsId>,
}

/// What per-container state (renderings, CPU views, `/proc/stat` history, task counts)
/// is kept under: two containers never share a key, whatever their limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContainerKey {
    /// The pid namespace together with its init and that init's start: the kernel
    /// recycles namespace inode numbers and pids, so a new container can get a dead
    /// one's of either.
    Ns { ns: NsId, init: u32, start_ns: u64 },
    /// A reader in the daemon's own pid namespace: the cgroups it is shown.
    Host(Arc<str>),
}

impl Container {
    pub fn new(
        init: u32,
        ns: Option<NsId>,
        paths: CgroupPaths,
        start_ns: Option<u64>,
        fetched: Instant,
    ) -> Container {
        let key = match ns {
            Some(ns) => ContainerKey::Ns {
                ns,
                init,
                start_ns: start_ns.unwrap_or(0),
            },
            None => ContainerKey::Host(format!("{paths:?}").into()),
        };
        Container {
            init,
            ns,
            paths,
            start_ns,
            fetched,
            reads: AtomicU64::new(0),
            key,
            owner: std::sync::OnceLock::new(),
        }
    }

    pub fn owner(&self) -> Option<NsId> {
        self.owner.get().copied()
    }

    pub(crate) fn set_owner(&self, owner: NsId) {
        let _ = self.owner.set(owner);
    }

    /// Its key for per-container state, made once when the container was resolved.
    pub fn key(&self) -> &ContainerKey {
        &self.key
    }
}

struct Entry {
    container: Arc<Container>,
    last_used: Instant,
}

pub struct ContainerCache {
    inner: Mutex<Inner>,
}

struct Inner {
    map: HashMap<NsId, Entry>,
    last_prune: Instant,
}

impl Default for ContainerCache {
    fn default() -> Self {
        ContainerCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                last_prune: Instant::now(),
            }),
        }
    }
}

impl ContainerCache {
    /// The cached container of `ns`, if fresh.
    pub fn get(&self, ns: NsId, now: Instant) -> Option<Arc<Container>> {
        let mut inner = self.lock();
        let e = inner.map.get_mut(&ns)?;
        if now.saturating_duration_since(e.container.fetched) > PATHS_TTL {
            return None;
        }
        e.last_used = now;
        Some(e.container.clone())
    }

    /// The cached container of `ns` however old (to name it in a log line).
    pub fn peek(&self, ns: NsId) -> Option<Arc<Container>> {
        self.lock().map.get(&ns).map(|e| e.container.clone())
    }

    /// The cached init of `ns` even if its paths are stale, to skip re-resolving it.
    pub fn init_of(&self, ns: NsId) -> Option<u32> {
        self.lock().map.get(&ns).map(|e| e.container.init)
    }

    /// Cache `container` for `ns`; how many entries were pruned meanwhile.
    pub fn insert(&self, ns: NsId, container: Arc<Container>, now: Instant) -> usize {
        let mut inner = self.lock();
        let old = inner.map.insert(
            ns,
            Entry {
                container: container.clone(),
                last_used: now,
            },
        );
        // A refresh of the same container keeps its count (a read counted on the old
        // entry between these two lines is lost: a count for ranking, not billing).
        if let Some(old) = old.filter(|o| o.container.key == container.key) {
            container.reads.fetch_add(
                old.container.reads.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            if let Some(owner) = old.container.owner() {
                container.set_owner(owner);
            }
        }
        if now.saturating_duration_since(inner.last_prune) > PRUNE_EVERY
            || inner.map.len() > MAX_ENTRIES
        {
            return inner.prune(now);
        }
        0
    }

    /// Every cached container, for ranking by reads (the lock is held only to copy).
    pub fn all(&self) -> Vec<Arc<Container>> {
        self.lock()
            .map
            .values()
            .map(|e| e.container.clone())
            .collect()
    }

    pub fn remove(&self, ns: NsId) {
        self.lock().map.remove(&ns);
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent (every
        // mutation is a single insert/remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn prune(&mut self, now: Instant) -> usize {
        let before = self.map.len();
        self.last_prune = now;
        // At most MAX_ENTRIES: room is made only past it.
        make_room(&mut self.map, MAX_ENTRIES + 1, IDLE, now, |e| e.last_used);
        before.saturating_sub(self.map.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cgroup::{CgroupPaths, Hierarchies};

    fn container(init: u32, at: Instant) -> Arc<Container> {
        let hier = Hierarchies {
            v1: Vec::new(),
            v2: None,
            above: Default::default(),
        };
        Arc::new(Container::new(
            init,
            None,
            CgroupPaths::parse(&hier, "0::/\n", init).unwrap(),
            None,
            at,
        ))
    }

    #[test]
    fn fresh_entries_hit_stale_ones_miss() {
        let c = ContainerCache::default();
        let t0 = Instant::now();
        c.insert(NsId(1), container(10, t0), t0);
        assert_eq!(c.get(NsId(1), t0).map(|c| c.init), Some(10));
        assert!(
            c.get(NsId(1), t0 + PATHS_TTL + Duration::from_millis(1))
                .is_none()
        );
        assert_eq!(c.init_of(NsId(1)), Some(10));
        assert!(c.get(NsId(2), t0).is_none());
    }

    #[test]
    fn a_refreshed_entry_keeps_its_reads_and_owner() {
        let hier = Hierarchies {
            v1: Vec::new(),
            v2: None,
            above: Default::default(),
        };
        let container = |init: u32, at: Instant| {
            let paths = CgroupPaths::parse(&hier, "0::/\n", init).unwrap();
            Arc::new(Container::new(init, Some(NsId(1)), paths, Some(5), at))
        };
        let c = ContainerCache::default();
        let t0 = Instant::now();
        let first = container(10, t0);
        first.reads.store(7, Ordering::Relaxed);
        first.set_owner(NsId(99));
        c.insert(NsId(1), first, t0);
        let again = container(10, t0 + PATHS_TTL);
        c.insert(NsId(1), again.clone(), t0 + PATHS_TTL);
        assert_eq!(again.reads.load(Ordering::Relaxed), 7);
        assert_eq!(again.owner(), Some(NsId(99)));
        // The namespace's number given to another container: nothing carried over.
        let other = container(11, t0 + PATHS_TTL);
        c.insert(NsId(1), other.clone(), t0 + PATHS_TTL);
        assert_eq!(other.reads.load(Ordering::Relaxed), 0, "another container");
        assert_eq!(other.owner(), None);
    }

    #[test]
    fn idle_entries_are_pruned_and_size_is_bounded() {
        let c = ContainerCache::default();
        let t0 = Instant::now();
        c.insert(NsId(1), container(10, t0), t0);
        let later = t0 + IDLE + PRUNE_EVERY + Duration::from_secs(1);
        c.insert(NsId(2), container(11, later), later);
        assert_eq!(c.len(), 1);
        for i in 0..(MAX_ENTRIES as u64 + 10) {
            c.insert(NsId(100 + i), container(1, later), later);
        }
        assert!(c.len() <= MAX_ENTRIES);
    }
}
