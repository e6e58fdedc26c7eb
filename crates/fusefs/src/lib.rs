//! The FUSE adapter: maps kernel requests onto [`hostview::Host`] and nothing more.
//!
//! Each handler is a few lines: find the node, ask `hostview`, reply. Domain logic lives
//! below this crate so the transport can be patched or swapped without touching it.

mod attr;
mod backing;
mod cgroupfs;
mod dirsnap;
mod handles;
mod journal;
mod pagecache;
mod passthrough;
mod psi;
mod seek;
mod serve;
mod sources;
mod sysfs;
mod throttle;
mod tree;

use std::ffi::OsStr;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use connection::counters::{self, Op, OpenMode, Outcome};
use connection::{Counters, Shared};
use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenFlags, PollEvents, PollFlags,
    PollNotifier, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyIoctl, ReplyLseek, ReplyOpen, ReplyPoll, ReplyWrite, ReplyXattr, Request, TimeOrNow,
    WriteFlags,
};
use hostview::{Host, Origin, Rendered, VirtualFile};

pub use fuser::BackgroundSession;
/// What the [`Host`] serving a connection calls before slow work: with one thread
/// reading requests ([`ServeConfig::poll`]), it lets another take over reading; a no-op
/// on any other thread and without it. Pass it as `Options::before_slow_work`.
pub use fuser::{drain, hand_off};
use handles::{Handles, Read, Source, window};
use passthrough::{Mode, Passthrough};
pub use psi::Pollers;
pub use serve::{Connected, ServeConfig, connect};
use sources::is_dynamic;
use tree::{Kind, Node};

/// Names and attributes of the static tree never change, so the kernel may cache them.
const TTL: Duration = Duration::from_secs(3600);
/// Entries below the CPU directory depend on who asks (its `cpuN` set), so the kernel
/// must ask us on every lookup rather than hand one container's answer to another.
const TTL_PER_READER: Duration = Duration::ZERO;

pub struct LxcFs {
    host: Arc<Host>,
    /// Bytes the open handles of one container may pin.
    open_limit: u64,
    handles: Handles,
    pt: Arc<Passthrough>,
    inodes: sysfs::Inodes,
    cgroups: cgroupfs::CgroupTree,
    psi: psi::Psi,
    /// What reaches us through the page cache (splice, sendfile, private mappings).
    cache: pagecache::PageCache,
    /// Listings of open `cgroup/` directories.
    dirs: dirsnap::DirSnaps,
    /// Set once the session exists: raises an inode's `i_size` (see `pagecache`).
    notifier: Arc<std::sync::OnceLock<fuser::Notifier>>,
    /// Stores that may be under way at once: one fewer than the serving threads (see
    /// [`LxcFs::grow`]); set when the session is made.
    stores_left: std::sync::atomic::AtomicUsize,
    /// Per-file `st_size`, fixed at start.
    sizes: Vec<(VirtualFile, u64)>,
    started: SystemTime,
    counters: Arc<Counters>,
}

impl LxcFs {
    pub fn new(
        host: Arc<Host>,
        generation: u64,
        shared: Arc<Shared>,
        open_limit: u64,
        counters: Arc<Counters>,
    ) -> LxcFs {
        let sizes = VirtualFile::ALL
            .iter()
            .map(|&f| (f, host.size_hint(f)))
            .collect();
        LxcFs {
            host,
            handles: Handles::new(generation, open_limit),
            open_limit,
            pt: Arc::new(Passthrough::new(
                shared.wants_passthrough().then(|| shared.clone()),
            )),
            inodes: sysfs::Inodes::default(),
            cgroups: cgroupfs::CgroupTree::default(),
            psi: psi::Psi::new(Some(shared.clone())),
            cache: pagecache::PageCache::default(),
            dirs: dirsnap::DirSnaps::default(),
            notifier: Arc::default(),
            stores_left: std::sync::atomic::AtomicUsize::new(0),
            sizes,
            started: SystemTime::now(),
            counters,
        }
    }

    /// Count a rendering by where it came from (and why, when it is the host's file).
    fn count(&self, file: usize, r: &Rendered) {
        if let Some(why) = r.reason {
            self.counters.host_file(file, why);
        }
        let outcome = match r.origin {
            Origin::Container => Outcome::Virtualized,
            Origin::Cached => Outcome::Cached,
            Origin::HostFallback => Outcome::HostFallback,
            Origin::HostSwitch => Outcome::HostSwitch,
        };
        self.counters.rendered(file, outcome);
    }

    fn attr(&self, n: &Node) -> FileAttr {
        let size = match n.kind {
            Kind::Dir => 0,
            Kind::File(f) => self
                .sizes
                .iter()
                .find(|(g, _)| *g == f)
                .map_or(4096, |(_, s)| *s),
        };
        self.cache.attr_sent(n.ino, size);
        attr::of_node(n, size, self.started)
    }

    /// Raise the kernel's `i_size` of `ino` to `content`'s length (see `pagecache`).
    /// The store waits for any cache READ of the inode still on its way, so another
    /// thread must be free to read and answer it: at most one fewer stores than serving
    /// threads are under way, and an open that finds none left does without (its
    /// inode's cache READs are refused until a store succeeds, and `sendfile` falls
    /// back to `read`). Were every thread storing while READs of those inodes queued (a
    /// container can line them up with `sendfile`), nobody would read the device again.
    fn grow(&self, ino: u64, content: &[u8]) {
        use std::sync::atomic::Ordering;
        let Some((offset, bytes)) = pagecache::grow_bytes(content) else {
            return;
        };
        let Some(n) = self.notifier.get() else {
            return self.cache.grow_failed(ino);
        };
        let took = self
            .stores_left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(1)
            });
        if took.is_err() {
            return self.cache.grow_failed(ino);
        }
        hand_off();
        let stored = n.store(INodeNo(ino), offset, bytes);
        self.stores_left.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = stored {
            tracing::debug!("FUSE_NOTIFY_STORE on inode {ino}: {e}");
            self.cache.grow_failed(ino);
        }
    }

    /// Take over handle `fh` of `ino`, opened by a previous worker, with a new rendering.
    fn adopt(&self, req: &Request, ino: u64, fh: u64) -> Result<handles::Rendering, Errno> {
        let (src, r) = self.source_rendered(req, ino)?;
        self.count(counted_as(ino), &r);
        let ns = r.ns;
        let c = self.handles.adopt(fh, src, r.owner, r.bytes);
        // Not worth a store here: until the next open raises it, i_size is unknown.
        if self.cache.opened(ino, fh, ns, &c, true) {
            self.cache.grow_failed(ino);
        }
        Ok(c)
    }

    /// A READ that fills the page cache: the handle's snapshot as it is (a mapping
    /// that faults again must see the same bytes), or `EINVAL` when the cache could
    /// hand it to another rendering's reader or cut it (see `pagecache`).
    fn read_cached(
        &self,
        req: &Request,
        ino: u64,
        fh: u64,
        offset: u64,
        size: u32,
        reply: ReplyData,
    ) {
        let content = match self.handles.snapshot(fh, offset, size) {
            Some(c) => c,
            None => match self.adopt(req, ino, fh) {
                Ok(c) => c,
                Err(e) => return reply.error(e),
            },
        };
        if self.cache.read(ino, fh, &content, offset, size) {
            reply.data(window(&content, offset, size))
        } else {
            reply.error(Errno::EINVAL)
        }
    }
}

/// An open refused because its container's handles pin too much: said at most once
/// every 10 s (see `throttle`).
fn refused_open(owner: u64, pinned: u64, limit: u64) {
    static SAID: throttle::Throttle = throttle::Throttle::new(Duration::from_secs(10));
    if !SAID.due() {
        return;
    }
    tracing::warn!(
        "the container of pid namespace {owner} holds {} KiB of open files here, the limit per \
         container is {} KiB (--max-open-mib): its opens fail with EMFILE",
        pinned / 1024,
        limit / 1024
    );
}

/// Run a handler, turning a panic into `EIO` for that one request (the reply, dropped
/// unsent during unwinding, answers EIO) instead of killing the event loop, which
/// would unmount every container's files.
fn guarded(op: &'static str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        tracing::error!("panic while handling {op}; answered EIO");
    }
}

pub(crate) fn errno(e: &hostview::Error) -> Errno {
    Errno::from_i32(e.errno())
}

/// Whether node `ino` of the static tree is served with these options (`cgroup/` only
/// with `--enable-cgroup`).
fn shown(host: &Host, ino: u64) -> bool {
    ino != tree::CGROUP || host.options().cgroup_view
}

/// The counters' index of the file behind `ino` (the mirrored CPU tree for any inode
/// that is not a virtual file).
fn counted_as(ino: u64) -> usize {
    match tree::node(ino).map(|n| n.kind) {
        Some(Kind::File(f)) => counters::file_index(f),
        _ => counters::SYS_CPU,
    }
}

impl Filesystem for LxcFs {
    /// Only the first worker of a connection sees INIT. It asks for `FUSE_PASSTHROUGH`
    /// with `max_stack_depth = 1` (fuser's default 0 makes every `BACKING_OPEN` fail
    /// with `EPERM`; 1 is enough for a memfd, whose own depth is 0).
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        if !self.pt.wanted() {
            return Ok(());
        }
        let with = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok();
        if with {
            tracing::info!("FUSE passthrough negotiated");
        } else {
            tracing::info!("the kernel offers no FUSE passthrough; serving with direct I/O");
        }
        self.pt.set_negotiated(with);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        guarded("lookup", || {
            if let Some(n) = tree::child(parent.0, name.as_encoded_bytes()) {
                if !shown(&self.host, n.ino) {
                    return reply.error(Errno::ENOENT);
                }
                return reply.entry(&TTL, &self.attr(&n), Generation(0));
            }
            if cgroupfs::CgroupTree::is_dir_here(parent.0) {
                let a = name.to_str().ok_or(Errno::ENOENT).and_then(|n| {
                    self.cgroups
                        .lookup(&self.host, req.pid(), parent.0, n, self.started)
                });
                return match a {
                    Ok(a) => reply.entry(&TTL_PER_READER, &a, Generation(0)),
                    Err(e) => reply.error(e),
                };
            }
            let rel = name
                .to_str()
                .and_then(|n| self.dyn_path(parent.0, Some(n)))
                .filter(|_| parent.0 == tree::SYS_CPU || is_dynamic(parent.0));
            match rel.map(|r| self.dyn_attr(req, &r)) {
                Some(Ok(a)) => reply.entry(&TTL_PER_READER, &a, Generation(0)),
                Some(Err(e)) => reply.error(e),
                None => reply.error(Errno::ENOENT),
            }
        })
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        guarded("getattr", || {
            if let Some(n) = tree::node(ino.0).filter(|n| shown(&self.host, n.ino)) {
                return reply.attr(&TTL, &self.attr(&n));
            }
            if cgroupfs::owns(ino.0) {
                return match self
                    .cgroups
                    .getattr(&self.host, req.pid(), ino.0, self.started)
                {
                    Ok(a) => reply.attr(&TTL_PER_READER, &a),
                    Err(e) => reply.error(e),
                };
            }
            match self.dyn_path(ino.0, None).map(|r| self.dyn_attr(req, &r)) {
                Some(Ok(a)) => reply.attr(&TTL_PER_READER, &a),
                Some(Err(e)) => reply.error(e),
                None => reply.error(Errno::ENOENT),
            }
        })
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        guarded("readlink", || {
            let host_rel = self
                .dyn_path(ino.0, None)
                .and_then(|r| self.host.cpu_dir_host_path(req.pid(), &r));
            match host_rel.map(|p| self.host.root().readlink(&p)) {
                Some(Ok(target)) => reply.data(target.as_bytes()),
                Some(Err(e)) => reply.error(errno(&e)),
                None => reply.error(Errno::ENOENT),
            }
        })
    }

    /// Renders the whole file for this reader. `FOPEN_DIRECT_IO` keeps `read(2)` out of
    /// the inode's page cache, which would hand container A's content to container B
    /// (splice and private mappings still use it: see `pagecache`, which also needs
    /// `FOPEN_KEEP_CACHE` never set); `FOPEN_NOFLUSH` saves the FLUSH round trip on close.
    ///
    /// A virtual file opened by a thread that has shown it reads the file once and
    /// closes it is instead answered with `FOPEN_PASSTHROUGH` to a memfd holding this
    /// rendering, and the kernel serves its reads without asking us; an open that may be
    /// held and rewound (procps's `top` keeps `/proc/stat` open) is served by us, since
    /// the kernel would not tell us about the rewind, but carries the flag too. The
    /// kernel's rules and why this is safe are in the `passthrough` module. The sysfs
    /// tree is always direct I/O.
    ///
    /// Timed from the handler's start to the reply, per file (the request's time in the
    /// kernel's queue is not ours to see); the latency is recorded just after the reply,
    /// so a scrape may see an open counted a few microseconds before its latency.
    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let start = Instant::now();
        let file = counted_as(ino.0);
        let failed = |e: Errno| {
            self.counters.failed(file, Op::Open, e.code());
            e
        };
        guarded("open", || {
            let writes = flags.0 & libc::O_ACCMODE != libc::O_RDONLY;
            if writes && self.trigger_file(ino.0).is_none() {
                return reply.error(failed(Errno::EACCES));
            }
            // /proc and sysfs files refuse O_DIRECT; so do we, rather than pretend.
            if flags.0 & libc::O_DIRECT != 0 {
                return reply.error(failed(Errno::EINVAL));
            }
            let (src, r) = match self.source_rendered(req, ino.0) {
                Ok(r) => r,
                Err(e) => return reply.error(failed(e)),
            };
            self.count(file, &r);
            if let Err(pinned) = self.handles.admits(r.owner, &r.bytes) {
                refused_open(r.owner, pinned, self.open_limit);
                return reply.error(failed(Errno::EMFILE));
            }
            let reader = req.pid();
            // A handle that takes a trigger is ours to answer: never passed through.
            let choice = match &src {
                Source::Virtual(_) if writes => passthrough::Choice::served(),
                Source::Virtual(f) => self.pt.choose(*f, reader, &r.bytes),
                Source::Host(_) | Source::Pids(_) => passthrough::Choice::served(),
            };
            let content = r.bytes.clone();
            let fh = FileHandle(
                self.handles
                    .insert(src, r.owner, r.bytes, choice.mode, reader),
            );
            // Before the answer: the open then drops the pages the store leaves.
            if self
                .cache
                .opened(ino.0, fh.0, r.ns, &content, choice.mode != Mode::Pure)
            {
                self.grow(ino.0, &content);
            }
            let dio = FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_NOFLUSH;
            let mode = match choice.mode {
                Mode::Pure => OpenMode::Passthrough,
                Mode::Flagged => OpenMode::Flagged,
                Mode::Served => OpenMode::Direct,
            };
            // Counted before the reply: whoever saw the open answered sees it counted.
            self.counters.opened(file, mode);
            match choice.mode {
                Mode::Pure => {
                    backing::reply_passthrough(reply, fh, FopenFlags::FOPEN_NOFLUSH, choice.id)
                }
                Mode::Flagged => backing::reply_passthrough(reply, fh, dio, choice.id),
                Mode::Served => reply.opened(fh, dio),
            }
        });
        self.counters.observe(file, Op::Open, start.elapsed());
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        lock: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let start = Instant::now();
        let file = counted_as(ino.0);
        let failed = |e: Errno| {
            self.counters.failed(file, Op::Read, e.code());
            e
        };
        guarded("read", || {
            // read(2) always names a lock owner; the READs that fill the page cache
            // (splice, sendfile, a private mapping) never do: see `pagecache`.
            if lock.is_none() {
                return self.read_cached(req, ino.0, fh.0, offset, size, reply);
            }
            let content = match self.handles.read(fh.0, offset, size) {
                Read::Serve(c) => c,
                Read::Rerender(src) => {
                    let r = match self.render(req, &src) {
                        Ok(r) => r,
                        Err(e) => return reply.error(failed(e)),
                    };
                    self.count(file, &r);
                    match self.handles.replace(fh.0, r.bytes) {
                        Some(c) => {
                            self.cache.replaced(ino.0, fh.0, &c);
                            c
                        }
                        None => return reply.error(failed(Errno::EBADF)),
                    }
                }
                // A handle a previous worker opened: render it anew for this reader.
                Read::Unknown => match self.adopt(req, ino.0, fh.0) {
                    Ok(c) => c,
                    Err(e) => return reply.error(failed(e)),
                },
            };
            self.counters.read(file);
            reply.data(window(&content, offset, size));
        });
        self.counters.observe(file, Op::Read, start.elapsed());
    }

    /// The shared count of pure opens is lowered only once the RELEASE is answered: a
    /// worker dying before that leaves the request to be resent to the next one, which
    /// must not lower it a second time.
    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        guarded("release", || {
            let trigger = self.psi.remove(fh.0);
            self.cache.closed(ino.0, fh.0);
            let closed = self.handles.remove(fh.0);
            // Learn before answering: the same thread's next OPEN may already be in
            // another of our threads.
            if let Some(closed) = &closed {
                self.pt.closed(closed);
            }
            reply.ok();
            drop(trigger);
            if handles::is_pure(fh.0) {
                // Also a pure open of a previous worker: its file is the inode's.
                let file =
                    closed
                        .map(|c| c.file)
                        .or_else(|| match tree::node(ino.0).map(|n| n.kind) {
                            Some(Kind::File(f)) => Some(f),
                            _ => None,
                        });
                if let Some(f) = file {
                    self.pt.released_pure(f);
                }
            }
        })
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock: LockOwner,
        reply: ReplyEmpty,
    ) {
        guarded("flush", || reply.ok())
    }

    /// Everything is read-only: write access is refused, the rest allowed (the mode
    /// bits already say so; this answers `access(2)` without a second lookup).
    fn access(&self, _req: &Request, _ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        guarded("access", || {
            if mask.contains(AccessFlags::W_OK) {
                reply.error(Errno::EACCES)
            } else {
                reply.ok()
            }
        })
    }

    /// `SEEK_DATA`/`SEEK_HOLE` (asked by `cp` and `grep`), as the kernel's file answers
    /// them (see the `seek` module).
    fn lseek(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        guarded("lseek", || {
            let size = match tree::node(ino.0) {
                Some(n) => Ok(self.attr(&n).size),
                None if cgroupfs::owns(ino.0) => self
                    .cgroups
                    .getattr(&self.host, req.pid(), ino.0, self.started)
                    .map(|a| a.size),
                None => self
                    .dyn_path(ino.0, None)
                    .ok_or(Errno::ENOENT)
                    .and_then(|r| self.dyn_attr(req, &r))
                    .map(|a| a.size),
            };
            match size.and_then(|s| seek::data_or_hole(tree::in_sys(ino.0), s, offset, whence)) {
                Ok(o) => reply.offset(o),
                Err(e) => reply.error(e),
            }
        })
    }

    // What a reader may ask beyond open/read/close is answered as the kernel's own /proc
    // files answer it, and quietly: fuser's defaults log a WARN per request, and any
    // container could fill the host's journal with them (every Python `open()` probes
    // `isatty` with TCGETS).

    /// No file here takes an ioctl, like `/proc/meminfo`.
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        guarded("ioctl", || reply.error(Errno::ENOTTY))
    }

    /// Always ready, with the mask the kernel's own file gives (a /proc file: readable
    /// and writable; a sysfs or PSI file: also `POLLERR | POLLPRI`), except a handle
    /// holding a PSI trigger (`--enable-psi-poll`): `POLLPRI` once it fired, else
    /// nothing yet and a notification when it fires (see `psi`).
    fn poll(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        ph: PollNotifier,
        _events: PollEvents,
        _flags: PollFlags,
        reply: ReplyPoll,
    ) {
        guarded("poll", || {
            if self.host.options().psi_poll {
                if let Some(ev) = self.psi.poll(fh.0, ph) {
                    return reply.poll(ev);
                }
            }
            let mut ready = PollEvents::POLLIN
                | PollEvents::POLLOUT
                | PollEvents::POLLRDNORM
                | PollEvents::POLLWRNORM;
            if tree::polls_priority(ino.0) {
                ready |= PollEvents::POLLERR | PollEvents::POLLPRI;
            }
            reply.poll(ready)
        })
    }

    /// A PSI trigger (`--enable-psi-poll`); nothing else takes writes.
    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        guarded("write", || {
            match self.write_trigger(req, ino.0, fh.0, data) {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(e),
            }
        })
    }

    // The mount is read-only unless `--enable-psi-poll` makes it take triggers: then
    // every other change reaches us and is refused here, quietly (fuser's defaults log
    // each one).

    /// Truncating a pressure file opened for a trigger (`echo … >` opens with
    /// `O_TRUNC`) is a no-op, as on the kernel's file.
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        guarded("setattr", || {
            let truncate_only = size == Some(0) && mode.is_none() && uid.is_none() && gid.is_none();
            match tree::node(ino.0) {
                Some(n) if truncate_only && self.trigger_file(ino.0).is_some() => {
                    reply.attr(&TTL, &self.attr(&n))
                }
                _ => reply.error(Errno::EACCES),
            }
        })
    }

    fn mknod(
        &self,
        _r: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _m: u32,
        _u: u32,
        _d: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EACCES)
    }

    fn mkdir(&self, _r: &Request, _p: INodeNo, _n: &OsStr, _m: u32, _u: u32, reply: ReplyEntry) {
        reply.error(Errno::EACCES)
    }

    fn unlink(&self, _r: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EACCES)
    }

    fn rmdir(&self, _r: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EACCES)
    }

    fn symlink(
        &self,
        _r: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _t: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EACCES)
    }

    fn rename(
        &self,
        _r: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _np: INodeNo,
        _nn: &OsStr,
        _f: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EACCES)
    }

    fn link(&self, _r: &Request, _i: INodeNo, _np: INodeNo, _nn: &OsStr, reply: ReplyEntry) {
        reply.error(Errno::EACCES)
    }

    fn create(
        &self,
        _r: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _m: u32,
        _u: u32,
        _f: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EACCES)
    }

    fn setxattr(
        &self,
        _r: &Request,
        _i: INodeNo,
        _n: &OsStr,
        _v: &[u8],
        _f: i32,
        _p: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EACCES)
    }

    fn removexattr(&self, _r: &Request, _i: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EACCES)
    }

    /// As the kernel's file: sysfs has no such attribute, /proc supports none.
    fn getxattr(&self, _req: &Request, ino: INodeNo, _name: &OsStr, _size: u32, reply: ReplyXattr) {
        guarded("getxattr", || {
            reply.error(if tree::in_sys(ino.0) {
                Errno::ENODATA
            } else {
                Errno::EOPNOTSUPP
            })
        })
    }

    /// No attributes: an empty list, as /proc and sysfs give.
    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        guarded("listxattr", || {
            if size == 0 {
                reply.size(0)
            } else {
                reply.data(&[])
            }
        })
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        guarded("opendir", || {
            // A `cgroup/` directory is listed once here, and READDIR's chunks are cut
            // from it (see `dirsnap`); other directories are small and fixed.
            let mut fh = 0;
            if cgroupfs::CgroupTree::is_dir_here(ino.0) && shown(&self.host, tree::CGROUP) {
                if let Ok(entries) = self.cgroups.entries(&self.host, req.pid(), ino.0) {
                    fh = self.dirs.keep(entries);
                }
            }
            reply.opened(FileHandle(fh), FopenFlags::empty());
        })
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        guarded("releasedir", || {
            self.dirs.forget(fh.0);
            reply.ok();
        })
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        guarded("readdir", || {
            if cgroupfs::CgroupTree::is_dir_here(ino.0) {
                if !shown(&self.host, tree::CGROUP) {
                    return reply.error(Errno::ENOENT);
                }
                if let Some(kept) = self.dirs.get(fh.0) {
                    return add_entries(reply, &kept, offset);
                }
                let entries = match self.cgroups.entries(&self.host, req.pid(), ino.0) {
                    Ok(e) => e,
                    Err(e) => return reply.error(e),
                };
                return add_entries(reply, &entries, offset);
            }
            let (this, parent) = match tree::node(ino.0) {
                Some(n) if n.kind == Kind::Dir => (n.ino, n.parent),
                Some(_) => return reply.error(Errno::ENOTDIR),
                None if is_dynamic(ino.0) => (ino.0, tree::SYS_CPU),
                None => return reply.error(Errno::ENOENT),
            };
            let mut entries: Vec<(u64, FileType, String)> = vec![
                (this, FileType::Directory, ".".into()),
                (parent, FileType::Directory, "..".into()),
            ];
            entries.extend(
                tree::children(this)
                    .filter(|n| shown(&self.host, n.ino))
                    .map(|n| {
                        let t = match n.kind {
                            Kind::Dir => FileType::Directory,
                            Kind::File(_) => FileType::RegularFile,
                        };
                        (n.ino, t, n.name.to_string())
                    }),
            );
            if this == tree::SYS_CPU || is_dynamic(this) {
                match self.dyn_entries(req, this) {
                    Ok(more) => entries.extend(more),
                    Err(e) => return reply.error(e),
                }
            }
            add_entries(reply, &entries, offset);
        })
    }
}

/// Answer a READDIR from `offset` on.
fn add_entries(mut reply: ReplyDirectory, entries: &[(u64, FileType, String)], offset: u64) {
    for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
        if reply.add(INodeNo(*ino), (i + 1) as u64, *kind, name) {
            break;
        }
    }
    reply.ok();
}

#[cfg(test)]
mod relay_tests;
