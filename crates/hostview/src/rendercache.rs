//! Recent renderings per container.
//!
//! A rendering depends on the container, never on which of its processes reads, so a
//! second open in the same container within [`FRESH`] gets the same bytes without
//! re-reading a dozen cgroup and `/proc` files. Monitoring agents and `top` poll every
//! second or more, so they always see fresh data; a burst of opens (several tools, a
//! shell loop) costs one rendering per 100 ms per file. Keys are per container
//! identity, so two containers never share an entry whatever their limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::files::VirtualFile;

pub const FRESH: Duration = Duration::from_millis(100);
/// Entries are dropped after this (at the next prune), and the map is bounded.
const KEEP: Duration = Duration::from_secs(2);
const PRUNE_EVERY: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 65536;

type Entries = HashMap<(String, VirtualFile), (Instant, Arc<Vec<u8>>)>;

pub struct RenderCache {
    inner: Mutex<(Entries, Instant)>,
}

impl Default for RenderCache {
    fn default() -> Self {
        RenderCache {
            inner: Mutex::new((HashMap::new(), Instant::now())),
        }
    }
}

impl RenderCache {
    pub fn get(&self, key: &str, file: VirtualFile, now: Instant) -> Option<Arc<Vec<u8>>> {
        let g = self.lock();
        let (at, bytes) = g.0.get(&(key.to_string(), file))?;
        (now.saturating_duration_since(*at) < FRESH).then(|| bytes.clone())
    }

    pub fn put(&self, key: String, file: VirtualFile, bytes: &[u8], now: Instant) {
        let mut g = self.lock();
        if now.saturating_duration_since(g.1) > PRUNE_EVERY || g.0.len() >= MAX_ENTRIES {
            g.0.retain(|_, (at, _)| now.saturating_duration_since(*at) < KEEP);
            g.1 = now;
            if g.0.len() >= MAX_ENTRIES {
                g.0.clear();
            }
        }
        g.0.insert((key, file), (now, Arc::new(bytes.to_vec())));
    }

    pub fn len(&self) -> usize {
        self.lock().0.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Entries, Instant)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_entries_hit_and_keys_separate_containers() {
        let c = RenderCache::default();
        let t = Instant::now();
        c.put("ns:1".into(), VirtualFile::Meminfo, b"a", t);
        assert_eq!(
            c.get("ns:1", VirtualFile::Meminfo, t)
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"a"[..])
        );
        assert!(c.get("ns:2", VirtualFile::Meminfo, t).is_none());
        assert!(c.get("ns:1", VirtualFile::Stat, t).is_none());
        assert!(c.get("ns:1", VirtualFile::Meminfo, t + FRESH).is_none());
        c.put(
            "ns:3".into(),
            VirtualFile::Stat,
            b"b",
            t + KEEP + PRUNE_EVERY + FRESH,
        );
        assert_eq!(c.len(), 1);
    }
}
