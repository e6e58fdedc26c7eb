//! Per-open snapshots.
//!
//! A file is rendered at `open`, and reads at any offset and in any chunk size are
//! served from that rendering, so one pass over the file is never a torn mix of two.
//! A read at offset 0 on a handle that has already served data starts a new pass and
//! renders again: monitoring tools (procps's `top`, `vmstat`) keep `/proc/stat` open
//! and `lseek(0)` + `read` it every refresh, and must see time move.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hostview::VirtualFile;

use crate::passthrough::{Closed, Mode};

/// A file's content for one reader: shared by the render cache, the handles that read
/// it and the passthrough bookkeeping, never copied between them.
pub type Rendering = Arc<[u8]>;

/// What a handle renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Virtual(VirtualFile),
    /// A host file passed through, by its path relative to the host root.
    Host(String),
    /// A cgroup's pid list (host path), in the reader's pid numbering.
    Pids(String),
}

struct Handle {
    file: Source,
    /// Whose account it is charged to (the reader's pid namespace; 0: unknown).
    owner: u64,
    content: Rendering,
    served: bool,
    mode: Mode,
    /// The thread that opened it (0: unknown).
    reader: u32,
    opened: Instant,
    /// A read reached the end of the content.
    eof: bool,
    rewound: bool,
}

impl Handle {
    fn new(file: Source, owner: u64, content: Rendering, mode: Mode, reader: u32) -> Handle {
        Handle {
            file,
            owner,
            content,
            served: false,
            mode,
            reader,
            opened: Instant::now(),
            eof: false,
            rewound: false,
        }
    }
}

pub struct Handles {
    generation: u64,
    next: AtomicU64,
    open: Mutex<Table>,
    /// Bytes the open handles of one owner may pin (see [`Handles::admits`]).
    limit: u64,
}

#[derive(Default)]
struct Table {
    handles: HashMap<u64, Handle>,
    /// Bytes pinned per owner: [`HANDLE_COST`] and the rendering's length per handle
    /// (a rendering shared by several handles is counted for each: an upper bound).
    pinned: HashMap<u64, u64>,
}

/// What a handle costs beyond its rendering: its entry in the table and its share of
/// the map (`a_handle_is_small` keeps this honest).
pub const HANDLE_COST: u64 = 256;

fn cost(content: &[u8]) -> u64 {
    HANDLE_COST + content.len() as u64
}

impl Table {
    fn charge(&mut self, owner: u64, add: u64, remove: u64) {
        let p = self.pinned.entry(owner).or_insert(0);
        *p = p.saturating_add(add).saturating_sub(remove);
        if *p == 0 {
            self.pinned.remove(&owner);
        }
    }
}

/// Handles are `generation << GEN_SHIFT | PURE_BIT (if pure) | n`: unique across the
/// workers that serve one connection over its life, and saying to whichever worker
/// receives the RELEASE whether the open was pure (see `passthrough`).
const GEN_SHIFT: u32 = 40;
const PURE_BIT: u64 = 1 << 39;
const SEQ_MASK: u64 = PURE_BIT - 1;

/// Whether handle `fh` was answered with pure passthrough, by any worker.
pub fn is_pure(fh: u64) -> bool {
    fh & PURE_BIT != 0
}

/// What a read should do.
pub enum Read {
    /// Serve this content.
    Serve(Rendering),
    /// A new pass over the file: render it again, then [`Handles::replace`].
    Rerender(Source),
    Unknown,
}

impl Handles {
    /// Handles of a worker of `generation`; each owner's may pin `limit` bytes.
    pub fn new(generation: u64, limit: u64) -> Handles {
        Handles {
            generation: generation << GEN_SHIFT,
            next: AtomicU64::new(0),
            open: Mutex::new(Table::default()),
            limit,
        }
    }

    /// Whether `owner` may open one more handle of `content`: what its open handles
    /// pin stays within the limit. Checked before an open is answered, so that one
    /// container holding handles without end costs the daemon a bounded amount, and
    /// fails its own opens, not its neighbours'.
    pub fn admits(&self, owner: u64, content: &[u8]) -> Result<(), u64> {
        let pinned = self.lock().pinned.get(&owner).copied().unwrap_or(0);
        if pinned.saturating_add(cost(content)) > self.limit {
            return Err(pinned);
        }
        Ok(())
    }

    /// Take over a handle another worker opened, with a fresh rendering.
    pub fn adopt(&self, fh: u64, file: Source, owner: u64, content: Rendering) -> Rendering {
        let mut h = Handle::new(file, owner, content.clone(), Mode::Served, 0);
        h.served = true;
        let mut t = self.lock();
        t.charge(owner, cost(&content), 0);
        t.handles.insert(fh, h);
        content
    }

    /// A new handle, answered with `mode`, opened by thread `reader`.
    pub fn insert(
        &self,
        file: Source,
        owner: u64,
        content: Rendering,
        mode: Mode,
        reader: u32,
    ) -> u64 {
        let seq = (self.next.fetch_add(1, Ordering::Relaxed) + 1) & SEQ_MASK;
        let pure = if mode == Mode::Pure { PURE_BIT } else { 0 };
        let fh = self.generation | pure | seq;
        let mut t = self.lock();
        t.charge(owner, cost(&content), 0);
        t.handles
            .insert(fh, Handle::new(file, owner, content, mode, reader));
        fh
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Read {
        let mut t = self.lock();
        let Some(h) = t.handles.get_mut(&fh) else {
            return Read::Unknown;
        };
        if offset == 0 && h.served {
            h.rewound = true;
            return Read::Rerender(h.file.clone());
        }
        h.served = true;
        h.eof |= offset.saturating_add(u64::from(size)) >= h.content.len() as u64;
        Read::Serve(h.content.clone())
    }

    /// What a page-cache READ of `fh` is served from: its snapshot as it is, never a
    /// new pass (see `pagecache`).
    pub fn snapshot(&self, fh: u64, offset: u64, size: u32) -> Option<Rendering> {
        let mut t = self.lock();
        let h = t.handles.get_mut(&fh)?;
        h.served = true;
        h.eof |= offset.saturating_add(u64::from(size)) >= h.content.len() as u64;
        Some(h.content.clone())
    }

    /// Install a new rendering for a handle (after [`Read::Rerender`]).
    pub fn replace(&self, fh: u64, content: Rendering) -> Option<Rendering> {
        let mut t = self.lock();
        let h = t.handles.get_mut(&fh)?;
        let (owner, old) = (h.owner, cost(&h.content));
        h.content = content.clone();
        h.served = true;
        t.charge(owner, cost(&content), old);
        Some(content)
    }

    /// Forget a handle; what it did, for a virtual file.
    pub fn remove(&self, fh: u64) -> Option<Closed> {
        let h = {
            let mut t = self.lock();
            let h = t.handles.remove(&fh)?;
            t.charge(h.owner, 0, cost(&h.content));
            h
        };
        match h.file {
            Source::Virtual(file) => Some(Closed {
                file,
                mode: h.mode,
                reader: h.reader,
                read_once: h.eof,
                rewound: h.rewound,
                lifetime: h.opened.elapsed(),
            }),
            Source::Host(_) | Source::Pids(_) => None,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().handles.len()
    }

    #[cfg(test)]
    fn pinned(&self, owner: u64) -> u64 {
        self.lock().pinned.get(&owner).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
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
    #![allow(clippy::unwrap_used)]
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
    fn one_pass_is_one_snapshot_and_rewind_rerenders() {
        let h = Handles::new(3, u64::MAX);
        let a = h.insert(
            Source::Virtual(VirtualFile::Stat),
            7,
            Rendering::from(&b"first"[..]),
            Mode::Served,
            9,
        );
        let b = h.insert(
            Source::Host("x".into()),
            7,
            Rendering::from(&b"other"[..]),
            Mode::Served,
            9,
        );
        assert_ne!(a, b);
        assert_eq!(a >> GEN_SHIFT, 3);
        // A fresh handle serves any offset from the open-time rendering.
        assert!(matches!(h.read(a, 2, 1), Read::Serve(c) if &c[..] == b"first"));
        assert!(matches!(h.read(a, 4, 1), Read::Serve(c) if &c[..] == b"first"));
        // Back at 0 after serving: a new pass.
        assert!(matches!(
            h.read(a, 0, 4096),
            Read::Rerender(Source::Virtual(VirtualFile::Stat))
        ));
        h.replace(a, Rendering::from(&b"second"[..]));
        assert!(matches!(h.read(a, 3, 1), Read::Serve(c) if &c[..] == b"second"));
        // The first read of a fresh handle at 0 uses the open-time rendering.
        assert!(matches!(h.read(b, 0, 4096), Read::Serve(c) if &c[..] == b"other"));
        let c = h.remove(a).unwrap();
        assert!(c.rewound && c.reader == 9 && c.mode == Mode::Served);
        assert!(matches!(h.read(a, 0, 1), Read::Unknown));
        assert_eq!(h.len(), 1);
        // Host files are not told to the passthrough bookkeeping.
        assert!(h.remove(b).is_none());
    }

    #[test]
    fn reading_to_the_end_once_is_read_once() {
        let h = Handles::new(1, u64::MAX);
        let a = h.insert(
            Source::Virtual(VirtualFile::Meminfo),
            7,
            Rendering::from(&b"0123456789"[..]),
            Mode::Flagged,
            5,
        );
        assert!(matches!(h.read(a, 0, 4), Read::Serve(_)));
        assert!(matches!(h.read(a, 4, 4), Read::Serve(_)));
        assert!(matches!(h.read(a, 8, 4096), Read::Serve(_)));
        let c = h.remove(a).unwrap();
        assert!(c.read_once && !c.rewound && c.mode == Mode::Flagged);
    }

    #[test]
    fn a_pure_handle_says_so_to_any_worker() {
        let h = Handles::new(2, u64::MAX);
        let f = Source::Virtual(VirtualFile::Meminfo);
        let a = h.insert(f.clone(), 7, Rendering::from(&[][..]), Mode::Pure, 1);
        let b = h.insert(f, 7, Rendering::from(&[][..]), Mode::Flagged, 1);
        assert!(is_pure(a) && !is_pure(b));
        assert_eq!(a >> GEN_SHIFT, 2);
        assert_ne!(a & SEQ_MASK, b & SEQ_MASK);
    }

    #[test]
    fn a_handle_is_small() {
        // What a handle owns besides its (shared) rendering: the table entry.
        let entry = std::mem::size_of::<(u64, Handle)>() as u64;
        assert!(entry * 2 <= HANDLE_COST, "{entry} bytes per entry");
    }

    #[test]
    fn what_an_owners_handles_pin_is_capped_and_released() {
        let r = Rendering::from(&[b'x'; 1000][..]);
        let h = Handles::new(1, 3 * cost(&r));
        let f = || Source::Virtual(VirtualFile::Meminfo);
        let mut open = Vec::new();
        for _ in 0..3 {
            assert!(h.admits(7, &r).is_ok());
            open.push(h.insert(f(), 7, r.clone(), Mode::Served, 1));
        }
        assert_eq!(h.admits(7, &r), Err(3 * cost(&r)));
        // Another owner is not affected.
        assert!(h.admits(8, &r).is_ok());
        // A new pass with a longer rendering is charged the difference.
        let longer = Rendering::from(&[b'y'; 1500][..]);
        assert!(matches!(h.read(open[0], 0, 10), Read::Serve(_)));
        assert!(matches!(h.read(open[0], 0, 10), Read::Rerender(_)));
        h.replace(open[0], longer.clone());
        assert_eq!(h.pinned(7), 2 * cost(&r) + cost(&longer));
        for fh in open {
            h.remove(fh);
        }
        assert_eq!(h.pinned(7), 0);
        assert!(h.admits(7, &r).is_ok());
    }
}
