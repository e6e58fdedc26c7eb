//! Per-open snapshots: the file is rendered once at `open`, and every `read`, at any
//! offset and in any chunk size, is served from that one rendering, so a reader never
//! sees a torn mix of two renderings.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Handles {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Vec<u8>>>>,
}

impl Handles {
    pub fn insert(&self, content: Vec<u8>) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.lock().insert(fh, Arc::new(content));
        fh
    }

    pub fn get(&self, fh: u64) -> Option<Arc<Vec<u8>>> {
        self.lock().get(&fh).cloned()
    }

    pub fn remove(&self, fh: u64) {
        self.lock().remove(&fh);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Vec<u8>>>> {
        // Mutations are single map operations; a panic elsewhere cannot leave it torn.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The part of `content` a `read(offset, size)` returns; empty past the end.
pub fn window(content: &[u8], offset: u64, size: u32) -> &[u8] {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(content.len());
    let end = start.saturating_add(size as usize).min(content.len());
    content.get(start..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_clamps() {
        let c = b"0123456789";
        assert_eq!(window(c, 0, 4), b"0123");
        assert_eq!(window(c, 8, 4), b"89");
        assert_eq!(window(c, 10, 4), b"");
        assert_eq!(window(c, u64::MAX, u32::MAX), b"");
    }

    #[test]
    fn handles_are_distinct_and_released() {
        let h = Handles::default();
        let a = h.insert(b"a".to_vec());
        let b = h.insert(b"b".to_vec());
        assert_ne!(a, b);
        assert_eq!(h.get(a).as_deref().map(Vec::as_slice), Some(&b"a"[..]));
        h.remove(a);
        assert!(h.get(a).is_none());
        assert_eq!(h.len(), 1);
    }
}
