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
//! - **One backing file per FUSE inode at a time**: while any open of an inode carries
//!   `FOPEN_PASSTHROUGH`, every other open of it must carry it too, with the *same*
//!   backing (another one: `EBUSY`; none: `EINVAL`; the reader sees `EIO`). Opens without
//!   it (`FOPEN_DIRECT_IO` alone) don't take part and may come and go at any time.
//! - `FOPEN_PASSTHROUGH | FOPEN_DIRECT_IO` is allowed: reads and writes come to us
//!   (direct I/O wins), only `mmap` uses the backing file.
//! - The kernel drops an open's claim on the inode when the file is closed, *before* it
//!   queues the (asynchronous) RELEASE, and takes it only once it has our OPEN reply: our
//!   count of live opens is never below the kernel's.
//! - The backing id is the connection's, not the process's: it stays registered until
//!   `FUSE_DEV_IOC_BACKING_CLOSE` or the end of the connection.
//!
//! # What every virtual file gets (pt-reuse)
//!
//! A bind-mounted `/proc/stat` is one inode for every container, so all its opens share
//! one memfd and one backing id, registered at the first open that wants it. An open is
//! one of:
//!
//! - **pure passthrough** (`FOPEN_PASSTHROUGH`): the memfd is rewritten with this
//!   reader's rendering, which is only safe when no other pure open of the inode is live
//!   (none can be reading the memfd, by the ordering above). The kernel serves every read.
//!   An overlapping open whose rendering is byte for byte what the memfd holds (the
//!   same container, within the render cache's lifetime) shares it, pure as well.
//! - **flagged** (`FOPEN_PASSTHROUGH | FOPEN_DIRECT_IO`, same id): when a pure open is
//!   live, an overlapping open with other content reads its own snapshot from us, as
//!   with direct I/O.
//! - **served** (`FOPEN_DIRECT_IO`): the plain path, reads come to us.
//!
//! # Who gets pure passthrough: readers that have shown they read once
//!
//! The kernel never tells us about a pure open's reads, and in particular not about a
//! rewind: `top` keeps `/proc/stat` (and `/proc/meminfo`) open and `lseek(0)` + `read`s it
//! every refresh; with pure passthrough it would read the same memfd forever and show
//! a frozen, idle container, and its never-released open would also keep every other
//! reader of the inode off the fast path. Nothing at OPEN says whether the reader will
//! read once and close or hold the file, so we look at what the same thread did with
//! the same file just before:
//!
//! - a thread's open is pure only after [`PROOF`] earlier opens of that file by that
//!   thread were each read to the end, never rewound and closed, the last within
//!   [`MEMORY`], and when it has no other open of the file live;
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
//! holds it with rewinds: that handle would serve its open-time snapshot.
//!
//! # Phases: no plain open may race a flagged one
//!
//! The kernel checks an open's flags only when the opener runs again after our reply,
//! so a plain `FOPEN_DIRECT_IO` answer and a flagged answer given just after it may be
//! checked in the other order, and the plain one then fails (`EINVAL`, the reader
//! sees `EIO`). Each inode is therefore in one of two phases:
//!
//! - **plain**: every open is served. The inode enters its passthrough phase at a
//!   proven open only when no served open is *unsettled* (answered but neither read
//!   nor released: the kernel may not have checked it yet; a read or a RELEASE proves
//!   it has).
//! - **passthrough**: every open carries the flag (pure, or flagged and served by us).
//!   An open that may be held (not proven) waits up to [`DRAIN`] for the flagged opens
//!   to end, letting no new pure open in, so that the inode can go back to plain and
//!   the held open be plainly served; if they don't end in time it is flagged.
//!
//! Keeping held opens plain matters when a worker is replaced: the next worker has its
//! own memfds and ids and cannot know the previous one's, so an inode that still has a
//! flagged open of the dead worker (its backing attached in the kernel) refuses every
//! open the new worker answers (`EIO`) until that open is closed. Pure and flagged
//! opens of proven readers end within milliseconds, long before a new worker serves;
//! only a drain that timed out, or a mispredicted holder, leaves such an open behind.
//! A served open that is never read and never closed keeps its inode plain (slower,
//! never wrong).
//!
//! # Falling back
//!
//! The first worker asks for `FUSE_PASSTHROUGH` and `max_stack_depth = 1` at INIT; a
//! kernel without it gets direct I/O only. A worker that adopts an initialised
//! connection cannot know what was negotiated and tries: the first failing
//! `BACKING_OPEN` (not negotiated, no `CAP_SYS_ADMIN` in the initial user namespace,
//! a kernel before 6.9) switches that worker to direct I/O for good, logged once.
//! Backing ids are never closed while the worker lives (one per virtual file, ≤ 15), and
//! those of a worker that dies stay registered until the connection ends: a replacement
//! leaks at most one id and one memfd per virtual file, per worker generation.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fuser::{BackingId, ReplyOpen};
use hostview::VirtualFile;

/// Clean closes of a file by a thread before its next open of that file may be pure.
pub const PROOF: u8 = 2;
/// How long a thread's record of a file is trusted after its last close.
pub const MEMORY: Duration = Duration::from_secs(3);
/// A pure open released later than this was held: its thread holds the file.
pub const HELD: Duration = Duration::from_secs(1);
/// How long an open that may be held waits for the inode's flagged opens to end.
pub const DRAIN: Duration = Duration::from_millis(10);
/// Bound on the per-thread records (each a few dozen bytes).
const MAX_SEEN: usize = 4096;

/// How an open is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `FOPEN_DIRECT_IO`: reads come to us.
    Served,
    /// `FOPEN_PASSTHROUGH | FOPEN_DIRECT_IO`: reads come to us; the inode is in
    /// passthrough mode because a pure open of it is live.
    Flagged,
    /// `FOPEN_PASSTHROUGH`: the kernel reads the memfd.
    Pure,
}

/// The answer for one open: its mode and, unless served, the inode's backing id.
pub struct Choice {
    pub mode: Mode,
    pub id: Option<Arc<BackingId>>,
}

impl Choice {
    pub fn served() -> Choice {
        Choice {
            mode: Mode::Served,
            id: None,
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
    /// A served open that was never read (see [`Passthrough::settled`]).
    pub unsettled: bool,
}

const UNKNOWN: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

pub struct Passthrough {
    state: AtomicU8,
    files: Vec<(Mutex<Slot>, Condvar)>,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Slot {
    backing: Option<Backing>,
    /// Live pure opens (at most 1 with this scheme, counted for safety).
    pure: u32,
    /// Live opens carrying `FOPEN_PASSTHROUGH` (pure ones included).
    flagged: u32,
    /// Opens waiting for `flagged` to reach 0: no new pure open meanwhile.
    draining: u32,
    /// The inode is in its passthrough phase: every open carries the flag.
    pt_phase: bool,
    /// Served opens the kernel may not have checked yet (answered, neither read nor
    /// released): while any is, the inode must not enter its passthrough phase.
    unsettled: u32,
}

struct Backing {
    memfd: File,
    id: Arc<BackingId>,
    /// What the memfd holds.
    written: Vec<u8>,
}

/// What a thread did with a file.
#[derive(Clone, Copy)]
struct Record {
    clean: u8,
    holds: bool,
    live: u16,
    last: Instant,
}

#[derive(Default)]
struct Seen {
    map: HashMap<(u32, usize), Record>,
}

impl Passthrough {
    /// `wanted: false` serves everything with direct I/O.
    pub fn new(wanted: bool) -> Passthrough {
        Passthrough {
            state: AtomicU8::new(if wanted { UNKNOWN } else { OFF }),
            files: VirtualFile::ALL
                .iter()
                .map(|_| (Mutex::new(Slot::default()), Condvar::new()))
                .collect(),
            seen: Mutex::new(Seen::default()),
        }
    }

    pub fn wanted(&self) -> bool {
        self.state.load(Ordering::Relaxed) != OFF
    }

    /// INIT was negotiated by us: with (`true`) or without passthrough.
    pub fn negotiated(&self, with: bool) {
        let _ = self.state.compare_exchange(
            UNKNOWN,
            if with { ON } else { OFF },
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn disable(&self, why: &std::io::Error) {
        if self.state.swap(OFF, Ordering::Relaxed) != OFF {
            tracing::warn!(
                "FUSE passthrough unavailable ({why}); serving every read with direct I/O"
            );
        }
    }

    /// Decide how to answer an open of `file` by thread `reader` whose rendering is
    /// `content`; a pure answer has already written it to the memfd.
    pub fn choose(
        &self,
        file: VirtualFile,
        reader: u32,
        content: &[u8],
        reply: &ReplyOpen,
    ) -> Choice {
        if !self.wanted() {
            return Choice::served();
        }
        let Some(idx) = index(file) else {
            return Choice::served();
        };
        let Some((slot, cv)) = self.files.get(idx) else {
            return Choice::served();
        };
        let proven = self.opened(reader, idx);
        let mut s = lock(slot);
        if !proven {
            if s.pt_phase {
                // Leave the passthrough phase once the kernel has no flagged open.
                s.draining += 1;
                let (g, _) = cv
                    .wait_timeout_while(s, DRAIN, |s| s.pt_phase && s.flagged > 0)
                    .unwrap_or_else(|p| p.into_inner());
                s = g;
                s.draining -= 1;
                if s.flagged == 0 {
                    s.pt_phase = false;
                }
            }
            if !s.pt_phase {
                s.unsettled += 1;
                return Choice::served();
            }
            // Still flagged opens of the inode: this one must carry the flag too.
            let Some(id) = s.backing.as_ref().map(|b| b.id.clone()) else {
                s.unsettled += 1;
                return Choice::served();
            };
            s.flagged += 1;
            return Choice {
                mode: Mode::Flagged,
                id: Some(id),
            };
        }
        if !s.pt_phase {
            if s.unsettled > 0 || s.draining > 0 {
                s.unsettled += 1;
                return Choice::served();
            }
            if s.backing.is_none() {
                match register(file, reply) {
                    Ok(b) => s.backing = Some(b),
                    Err(e) => {
                        s.unsettled += 1;
                        drop(s);
                        self.disable(&e);
                        return Choice::served();
                    }
                }
            }
            s.pt_phase = true;
        }
        let (pure, draining) = (s.pure, s.draining);
        let Some(b) = s.backing.as_mut() else {
            return Choice::served();
        };
        let id = b.id.clone();
        let mode = if draining > 0 {
            Mode::Flagged
        } else if !content.is_empty() && b.written == content {
            // Readers of one container within its render cache's lifetime get the
            // same bytes: they can share the memfd as it is.
            Mode::Pure
        } else if pure == 0 && b.rewrite(content).is_ok() {
            Mode::Pure
        } else {
            Mode::Flagged
        };
        if mode == Mode::Pure {
            s.pure += 1;
        }
        s.flagged += 1;
        Choice { mode, id: Some(id) }
    }

    /// A handle that [`choose`](Self::choose) answered (or an adopted one) is released.
    pub fn closed(&self, c: &Closed) {
        let Some(idx) = index(c.file) else { return };
        if c.unsettled {
            self.settled(c.file);
        }
        if c.mode != Mode::Served {
            if let Some((slot, cv)) = self.files.get(idx) {
                let mut s = lock(slot);
                s.flagged = s.flagged.saturating_sub(1);
                if c.mode == Mode::Pure {
                    s.pure = s.pure.saturating_sub(1);
                }
                if s.flagged == 0 && s.draining > 0 {
                    cv.notify_all();
                }
            }
        }
        if c.reader == 0 || !self.wanted() {
            return;
        }
        let (clean, holds) = match c.mode {
            Mode::Pure => (c.lifetime < HELD, c.lifetime >= HELD),
            _ => (c.read_once && !c.rewound, c.rewound),
        };
        let mut seen = lock(&self.seen);
        if let Some(r) = seen.map.get_mut(&(c.reader, idx)) {
            r.live = r.live.saturating_sub(1);
            r.holds |= holds;
            if clean {
                r.clean = r.clean.saturating_add(1);
            }
            r.last = Instant::now();
        }
    }

    /// A served open of `file` was read (or released): the kernel has checked it.
    pub fn settled(&self, file: VirtualFile) {
        if let Some((slot, _)) = index(file).and_then(|i| self.files.get(i)) {
            let mut s = lock(slot);
            s.unsettled = s.unsettled.saturating_sub(1);
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
        let r = seen.map.entry((reader, idx)).or_insert(Record {
            clean: 0,
            holds: false,
            live: 0,
            last: now,
        });
        if r.live == 0 && now.duration_since(r.last) >= MEMORY {
            // Forgotten: the thread id may have been reused by another process.
            *r = Record {
                clean: 0,
                holds: false,
                live: 0,
                last: now,
            };
        }
        let proven = r.live == 0 && !r.holds && r.clean >= PROOF;
        r.live = r.live.saturating_add(1);
        proven
    }

    #[cfg(test)]
    fn live(&self, file: VirtualFile) -> (u32, u32) {
        let Some((slot, _)) = index(file).and_then(|i| self.files.get(i)) else {
            return (0, 0);
        };
        let s = lock(slot);
        (s.pure, s.flagged)
    }
}

fn index(file: VirtualFile) -> Option<usize> {
    VirtualFile::ALL.iter().position(|&f| f == file)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is a few counter operations; a panic cannot leave them torn.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A memfd for `file`, registered as a backing file of the connection.
fn register(file: VirtualFile, reply: &ReplyOpen) -> std::io::Result<Backing> {
    let name = format!("lxcfs-rs:{}", file.name());
    let memfd = File::from(rustix::fs::memfd_create(
        name.as_str(),
        rustix::fs::MemfdFlags::CLOEXEC,
    )?);
    let id = reply.open_backing(&memfd)?;
    tracing::debug!("FUSE passthrough: {name} is backed by id {id:?}");
    Ok(Backing {
        memfd,
        id: Arc::new(id),
        written: Vec::new(),
    })
}

impl Backing {
    /// Make the memfd hold exactly `content`.
    fn rewrite(&mut self, content: &[u8]) -> std::io::Result<()> {
        self.written.clear();
        self.memfd.write_all_at(content, 0)?;
        self.memfd.set_len(content.len() as u64)?;
        self.written.extend_from_slice(content);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn closed(file: VirtualFile, reader: u32, read_once: bool, rewound: bool) -> Closed {
        Closed {
            file,
            mode: Mode::Served,
            reader,
            read_once,
            rewound,
            lifetime: Duration::from_millis(1),
            unsettled: false,
        }
    }

    #[test]
    fn a_thread_earns_passthrough_by_reading_once_and_loses_it_by_rewinding() {
        let pt = Passthrough::new(true);
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
    fn a_long_pure_open_marks_a_holder() {
        let pt = Passthrough::new(true);
        let f = VirtualFile::Meminfo;
        let i = index(f).unwrap();
        for _ in 0..PROOF {
            assert!(!pt.opened(3, i));
            pt.closed(&closed(f, 3, true, false));
        }
        assert!(pt.opened(3, i));
        pt.closed(&Closed {
            mode: Mode::Pure,
            lifetime: HELD,
            ..closed(f, 3, false, false)
        });
        assert!(!pt.opened(3, i));
    }

    #[test]
    fn unknown_readers_and_disabled_passthrough_are_never_proven() {
        let pt = Passthrough::new(false);
        assert!(!pt.wanted());
        let pt = Passthrough::new(true);
        assert!(!pt.opened(0, 0));
        pt.negotiated(false);
        assert!(!pt.wanted());
        pt.negotiated(true);
        assert!(!pt.wanted(), "OFF is final");
    }

    #[test]
    fn releases_of_flagged_and_pure_opens_are_counted() {
        let pt = Passthrough::new(true);
        let f = VirtualFile::Uptime;
        {
            let mut s = lock(&pt.files[index(f).unwrap()].0);
            s.pure = 1;
            s.flagged = 2;
        }
        pt.closed(&Closed {
            mode: Mode::Flagged,
            ..closed(f, 0, true, false)
        });
        assert_eq!(pt.live(f), (1, 1));
        pt.closed(&Closed {
            mode: Mode::Pure,
            ..closed(f, 0, true, false)
        });
        assert_eq!(pt.live(f), (0, 0));
        // Never below zero (a release we did not count, e.g. after a restart).
        pt.closed(&Closed {
            mode: Mode::Pure,
            ..closed(f, 0, true, false)
        });
        assert_eq!(pt.live(f), (0, 0));
    }
}
