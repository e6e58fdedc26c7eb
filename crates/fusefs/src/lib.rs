//! The FUSE adapter: maps kernel requests onto [`hostview::Host`] and nothing more.
//!
//! Each handler is a few lines: find the node, ask `hostview`, reply. Domain logic lives
//! below this crate so the transport can be patched or swapped without touching it.

mod handles;
mod tree;

use std::ffi::OsStr;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyLseek, ReplyOpen, Request, SessionACL,
};
use hostview::{Host, VirtualFile};

pub use fuser::BackgroundSession;
use handles::{Handles, Read, window};
use tree::{Kind, Node};

/// The tree never changes shape, so the kernel may cache names and attributes for long.
/// (A per-reader directory would need 0 here; none exists yet.)
const TTL: Duration = Duration::from_secs(3600);

/// Transport settings.
#[derive(Debug, Clone)]
pub struct MountConfig {
    /// Event-loop threads, each with its own cloned `/dev/fuse` queue.
    pub threads: usize,
    /// Extra `-o` options passed to the kernel.
    pub extra_options: Vec<String>,
}

pub struct LxcFs {
    host: Arc<Host>,
    handles: Handles,
    /// Per-file `st_size`, fixed at start.
    sizes: Vec<(VirtualFile, u64)>,
    started: SystemTime,
}

impl LxcFs {
    pub fn new(host: Arc<Host>) -> LxcFs {
        let sizes = VirtualFile::ALL
            .iter()
            .map(|&f| (f, host.size_hint(f)))
            .collect();
        LxcFs {
            host,
            handles: Handles::default(),
            sizes,
            started: SystemTime::now(),
        }
    }

    fn attr(&self, n: &Node) -> FileAttr {
        let (kind, perm, size, nlink) = match n.kind {
            Kind::Dir => (FileType::Directory, 0o555, 0, 2),
            Kind::File(f) => {
                let size = self
                    .sizes
                    .iter()
                    .find(|(g, _)| *g == f)
                    .map_or(4096, |(_, s)| *s);
                (FileType::RegularFile, 0o444, size, 1)
            }
        };
        FileAttr {
            ino: INodeNo(n.ino),
            size,
            blocks: size.div_ceil(512),
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
            crtime: self.started,
            kind,
            perm,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            flags: 0,
            blksize: 4096,
        }
    }
}

/// Run a handler, turning a panic into `EIO` for that one request (the reply, dropped
/// unsent during unwinding, answers EIO) instead of killing the event loop, which
/// would unmount every container's files.
fn guarded(op: &'static str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        tracing::error!("panic while handling {op}; answered EIO");
    }
}

fn errno(e: &hostview::Error) -> Errno {
    Errno::from_i32(e.errno())
}

impl Filesystem for LxcFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        guarded("lookup", || {
            match tree::child(parent.0, name.as_encoded_bytes()) {
                Some(n) => reply.entry(&TTL, &self.attr(n), Generation(0)),
                None => reply.error(Errno::ENOENT),
            }
        })
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        guarded("getattr", || match tree::node(ino.0) {
            Some(n) => reply.attr(&TTL, &self.attr(n)),
            None => reply.error(Errno::ENOENT),
        })
    }

    /// Renders the whole file for this reader. `FOPEN_DIRECT_IO` keeps the kernel from
    /// caching it in the inode's page cache, which would hand container A's content to
    /// container B; `FOPEN_NOFLUSH` saves the FLUSH round trip on close.
    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        guarded("open", || {
            let Some(Kind::File(f)) = tree::node(ino.0).map(|n| n.kind) else {
                return reply.error(Errno::EISDIR);
            };
            if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
                return reply.error(Errno::EACCES);
            }
            let mut buf = Vec::with_capacity(4096);
            match self.host.render(f, req.pid(), &mut buf) {
                Ok(()) => {
                    let fh = self.handles.insert(f, buf);
                    reply.opened(
                        FileHandle(fh),
                        FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_NOFLUSH,
                    );
                }
                Err(e) => {
                    tracing::warn!("open {}: {e}", f.host_path());
                    reply.error(errno(&e));
                }
            }
        })
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        reply: ReplyData,
    ) {
        guarded("read", || {
            let content = match self.handles.read(fh.0, offset) {
                Read::Serve(c) => c,
                Read::Rerender(f) => {
                    let mut buf = Vec::with_capacity(4096);
                    if let Err(e) = self.host.render(f, req.pid(), &mut buf) {
                        return reply.error(errno(&e));
                    }
                    match self.handles.replace(fh.0, buf) {
                        Some(c) => c,
                        None => return reply.error(Errno::EBADF),
                    }
                }
                Read::Unknown => return reply.error(Errno::EBADF),
            };
            reply.data(window(&content, offset, size))
        })
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        guarded("release", || {
            self.handles.remove(fh.0);
            reply.ok();
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

    /// `SEEK_DATA`/`SEEK_HOLE` (asked by `cp` and `grep`): ENOSYS once makes the kernel
    /// use its generic lseek for this connection from then on.
    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: i64,
        _whence: i32,
        reply: ReplyLseek,
    ) {
        guarded("lseek", || reply.error(Errno::ENOSYS))
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        guarded("readdir", || {
            let Some(dir) = tree::node(ino.0).filter(|n| n.kind == Kind::Dir) else {
                return reply.error(Errno::ENOTDIR);
            };
            let dots = [(dir.ino, "."), (dir.parent, "..")];
            let entries = dots
                .iter()
                .map(|&(i, name)| (i, FileType::Directory, name))
                .chain(tree::children(dir.ino).map(|n| {
                    let t = match n.kind {
                        Kind::Dir => FileType::Directory,
                        Kind::File(_) => FileType::RegularFile,
                    };
                    (n.ino, t, n.name)
                }));
            for (i, (ino, kind, name)) in entries.enumerate().skip(offset as usize) {
                if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                    break;
                }
            }
            reply.ok();
        })
    }
}

/// Mount at `mountpoint` and serve from background threads until the returned session
/// is unmounted. Mounted `ro,nosuid,nodev,noexec` with `allow_other` (containers read as
/// any uid), through `mount(2)` directly (we are root; no fusermount), never with
/// auto-unmount (the mount must not depend on a helper process).
pub fn mount(
    host: Arc<Host>,
    mountpoint: &Path,
    cfg: &MountConfig,
) -> io::Result<BackgroundSession> {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::NoExec,
        MountOption::FSName("lxcfs-rs".to_string()),
        MountOption::Subtype("lxcfs-rs".to_string()),
    ];
    config.mount_options.extend(
        cfg.extra_options
            .iter()
            .map(|o| MountOption::CUSTOM(o.clone())),
    );
    config.acl = SessionACL::All;
    config.n_threads = Some(cfg.threads.max(1));
    config.clone_fd = cfg.threads > 1;
    fuser::Session::new(LxcFs::new(host), mountpoint, &config)?.spawn()
}
