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
}

struct Handle {
    file: Source,
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
    fn new(file: Source, content: Rendering, mode: Mode, reader: u32) -> Handle {
        Handle {
            file,
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
    open: Mutex<HashMap<u64, Handle>>,
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
    pub fn new(generation: u64) -> Handles {
        Handles {
            generation: generation << GEN_SHIFT,
            next: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Take over a handle another worker opened, with a fresh rendering.
    pub fn adopt(&self, fh: u64, file: Source, content: Rendering) -> Rendering {
        let mut h = Handle::new(file, content.clone(), Mode::Served, 0);
        h.served = true;
        self.lock().insert(fh, h);
        content
    }

    /// A new handle, answered with `mode`, opened by thread `reader`.
    pub fn insert(&self, file: Source, content: Rendering, mode: Mode, reader: u32) -> u64 {
        let seq = (self.next.fetch_add(1, Ordering::Relaxed) + 1) & SEQ_MASK;
        let pure = if mode == Mode::Pure { PURE_BIT } else { 0 };
        let fh = self.generation | pure | seq;
        self.lock()
            .insert(fh, Handle::new(file, content, mode, reader));
        fh
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Read {
        let mut map = self.lock();
        let Some(h) = map.get_mut(&fh) else {
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

    /// Install a new rendering for a handle (after [`Read::Rerender`]).
    pub fn replace(&self, fh: u64, content: Rendering) -> Option<Rendering> {
        let mut map = self.lock();
        let h = map.get_mut(&fh)?;
        h.content = content.clone();
        h.served = true;
        Some(content)
    }

    /// Forget a handle; what it did, for a virtual file.
    pub fn remove(&self, fh: u64) -> Option<Closed> {
        let h = self.lock().remove(&fh)?;
        match h.file {
            Source::Virtual(file) => Some(Closed {
                file,
                mode: h.mode,
                reader: h.reader,
                read_once: h.eof,
                rewound: h.rewound,
                lifetime: h.opened.elapsed(),
            }),
            Source::Host(_) => None,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Handle>> {
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
        let h = Handles::new(3);
        let a = h.insert(
            Source::Virtual(VirtualFile::Stat),
            Rendering::from(&b"first"[..]),
            Mode::Served,
            9,
        );
        let b = h.insert(
            Source::Host("x".into()),
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
        let h = Handles::new(1);
        let a = h.insert(
            Source::Virtual(VirtualFile::Meminfo),
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
        let h = Handles::new(2);
        let f = Source::Virtual(VirtualFile::Meminfo);
        let a = h.insert(f.clone(), Rendering::from(&[][..]), Mode::Pure, 1);
        let b = h.insert(f, Rendering::from(&[][..]), Mode::Flagged, 1);
        assert!(is_pure(a) && !is_pure(b));
        assert_eq!(a >> GEN_SHIFT, 2);
        assert_ne!(a & SEQ_MASK, b & SEQ_MASK);
    }
}
