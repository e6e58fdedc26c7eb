//! Recent renderings per container.
//!
//! A rendering depends on the container, never on which of its processes reads, so a
//! second open in the same container within [`FRESH`] gets the same bytes without
//! re-reading a dozen cgroup and `/proc` files. Monitoring agents and `top` poll every
//! second or more, so they always see fresh data; a burst of opens (several tools, a
//! shell loop) costs one rendering per 100 ms per file. Keys are per container
//! identity, so two containers never share an entry whatever their limits.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cache::ContainerKey;
use crate::files::VirtualFile;
use crate::reason::HostReason;

pub const FRESH: Duration = Duration::from_millis(100);
const PRUNE_EVERY: Duration = Duration::from_secs(1);
/// Bounds on what one cache holds. Keys are per pid namespace, which a tenant can make
/// thousands of a second, and on a host of thousands of CPUs one `/proc/stat` is
/// hundreds of KiB and one `cpuinfo` MiBs: a count alone would not bound the bytes.
const MAX_ENTRIES: usize = 65536;
const MAX_BYTES: usize = 32 << 20;
/// What an entry costs beside its value's own heap bytes: key, slot, time, `Arc` header.
const ENTRY_COST: usize = 128;

/// Heap bytes a cached value holds, for [`MAX_BYTES`].
pub trait Weight {
    fn weight(&self) -> usize;
}

struct Timed<K, V> {
    map: HashMap<K, (Instant, V)>,
    pruned: Instant,
    /// What the entries weigh, [`ENTRY_COST`] included.
    bytes: usize,
}

/// Values computed for a container in the last [`FRESH`].
pub struct Recent<K, V> {
    inner: Mutex<Timed<K, V>>,
}

/// Renderings, per container identity and file, with why they are the host's file
/// when they are.
pub type RenderCache = Recent<(ContainerKey, VirtualFile), (Arc<[u8]>, Option<HostReason>)>;

impl Weight for (Arc<[u8]>, Option<HostReason>) {
    fn weight(&self) -> usize {
        self.0.len()
    }
}

impl Weight for Option<procfile::cpu::CpuView> {
    fn weight(&self) -> usize {
        self.as_ref()
            .map_or(0, |v| std::mem::size_of_val(v.host_ids()))
    }
}

/// Scalars only.
impl Weight for procfile::sysinfo::ContainerInfo {
    fn weight(&self) -> usize {
        0
    }
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Recent {
            inner: Mutex::new(Timed {
                map: HashMap::new(),
                pruned: Instant::now(),
                bytes: 0,
            }),
        }
    }
}

impl<K: Hash + Eq, V: Clone + Weight> Recent<K, V> {
    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        let g = self.lock();
        let (at, v) = g.map.get(key)?;
        (now.saturating_duration_since(*at) < FRESH).then(|| v.clone())
    }

    pub fn put(&self, key: K, value: V, now: Instant) {
        let w = ENTRY_COST.saturating_add(value.weight());
        if w > MAX_BYTES {
            return;
        }
        let mut g = self.lock();
        // Past the bounds, or (`nearly`) within a quarter of them.
        let full = |g: &Timed<K, V>, nearly: bool| {
            let (n, b) = if nearly {
                (MAX_ENTRIES / 4 * 3, MAX_BYTES / 4 * 3)
            } else {
                (MAX_ENTRIES, MAX_BYTES)
            };
            g.map.len() >= n || g.bytes.saturating_add(w) > b
        };
        if now.saturating_duration_since(g.pruned) > PRUNE_EVERY || full(&g, false) {
            // Only entries of the last FRESH are ever served.
            g.map
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < FRESH);
            g.bytes = g.map.values().map(|(_, v)| ENTRY_COST + v.weight()).sum();
            g.pruned = now;
            // Nearly full of fresh entries: start again, rather than scan the map on
            // each of the next few puts.
            if full(&g, true) {
                g.map.clear();
                g.bytes = 0;
            }
        }
        if let Some((_, old)) = g.map.insert(key, (now, value)) {
            g.bytes = g.bytes.saturating_sub(ENTRY_COST + old.weight());
        }
        g.bytes += w;
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timed<K, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fresh_entries_hit_and_keys_separate_containers() {
        let c: RenderCache = Recent::default();
        let t = Instant::now();
        let k = |ns: u64, f| {
            let key = ContainerKey::Ns {
                ns: crate::NsId(ns),
                init: 1,
                start_ns: 0,
            };
            (key, f)
        };
        c.put(
            k(1, VirtualFile::Meminfo),
            (Arc::from(&b"a"[..]), Some(HostReason::MemoryRoot)),
            t,
        );
        let (bytes, why) = c.get(&k(1, VirtualFile::Meminfo), t).unwrap();
        assert_eq!((&bytes[..], why), (&b"a"[..], Some(HostReason::MemoryRoot)));
        assert!(c.get(&k(2, VirtualFile::Meminfo), t).is_none());
        assert!(c.get(&k(1, VirtualFile::Stat), t).is_none());
        assert!(c.get(&k(1, VirtualFile::Meminfo), t + FRESH).is_none());
        c.put(
            k(3, VirtualFile::Stat),
            (Arc::from(&b"b"[..]), None),
            t + PRUNE_EVERY + FRESH,
        );
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn fresh_namespaces_reading_large_files_stay_within_the_bytes_bound() {
        let c: RenderCache = Recent::default();
        let t = Instant::now();
        // A 4096-CPU host's /proc/stat, read from a new pid namespace every 10 µs:
        // every entry is fresh, so only the bound in bytes holds them.
        let stat: Arc<[u8]> = vec![b'x'; 400 << 10].into();
        let mut most = 0;
        for i in 0..2_000u64 {
            let key = ContainerKey::Ns {
                ns: crate::NsId(i),
                init: 1,
                start_ns: 0,
            };
            let now = t + Duration::from_micros(10 * i);
            c.put((key.clone(), VirtualFile::Stat), (stat.clone(), None), now);
            // A rendering again, within FRESH (two readers' opens crossing).
            c.put((key.clone(), VirtualFile::Stat), (stat.clone(), None), now);
            // What was just put is served.
            assert!(c.get(&(key, VirtualFile::Stat), now).is_some());
            let g = c.lock();
            let held: usize = g.map.values().map(|(_, v)| ENTRY_COST + v.weight()).sum();
            assert_eq!(g.bytes, held);
            most = most.max(held);
        }
        assert!(most <= MAX_BYTES, "{most} bytes held");
        assert!(
            most > MAX_BYTES / 2,
            "{most} bytes held: the bound is not used"
        );
        // Small renderings of as many namespaces are all kept.
        let c: RenderCache = Recent::default();
        for i in 0..2_000u64 {
            let key = ContainerKey::Ns {
                ns: crate::NsId(i),
                init: 1,
                start_ns: 0,
            };
            c.put(
                (key, VirtualFile::Loadavg),
                (Arc::from(&b"0.00"[..]), None),
                t,
            );
        }
        assert_eq!(c.len(), 2_000);
    }
}
