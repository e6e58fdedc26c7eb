//! Kernel FUSE passthrough for the virtual files: the open renders as always, and the
//! kernel serves the reads from a backing file, so an `open` + `read` + `close` costs one
//! synchronous round trip (OPEN) instead of three (OPEN, READ, READ at EOF).
//!
//! # The kernel contract (Linux 6.9+, `fs/fuse/passthrough.c`, `fs/fuse/iomode.c`)
//!
//! - `FUSE_DEV_IOC_BACKING_OPEN` registers a file (here: one memfd per virtual file)
//!   with the connection and returns an id; an OPEN reply with `FOPEN_PASSTHROUGH` and
//!   that id makes the kernel read the backing file itself. It fails with `EPERM` unless
//!   `FUSE_PASSTHROUGH` was negotiated at INIT with `max_stack_depth` ≥ 1 and we hold
//!   `CAP_SYS_ADMIN` in the initial user namespace; older kernels don't know the ioctl.
//! - **One backing per FUSE inode at a time**: while any open of an inode carries
//!   `FOPEN_PASSTHROUGH`, every other open of it must carry it too, with the *same*
//!   id (another id: `EBUSY`; none: `EINVAL`; the reader sees `EIO`). The check happens
//!   when the opener runs again after our reply, so two answers are checked in an order
//!   we cannot know.
//! - `FOPEN_PASSTHROUGH | FOPEN_DIRECT_IO` is allowed: reads come to us (direct I/O
//!   wins), only `mmap` uses the backing file.
//! - The kernel drops an open's claim on the inode when the file is closed, *before* it
//!   queues the (asynchronous) RELEASE, and takes it only once it has our OPEN reply: a
//!   count of live opens kept by us is never below the kernel's.
//! - Ids belong to the connection, not to a process: they outlive the worker that
//!   registered them.
//!
//! # One id per file for the life of the connection
//!
//! The ids and memfds are registered once, by the worker that answers INIT and before
//! it serves anything, and shared by every later worker ([`Shared`]). From then on
//! **every** open of a virtual file carries `FOPEN_PASSTHROUGH` with that file's id, so
//! answers can never conflict, whatever their order, across any number of workers,
//! restarts and upgrades. A file without an id (no passthrough on this kernel, or its
//! registration failed) is never answered with the flag. An open is one of:
//!
//! - **pure** (`FOPEN_PASSTHROUGH`): the memfd holds this reader's rendering and the
//!   kernel serves every read. The memfd is only rewritten when no pure open of the file
//!   is live, in any worker (the count is shared); an open whose rendering is byte for
//!   byte what the memfd holds (the same container, within the render cache's lifetime)
//!   shares it.
//! - **flagged** (`FOPEN_PASSTHROUGH | FOPEN_DIRECT_IO`): reads come to us and are
//!   served from this open's own snapshot, as with direct I/O.
//! - **served** (`FOPEN_DIRECT_IO`): files without an id, and the host files.
//!
//! A pure open's handle says so (a bit of the handle number), so that its RELEASE
//! lowers the shared count even when a later worker receives it. The count is raised
//! before the OPEN is answered and lowered after the RELEASE is, so a worker dying in
//! between can only leave it too high: that file then stops getting pure opens (it is
//! served, correctly, at the speed of direct I/O) until the daemon is restarted.
//!
//! # Who gets pure passthrough: readers that have shown they read once
//!
//! The kernel never tells us about a pure open's reads, and in particular not about a
//! rewind: `top` keeps `/proc/stat` (and `/proc/meminfo`) open and `lseek(0)` + `read`s it
//! every refresh; with pure passthrough it would read the same memfd forever and show
//! a frozen, idle container, and its never-released open would also keep the memfd
//! from being rewritten for anyone else. Nothing at OPEN says whether the reader will
//! read once and close or hold the file, so we look at what the same thread did with
//! the same file just before:
//!
//! - a thread's open is pure only after [`PROOF`] earlier opens of that file by that
//!   thread were each read to the end, never rewound and closed, the last within
//!   [`MEMORY`], and when none of its other live opens of the file is served by us
//!   (one of those may be held and rewound). Its live *pure* opens don't count: the
//!   RELEASE of a poller's previous open is asynchronous and often still on its way
//!   (or in another of our threads) when the next OPEN arrives, and counting it sent
//!   one open in twenty down the three-round-trip path with two readers;
//! - a rewind (a read at offset 0 after data was served) or a pure open kept longer than
//!   [`HELD`] marks the thread as one that holds the file: never pure again for that file
//!   (until [`MEMORY`] of silence, after which its id may belong to another thread).
//!
//! So `top` (a fresh process opens `/proc/stat` once and keeps it), `vmstat`, or a
//! script that opens once and rewinds are always served by us and see time move; `cat`
//! in a new process is served (its first open); a poller that opens, reads and closes
//! (htop, agents, the benchmark) gets passthrough from its third open on. Two opens
//! (not one) are asked for because procps 3.3 reads `/proc/stat` once at start
//! (`getbtime`) before opening it for good. What remains unguarded is a thread that
//! reads a file to its end and closes it twice, then within seconds opens it again and
//! holds it with rewinds: that handle would serve its open-time snapshot (its own
//! container's, never another's: the memfd is not rewritten while it is open).
//!
//! # mmap
//!
//! The kernel's own /proc files refuse `mmap` (`EIO`). FUSE never asks us: an open
//! carrying the flag (pure or flagged) maps the memfd, i.e. the most recent pure open's
//! rendering, which may be another container's, or an empty file (`SIGBUS`); a private
//! mapping of a direct-I/O file goes through the inode's page cache, which all
//! containers share. No kernel interface lets us refuse it: a backing file must be a
//! regular file we can fill, and those allow read-only mappings. The README's "Limits"
//! says so. By default (without `--fuse-passthrough`) the connection's backing files
//! are a namespace file that can be neither read nor mapped
//! ([`connection::Backing::Unmappable`]) and every open is flagged: reads come to us,
//! and the kernel refuses every mapping (`ENODEV`), shared or private (Linux 6.12+;
//! 6.9 to 6.11 take only backing files with `read_iter` and `write_iter`. A pipe has
//! both and no `mmap`, but 6.18 refuses it at `BACKING_OPEN` (`EINVAL`), so it could
//! not be tested here, and it is not used.)
//!
//! # Falling back
//!
//! The first worker asks for `FUSE_PASSTHROUGH` and `max_stack_depth = 1` at INIT; a
//! kernel without it, or a `BACKING_OPEN` that fails (no `CAP_SYS_ADMIN` in the initial
//! user namespace, a kernel before 6.9), leaves the files without ids, logged once, and
//! every worker of the connection serves them with direct I/O.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hostview::VirtualFile;

use connection::Shared;

use crate::handles::Rendering;

/// Clean closes of a file by a thread before its next open of that file may be pure.
pub const PROOF: u8 = 2;
/// How long a thread's record of a file is trusted after its last close.
pub const MEMORY: Duration = Duration::from_secs(3);
/// A pure open released later than this was held: its thread holds the file.
pub const HELD: Duration = Duration::from_secs(1);
/// Bound on the per-thread records (each a few dozen bytes).
const MAX_SEEN: usize = 4096;

/// How an open is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `FOPEN_DIRECT_IO`: reads come to us.
    Served,
    /// `FOPEN_PASSTHROUGH | FOPEN_DIRECT_IO`: reads come to us.
    Flagged,
    /// `FOPEN_PASSTHROUGH`: the kernel reads the memfd.
    Pure,
}

/// The answer for one open: its mode and, unless served, the file's backing id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub mode: Mode,
    pub id: u32,
}

impl Choice {
    pub fn served() -> Choice {
        Choice {
            mode: Mode::Served,
            id: 0,
        }
    }
}

/// What a handle did, told at release.
pub struct Closed {
    pub file: VirtualFile,
    pub mode: Mode,
    /// The opening thread (0: unknown, e.g. adopted from a previous worker).
    pub reader: u32,
    /// Read to the end and never rewound (served and flagged opens).
    pub read_once: bool,
    /// Read at offset 0 again after serving data.
    pub rewound: bool,
    pub lifetime: Duration,
}

pub struct Passthrough {
    share: Option<Arc<Shared>>,
    /// `INIT` negotiated passthrough (only known to the worker that answered it).
    negotiated: AtomicBool,
    /// What this worker last wrote to each memfd, and the version it wrote.
    files: Vec<Mutex<Written>>,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Written {
    version: u64,
    /// The rendering itself, shared with the handles that read it.
    content: Option<Rendering>,
}

/// What a thread did with a file.
#[derive(Clone, Copy)]
struct Record {
    clean: u8,
    holds: bool,
    /// Opens not yet released, and how many of them are pure.
    live: u16,
    live_pure: u16,
    last: Instant,
}

#[derive(Default)]
struct Seen {
    map: HashMap<(u32, usize), Record>,
}

impl Passthrough {
    /// Without a share, everything is served with direct I/O.
    pub fn new(share: Option<Arc<Shared>>) -> Passthrough {
        Passthrough {
            share,
            negotiated: AtomicBool::new(false),
            files: VirtualFile::ALL
                .iter()
                .map(|_| Mutex::new(Written::default()))
                .collect(),
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Whether to ask for passthrough at INIT.
    pub fn wanted(&self) -> bool {
        self.share.is_some()
    }

    pub fn set_negotiated(&self, with: bool) {
        self.negotiated.store(with, Ordering::Relaxed);
    }

    /// After INIT, before serving: register the backing files (first worker only).
    pub fn register(&self, fuse: std::os::fd::BorrowedFd<'_>) {
        if let Some(share) = &self.share {
            share.register(self.negotiated.load(Ordering::Relaxed), |memfd| {
                fuser::BackingId::create_raw(fuse, memfd)
            });
        }
    }

    /// Decide how to answer an open of `file` by thread `reader` whose rendering is
    /// `content`; a pure answer has already written it to the memfd and counted itself.
    pub fn choose(&self, file: VirtualFile, reader: u32, content: &Rendering) -> Choice {
        let Some(share) = &self.share else {
            return Choice::served();
        };
        let Some(idx) = index(file) else {
            return Choice::served();
        };
        let Some(id) = share.id(idx) else {
            return Choice::served();
        };
        let flagged = Choice {
            mode: Mode::Flagged,
            id,
        };
        if !share.holds_renderings() {
            return flagged;
        }
        if !self.opened(reader, idx) || content.is_empty() {
            return flagged;
        }
        let Some(written) = self.files.get(idx) else {
            return flagged;
        };
        let mut written = lock(written);
        let Some(_lock) = share.lock(idx) else {
            return flagged;
        };
        let same = written
            .content
            .as_ref()
            .is_some_and(|w| Arc::ptr_eq(w, content) || w[..] == content[..]);
        if written.version == share.version(idx) && same {
            // Readers of one container within its render cache's lifetime get the
            // same bytes: they can share the memfd as it is.
        } else if share.pure(idx) == 0 {
            written.content = None;
            match share.rewrite(idx, content) {
                Ok(v) => {
                    written.version = v;
                    written.content = Some(content.clone());
                }
                Err(e) => {
                    written.version = 0;
                    tracing::debug!("FUSE passthrough: cannot write {}: {e}", file.name());
                    return flagged;
                }
            }
        } else {
            return flagged;
        }
        share.add_pure(idx);
        self.opened_pure(reader, idx);
        Choice {
            mode: Mode::Pure,
            id,
        }
    }

    /// A pure open of `file` was released (and the release answered).
    pub fn released_pure(&self, file: VirtualFile) {
        if let (Some(share), Some(idx)) = (&self.share, index(file)) {
            share.release_pure(idx);
        }
    }

    /// A handle this worker answered is released: learn from what its thread did.
    pub fn closed(&self, c: &Closed) {
        let Some(idx) = index(c.file) else { return };
        if c.reader == 0 || self.share.is_none() {
            return;
        }
        let (clean, holds) = match c.mode {
            Mode::Pure => (c.lifetime < HELD, c.lifetime >= HELD),
            _ => (c.read_once && !c.rewound, c.rewound),
        };
        let mut seen = lock(&self.seen);
        if let Some(r) = seen.map.get_mut(&(c.reader, idx)) {
            r.live = r.live.saturating_sub(1);
            if c.mode == Mode::Pure {
                r.live_pure = r.live_pure.saturating_sub(1);
            }
            r.live_pure = r.live_pure.min(r.live);
            r.holds |= holds;
            if clean {
                r.clean = r.clean.saturating_add(1);
            }
            r.last = Instant::now();
        }
    }

    /// Count an open of file `idx` by `reader`; whether it may be pure.
    fn opened(&self, reader: u32, idx: usize) -> bool {
        if reader == 0 {
            return false;
        }
        let now = Instant::now();
        let mut seen = lock(&self.seen);
        if seen.map.len() >= MAX_SEEN && !seen.map.contains_key(&(reader, idx)) {
            seen.map
                .retain(|_, r| r.live > 0 || now.duration_since(r.last) < MEMORY);
            if seen.map.len() >= MAX_SEEN {
                return false;
            }
        }
        let fresh = Record {
            clean: 0,
            holds: false,
            live: 0,
            live_pure: 0,
            last: now,
        };
        let r = seen.map.entry((reader, idx)).or_insert(fresh);
        if r.live == 0 && now.duration_since(r.last) >= MEMORY {
            // Forgotten: the thread id may have been reused by another process.
            *r = fresh;
        }
        let proven = r.live == r.live_pure && !r.holds && r.clean >= PROOF;
        r.live = r.live.saturating_add(1);
        proven
    }

    /// The open just counted by [`Passthrough::opened`] is answered pure.
    fn opened_pure(&self, reader: u32, idx: usize) {
        if let Some(r) = lock(&self.seen).map.get_mut(&(reader, idx)) {
            r.live_pure = r.live_pure.saturating_add(1).min(r.live);
        }
    }
}

fn index(file: VirtualFile) -> Option<usize> {
    VirtualFile::ALL.iter().position(|&f| f == file)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is a few field assignments; a panic cannot leave them torn.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn closed(file: VirtualFile, reader: u32, read_once: bool, rewound: bool) -> Closed {
        Closed {
            file,
            mode: Mode::Flagged,
            reader,
            read_once,
            rewound,
            lifetime: Duration::from_millis(1),
        }
    }

    /// A rendering of these bytes.
    fn r(b: &[u8]) -> Rendering {
        Rendering::from(b)
    }

    fn share() -> Arc<Shared> {
        let s = Shared::create(connection::Backing::Memfds).unwrap();
        s.set_ids_for_test();
        Arc::new(s)
    }

    /// Two clean passes by `reader`, so that its next open may be pure.
    fn prove(pt: &Passthrough, f: VirtualFile, reader: u32) {
        for _ in 0..PROOF {
            assert_eq!(pt.choose(f, reader, &r(b"x")).mode, Mode::Flagged);
            pt.closed(&closed(f, reader, true, false));
        }
    }

    #[test]
    fn a_thread_earns_passthrough_by_reading_once_and_loses_it_by_rewinding() {
        let pt = Passthrough::new(Some(share()));
        let stat = index(VirtualFile::Stat).unwrap();
        let f = VirtualFile::Stat;
        // Fresh thread: not proven.
        assert!(!pt.opened(7, stat));
        pt.closed(&closed(f, 7, true, false));
        assert!(!pt.opened(7, stat));
        // A partial read proves nothing.
        pt.closed(&closed(f, 7, false, false));
        assert!(!pt.opened(7, stat));
        pt.closed(&closed(f, 7, true, false));
        assert!(pt.opened(7, stat));
        // A second open while the first is live is not pure.
        assert!(!pt.opened(7, stat));
        pt.closed(&closed(f, 7, true, false));
        pt.closed(&closed(f, 7, true, false));
        // Another file or another thread has its own record.
        assert!(!pt.opened(7, index(VirtualFile::Meminfo).unwrap()));
        assert!(!pt.opened(8, stat));
        // A rewind marks the thread as one that holds the file.
        assert!(pt.opened(7, stat));
        pt.closed(&closed(f, 7, true, true));
        assert!(!pt.opened(7, stat));
        pt.closed(&closed(f, 7, true, false));
        assert!(!pt.opened(7, stat));
    }

    #[test]
    fn a_live_pure_open_does_not_block_the_next_but_a_served_one_does() {
        let pt = Passthrough::new(Some(share()));
        let f = VirtualFile::Uptime;
        prove(&pt, f, 5);
        assert_eq!(pt.choose(f, 5, &r(b"up")).mode, Mode::Pure);
        // Its RELEASE is still on its way: the next open of the poller stays pure.
        assert_eq!(pt.choose(f, 5, &r(b"up")).mode, Mode::Pure);
        // A new rendering cannot replace the memfd under those two.
        assert_eq!(pt.choose(f, 5, &r(b"up 2")).mode, Mode::Flagged);
        // That served open may be held and rewound: nothing more is pure while it lives.
        assert_eq!(pt.choose(f, 5, &r(b"up")).mode, Mode::Flagged);
        let pure = Closed {
            mode: Mode::Pure,
            ..closed(f, 5, false, false)
        };
        let served = closed(f, 5, true, false);
        for c in [&pure, &pure, &served] {
            pt.closed(c);
        }
        pt.released_pure(f);
        pt.released_pure(f);
        assert_eq!(pt.choose(f, 5, &r(b"up 2")).mode, Mode::Flagged);
        pt.closed(&served);
        pt.closed(&served);
        assert_eq!(pt.choose(f, 5, &r(b"up 2")).mode, Mode::Pure);
    }

    #[test]
    fn a_long_pure_open_marks_a_holder() {
        let pt = Passthrough::new(Some(share()));
        let f = VirtualFile::Meminfo;
        prove(&pt, f, 3);
        let c = pt.choose(f, 3, &r(b"mine"));
        assert_eq!(c.mode, Mode::Pure);
        pt.closed(&Closed {
            mode: Mode::Pure,
            lifetime: HELD,
            ..closed(f, 3, false, false)
        });
        pt.released_pure(f);
        assert_eq!(pt.choose(f, 3, &r(b"mine")).mode, Mode::Flagged);
    }

    #[test]
    fn without_a_share_or_an_id_everything_is_served() {
        let pt = Passthrough::new(None);
        assert!(!pt.wanted());
        assert_eq!(pt.choose(VirtualFile::Stat, 1, &r(b"x")), Choice::served());
        // A share whose first worker found no passthrough: no ids.
        let s = Arc::new(Shared::create(connection::Backing::Memfds).unwrap());
        let pt = Passthrough::new(Some(s.clone()));
        assert!(pt.wanted());
        prove_served(&pt);
    }

    fn prove_served(pt: &Passthrough) {
        for _ in 0..=PROOF {
            assert_eq!(pt.choose(VirtualFile::Stat, 1, &r(b"x")).mode, Mode::Served);
            pt.closed(&closed(VirtualFile::Stat, 1, true, false));
        }
    }

    #[test]
    fn the_memfd_is_rewritten_only_when_no_pure_open_is_live() {
        let s = share();
        let f = VirtualFile::Meminfo;
        let i = index(f).unwrap();
        let pt = Passthrough::new(Some(s.clone()));
        for r in [1, 2, 3] {
            prove(&pt, f, r);
        }
        let a = pt.choose(f, 1, &r(b"container A"));
        assert_eq!(a.mode, Mode::Pure);
        assert_ne!(a.id, 0);
        assert_eq!(s.memfd_for_test(i), b"container A");
        // The same bytes share the memfd; other bytes must be served by us.
        assert_eq!(pt.choose(f, 2, &r(b"container A")).mode, Mode::Pure);
        assert_eq!(pt.choose(f, 3, &r(b"container B")).mode, Mode::Flagged);
        assert_eq!(s.pure(i), 2);
        assert_eq!(s.memfd_for_test(i), b"container A");
        for r in [1, 2, 3] {
            pt.closed(&closed(f, r, true, false));
        }
        pt.released_pure(f);
        pt.released_pure(f);
        assert_eq!(pt.choose(f, 3, &r(b"container B")).mode, Mode::Pure);
        assert_eq!(s.memfd_for_test(i), b"container B");
    }

    #[test]
    fn a_later_worker_respects_the_pure_opens_of_an_earlier_one() {
        let s = share();
        let f = VirtualFile::Stat;
        let i = index(f).unwrap();
        let old = Passthrough::new(Some(s.clone()));
        prove(&old, f, 1);
        assert_eq!(old.choose(f, 1, &r(b"A")).mode, Mode::Pure);
        // The old worker dies with that open live; the next one has its own records.
        drop(old);
        let new = Passthrough::new(Some(s.clone()));
        prove(&new, f, 2);
        // Even the same bytes are not shared: it cannot know what the memfd holds.
        assert_eq!(new.choose(f, 2, &r(b"A")).mode, Mode::Flagged);
        new.closed(&closed(f, 2, true, false));
        assert_eq!(s.memfd_for_test(i), b"A");
        // The RELEASE of the old open reaches the new worker.
        new.released_pure(f);
        assert_eq!(new.choose(f, 2, &r(b"B")).mode, Mode::Pure);
        assert_eq!(s.memfd_for_test(i), b"B");
    }
}
