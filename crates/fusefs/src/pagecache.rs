//! Reads that reach us through the inode's page cache, which every container shares.
//!
//! # The kernel contract (Linux 6.5+: `fs/fuse/file.c`, `mm/filemap.c`)
//!
//! `FOPEN_DIRECT_IO` sends `read(2)` to us, but not everything: `splice(2)` and
//! `sendfile(2)` on such a file go through `fuse_splice_read` → `filemap_splice_read`,
//! and a `MAP_PRIVATE` mapping through `generic_file_mmap`. Both read the inode's page
//! cache, filled by READs carrying the handle of whoever missed it (`fuse_readahead`,
//! `fuse_read_folio`; these carry no lock owner, a `read(2)`'s always does), and both
//! stop at the inode's `i_size`, which the kernel lowers to the end of any short READ
//! (`fuse_short_read` → `fuse_read_update_size`, unless the inode's attributes changed
//! since the READ was sent) and never raises by itself. Left alone, a reader after a
//! shorter one is cut at the shorter one's length (busybox `cat` uses `sendfile`), and a
//! reader whose pages were filled by another container's READ copies them. Linux 6.1
//! spliced through `read_iter` and had neither problem.
//!
//! # What we do
//!
//! - **`i_size`**: we keep a lower bound of it per inode (0 until we know better).
//!   Before answering an open whose rendering is longer, we raise it to exactly that
//!   length with `FUSE_NOTIFY_STORE` of the rendering's last bytes (`fuse_notify_store`
//!   raises `i_size` to the end of what it stores, never lowers it; the partial page it
//!   leaves is not up to date, and the open drops it anyway: we never set
//!   `FOPEN_KEEP_CACHE`). That reader's first short cache READ then brings `i_size` to
//!   exactly its length: nothing is cut and nothing is padded with the page's zeros.
//! - **Sharing**: a cache READ is answered from its handle's snapshot only while every
//!   other live handle of the inode holds the same rendering, or one of the same length
//!   for the same container (pure passthrough opens never touch the page cache and do
//!   not count), and an open raises `i_size` only then.
//!   Otherwise it is answered `EINVAL`: `sendfile`/`splice` fail as on a file that cannot
//!   splice, and busybox, Python's `shutil`, Rust's `io::copy` fall back to `read(2)`; a
//!   mapping's access is a `SIGBUS`. Pages are filled only by those READs, and each open
//!   drops the cached pages after our answer, so the cache never holds a rendering while
//!   a handle of another one is open: no reader copies another container's pages.
//!
//! A cache READ never renders anew (a rewind is a `read(2)` concern): a mapping that
//! faults again sees the same snapshot.
//!
//! Known gap: a `stat(2)` that makes the kernel ask for attributes (after a store
//! invalidated them) exactly while a cache READ is on its way keeps the kernel from
//! lowering `i_size` for that READ; when the inode's size was above that reader's
//! length, its copy ends with zeros.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::handles::Rendering;

/// Inodes whose entry stays after their last handle closed (see [`PageCache::closed`]).
const KEPT_INODES: usize = 1024;

#[derive(Default)]
pub struct PageCache {
    inodes: Mutex<HashMap<u64, Inode>>,
}

#[derive(Default)]
struct Inode {
    /// A lower bound of the kernel's `i_size` for this inode.
    size: u64,
    /// The open handles that may read through the cache: whose rendering they hold
    /// (the reader's own pid namespace, not the outermost one its bounds are charged
    /// to: a nested namespace renders its own init's cgroup; 0: unknown) and it.
    live: HashMap<u64, (u64, Rendering)>,
}

impl Inode {
    /// Every live handle other than `fh` may share the cache with it: it holds the same
    /// bytes, or a rendering of the same length for the same container (a newer or
    /// older pass over its file), which moves neither `i_size` nor anyone's content
    /// to another container's.
    fn alone_with(&self, fh: u64, ns: u64, content: &Rendering) -> bool {
        self.live.iter().all(|(&g, (o, c))| {
            g == fh
                || Arc::ptr_eq(c, content)
                || (ns != 0 && *o == ns && c.len() == content.len())
                || c[..] == content[..]
        })
    }
}

/// Bytes to store so that `i_size` becomes `len`: the rendering's last byte (two when
/// the last one starts a page, which a store of one byte would leave up to date).
pub fn grow_bytes(content: &[u8]) -> Option<(u64, &[u8])> {
    let len = content.len();
    if len == 0 {
        return None;
    }
    let k = if (len - 1) % 4096 == 0 && len >= 2 {
        2
    } else {
        1
    };
    let start = len - k;
    Some((start as u64, &content[start..]))
}

impl PageCache {
    /// Handle `fh` of inode `ino` is opened with `content` (`cached`: it may read
    /// through the cache; pure passthrough opens do not). Returns whether `i_size`
    /// must be raised to the rendering's length before the open is answered; the
    /// caller then says how that went ([`PageCache::grown`]).
    pub fn opened(&self, ino: u64, fh: u64, ns: u64, content: &Rendering, cached: bool) -> bool {
        if !cached {
            return false;
        }
        let mut t = self.lock();
        let i = t.entry(ino).or_default();
        i.live.insert(fh, (ns, content.clone()));
        let grow = i.size < content.len() as u64 && i.alone_with(fh, ns, content);
        if grow {
            i.size = content.len() as u64;
        }
        grow
    }

    /// The store asked for by [`PageCache::opened`] failed: `i_size` is unknown.
    pub fn grow_failed(&self, ino: u64) {
        if let Some(i) = self.lock().get_mut(&ino) {
            i.size = 0;
        }
    }

    /// A handle's rendering changed (a new pass over it).
    pub fn replaced(&self, ino: u64, fh: u64, content: &Rendering) {
        if let Some((_, c)) = self.lock().get_mut(&ino).and_then(|i| i.live.get_mut(&fh)) {
            *c = content.clone();
        }
    }

    /// A cache READ of `size` bytes at `offset` by handle `fh` holding `content`:
    /// whether to answer it (else `EINVAL`). An answer shorter than asked lowers the
    /// kernel's `i_size` to its end.
    pub fn read(&self, ino: u64, fh: u64, content: &Rendering, offset: u64, size: u32) -> bool {
        let mut t = self.lock();
        let Some(i) = t.get_mut(&ino) else {
            return false;
        };
        let len = content.len() as u64;
        let Some(&(ns, _)) = i.live.get(&fh) else {
            return false;
        };
        if !i.alone_with(fh, ns, content) || i.size < len {
            return false;
        }
        let end = offset.saturating_add(u64::from(size));
        if end > len {
            i.size = i.size.min(offset.max(len));
        }
        true
    }

    /// Attributes with this size were sent for `ino`: the kernel may take them.
    pub fn attr_sent(&self, ino: u64, size: u64) {
        if let Some(i) = self.lock().get_mut(&ino) {
            i.size = i.size.min(size);
        }
    }

    /// Past [`KEPT_INODES`] an inode's entry goes with its last handle: the `/cgroup`
    /// tree's inodes are named by the paths containers open, without end. What it
    /// forgets is a lower bound of `i_size`, which 0 always is (its next open stores
    /// again).
    pub fn closed(&self, ino: u64, fh: u64) {
        let mut t = self.lock();
        let many = t.len() > KEPT_INODES;
        if let Some(i) = t.get_mut(&ino) {
            i.live.remove(&fh);
            if many && i.live.is_empty() {
                t.remove(&ino);
            }
        }
    }

    #[cfg(test)]
    fn inodes(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Inode>> {
        // Every update is a map operation or two; a panic cannot leave them torn.
        self.inodes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn r(b: &[u8]) -> Rendering {
        Rendering::from(b)
    }

    #[test]
    fn inodes_past_the_kept_number_are_forgotten_with_their_last_handle() {
        let pc = PageCache::default();
        let c = r(b"pids.max\n");
        let held = 1_000_000;
        assert!(pc.opened(held, 1, 7, &c, true));
        // A container opening ever new paths of the /cgroup tree, once each.
        for ino in 0..(4 * KEPT_INODES as u64) {
            pc.opened(ino, ino + 2, 7, &c, true);
            pc.closed(ino, ino + 2);
        }
        assert!(pc.inodes() <= KEPT_INODES + 1, "{}", pc.inodes());
        // An inode with an open handle keeps its entry.
        assert!(pc.read(held, 1, &c, 0, 4096));
        // A passthrough open leaves nothing behind.
        assert!(!pc.opened(held + 1, 9, 7, &c, false));
        assert!(pc.inodes() <= KEPT_INODES + 1);
    }

    #[test]
    fn a_longer_rendering_raises_the_size_and_a_short_read_lowers_it() {
        let pc = PageCache::default();
        let (long, short) = (r(&[b'l'; 1174]), r(&[b's'; 1133]));
        // Unknown size: the first open raises it.
        assert!(pc.opened(5, 1, 0, &short, true));
        assert!(pc.read(5, 1, &short, 0, 4096));
        pc.closed(5, 1);
        // The short READ left i_size at 1133: the longer rendering raises it.
        assert!(pc.opened(5, 2, 0, &long, true));
        assert!(pc.read(5, 2, &long, 0, 4096));
        pc.closed(5, 2);
        // A shorter one needs no store: its READ lowers it.
        assert!(!pc.opened(5, 3, 0, &short, true));
        assert!(pc.read(5, 3, &short, 0, 4096));
        pc.closed(5, 3);
        // Attributes sent with a smaller size lower the bound.
        pc.attr_sent(5, 100);
        assert!(pc.opened(5, 4, 0, &short, true));
    }

    #[test]
    fn another_rendering_open_refuses_cache_reads_and_stores() {
        let pc = PageCache::default();
        let (a, b) = (r(b"container A\n"), r(b"container B, longer\n"));
        assert!(pc.opened(1, 10, 7, &a, true));
        // B opens while A is open: no store (A may be copying), and neither reads
        // through the cache while both are open.
        assert!(!pc.opened(1, 20, 8, &b, true));
        assert!(!pc.read(1, 10, &a, 0, 4096));
        assert!(!pc.read(1, 20, &b, 0, 4096));
        pc.closed(1, 10);
        // B alone, but i_size may be below its length: still refused.
        assert!(!pc.read(1, 20, &b, 0, 4096));
        pc.closed(1, 20);
        // The same rendering shares; a pure open does not count.
        assert!(pc.opened(1, 30, 0, &b, true));
        assert!(!pc.opened(1, 31, 0, &b.clone(), true));
        assert!(!pc.opened(1, 32, 0, &a, false));
        assert!(pc.read(1, 30, &b, 0, 4096));
        assert!(pc.read(1, 31, &b, 0, 4096));
        // Other inodes are independent; an unknown handle is refused.
        assert!(!pc.read(2, 30, &b, 0, 4096));
        assert!(!pc.read(1, 99, &b, 0, 4096));
    }

    #[test]
    fn one_containers_passes_of_equal_length_share_and_of_another_length_do_not() {
        let pc = PageCache::default();
        let (old, new, longer) = (r(b"cpu 1 2\n"), r(b"cpu 3 4\n"), r(b"cpu 10 2\n"));
        assert!(pc.opened(4, 1, 9, &old, true));
        assert!(!pc.opened(4, 2, 9, &new, true));
        assert!(pc.read(4, 2, &new, 0, 4096));
        assert!(pc.read(4, 1, &old, 0, 4096));
        // A longer pass of the same container would move i_size under the other.
        assert!(!pc.opened(4, 3, 9, &longer, true));
        assert!(!pc.read(4, 3, &longer, 0, 4096));
        pc.closed(4, 3);
        // Another container, same length: not shared. Unknown owners neither.
        let other = r(b"cpu 5 6\n");
        assert!(!pc.opened(4, 5, 6, &other, true));
        assert!(!pc.read(4, 5, &other, 0, 4096));
        assert!(!pc.read(4, 1, &old, 0, 4096));
        pc.closed(4, 5);
        assert!(!pc.opened(4, 6, 0, &other, true));
        assert!(!pc.read(4, 6, &other, 0, 4096));
        pc.closed(4, 6);
        assert!(pc.read(4, 1, &old, 0, 4096));
    }

    #[test]
    fn a_full_read_keeps_the_size_and_a_failed_store_forgets_it() {
        let pc = PageCache::default();
        let big = r(&[b'x'; 5000]);
        assert!(pc.opened(3, 1, 0, &big, true));
        assert!(pc.read(3, 1, &big, 0, 4096));
        assert!(pc.read(3, 1, &big, 4096, 4096));
        pc.grow_failed(3);
        assert!(!pc.read(3, 1, &big, 0, 4096));
    }

    #[test]
    fn the_stored_bytes_end_the_rendering_and_never_start_a_page() {
        assert_eq!(grow_bytes(b""), None);
        assert_eq!(grow_bytes(b"a"), Some((0, &b"a"[..])));
        assert_eq!(grow_bytes(b"abc"), Some((2, &b"c"[..])));
        let c = vec![b'y'; 4097];
        assert_eq!(grow_bytes(&c), Some((4095, &c[4095..])));
        let c = vec![b'y'; 4098];
        assert_eq!(grow_bytes(&c), Some((4097, &c[4097..])));
    }
}
