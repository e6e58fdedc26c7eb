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
/// Entries are dropped after this (at the next prune), and the map is bounded.
const KEEP: Duration = Duration::from_secs(2);
const PRUNE_EVERY: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 65536;

/// Entries with the time each was computed, and the time of the last prune.
type Timed<K, V> = (HashMap<K, (Instant, V)>, Instant);

/// Values computed for a container in the last [`FRESH`].
pub struct Recent<K, V> {
    inner: Mutex<Timed<K, V>>,
}

/// Renderings, per container identity and file, with why they are the host's file
/// when they are.
pub type RenderCache = Recent<(ContainerKey, VirtualFile), (Arc<[u8]>, Option<HostReason>)>;

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Recent {
            inner: Mutex::new((HashMap::new(), Instant::now())),
        }
    }
}

impl<K: Hash + Eq, V: Clone> Recent<K, V> {
    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        let g = self.lock();
        let (at, v) = g.0.get(key)?;
        (now.saturating_duration_since(*at) < FRESH).then(|| v.clone())
    }

    pub fn put(&self, key: K, value: V, now: Instant) {
        let mut g = self.lock();
        if now.saturating_duration_since(g.1) > PRUNE_EVERY || g.0.len() >= MAX_ENTRIES {
            g.0.retain(|_, (at, _)| now.saturating_duration_since(*at) < KEEP);
            g.1 = now;
            if g.0.len() >= MAX_ENTRIES {
                g.0.clear();
            }
        }
        g.0.insert(key, (now, value));
    }

    pub fn len(&self) -> usize {
        self.lock().0.len()
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
            t + KEEP + PRUNE_EVERY + FRESH,
        );
        assert_eq!(c.len(), 1);
    }
}
