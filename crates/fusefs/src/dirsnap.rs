//! Listings of `cgroup/` directories, taken once per open directory.
//!
//! `READDIR` comes in chunks of a few dozen entries, and each chunk listed the host's
//! directory whole again (and named every entry in the inode table), so `ls` of a
//! directory of n cgroups cost n²: seconds of a serving thread for a tenant's 100 000.
//! The listing is now taken at `OPENDIR` and the chunks are cut from it. What all open
//! directories keep is bounded; past it a directory is listed per chunk as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use fuser::FileType;

/// `(inode, type, name)`, `.` and `..` first.
pub type Entry = (u64, FileType, String);

/// Entries kept over all open directories (some 60 bytes each).
const MAX_HELD: usize = 1 << 18;

#[derive(Default)]
pub struct DirSnaps {
    inner: Mutex<Snaps>,
}

#[derive(Default)]
struct Snaps {
    last: u64,
    by_fh: HashMap<u64, Arc<[Entry]>>,
    held: usize,
}

impl DirSnaps {
    /// Keep `entries` for a new open directory: its handle, 0 when they are not kept.
    pub fn keep(&self, entries: Vec<Entry>) -> u64 {
        let mut s = self.lock();
        if s.held.saturating_add(entries.len()) > MAX_HELD {
            return 0;
        }
        s.last = s.last.wrapping_add(1).max(1);
        let fh = s.last;
        s.held += entries.len();
        if let Some(old) = s.by_fh.insert(fh, entries.into()) {
            s.held = s.held.saturating_sub(old.len());
        }
        fh
    }

    /// The listing kept for `fh` (none for 0, or a previous worker's handle).
    pub fn get(&self, fh: u64) -> Option<Arc<[Entry]>> {
        self.lock().by_fh.get(&fh).cloned()
    }

    /// Directory `fh` is closed.
    pub fn forget(&self, fh: u64) {
        let mut s = self.lock();
        if let Some(old) = s.by_fh.remove(&fh) {
            s.held = s.held.saturating_sub(old.len());
        }
    }

    fn lock(&self) -> MutexGuard<'_, Snaps> {
        // Every update is a map operation and a sum; a panic cannot leave them torn.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn listing(n: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| (i as u64, FileType::Directory, format!("c{i}")))
            .collect()
    }

    #[test]
    fn listings_are_kept_per_handle_and_bounded_over_all() {
        let d = DirSnaps::default();
        let a = d.keep(listing(3));
        let b = d.keep(listing(5));
        assert!(a != 0 && b != 0 && a != b);
        assert_eq!(d.get(a).unwrap().len(), 3);
        assert_eq!(d.get(b).unwrap()[4].2, "c4");
        assert!(d.get(0).is_none());
        // Past the bound a directory is not kept; a closed one makes room.
        let big = d.keep(listing(MAX_HELD - 8));
        assert!(big != 0);
        assert_eq!(d.keep(listing(1)), 0);
        d.forget(big);
        assert!(d.get(big).is_none());
        assert_ne!(d.keep(listing(1)), 0);
        d.forget(a);
        d.forget(b);
        assert_eq!(d.lock().held, 1);
    }
}
