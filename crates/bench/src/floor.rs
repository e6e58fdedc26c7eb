//! `floor-server`: a FUSE server that does no work, for `soak --floor`.
//!
//! It serves `proc/meminfo`, `proc/stat`, `proc/uptime` and `proc/loadavg` with the
//! host's text as read once at start, answering each request from memory, so what it
//! costs under a load is what the FUSE protocol alone costs there: the kernel's queue,
//! the wake-ups, reading and answering the device. It speaks to the kernel as lxcfs-rs
//! does by default, so a poll makes the same requests of both (OPEN with
//! `FOPEN_DIRECT_IO | FOPEN_NOFLUSH`, READs to end of file, the asynchronous RELEASE;
//! attributes and entries cached for an hour, sizes a page multiple) and is mounted the
//! same way (`mount(2)` with `allow_other`). It runs one thread blocking in `read(2)`
//! on the device, the cheapest way to take requests one at a time: no other thread is
//! woken, none polls. No daemon that takes these requests with `read(2)` can use less
//! CPU than this one at the same load, whatever its rendering costs (FUSE over
//! io_uring, Linux 6.14+, is another way to take them, which fuser does not speak).

use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, ReplyAttr, ReplyData, ReplyEntry, ReplyOpen, Request, SessionACL,
};

/// Like lxcfs-rs's static tree: the kernel asks again after an hour.
const TTL: Duration = Duration::from_secs(3600);
const ROOT: u64 = 1;
const PROC: u64 = 2;
/// File inodes are `FIRST_FILE + index` into [`FILES`].
const FIRST_FILE: u64 = 3;
const FILES: [&str; 4] = ["meminfo", "stat", "uptime", "loadavg"];

#[derive(clap::Args, Debug)]
pub struct FloorArgs {
    /// Where to write the server's pid (as the daemons are started).
    #[arg(short = 'p', long)]
    pub pidfile: Option<PathBuf>,
    /// The mountpoint.
    pub mountpoint: PathBuf,
}

struct Floor {
    contents: Vec<Vec<u8>>,
    started: SystemTime,
}

impl Floor {
    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let (kind, perm, nlink, size) = match ino {
            ROOT | PROC => (FileType::Directory, 0o555, 2, 0),
            _ => {
                let len = self.contents.get(file_index(ino)?)?.len() as u64;
                // A page multiple, as lxcfs-rs's size hint: a reader sizes its buffer
                // from it, so the READs per poll match.
                (
                    FileType::RegularFile,
                    0o444,
                    1,
                    len.div_ceil(4096).max(1) * 4096,
                )
            }
        };
        Some(FileAttr {
            ino: INodeNo(ino),
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
        })
    }
}

fn file_index(ino: u64) -> Option<usize> {
    usize::try_from(ino.checked_sub(FIRST_FILE)?).ok()
}

impl Filesystem for Floor {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let ino = match (parent.0, name.to_str()) {
            (ROOT, Some("proc")) => Some(PROC),
            (PROC, Some(n)) => FILES
                .iter()
                .position(|f| *f == n)
                .map(|i| FIRST_FILE + i as u64),
            _ => None,
        };
        match ino.and_then(|i| self.attr(i)) {
            Some(a) => reply.entry(&TTL, &a, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino.0) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if file_index(ino.0).is_some_and(|i| i < FILES.len()) {
            reply.opened(
                FileHandle(ino.0),
                FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_NOFLUSH,
            );
        } else {
            reply.error(Errno::EISDIR);
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(text) = file_index(ino.0).and_then(|i| self.contents.get(i)) else {
            return reply.error(Errno::EISDIR);
        };
        let start = usize::try_from(offset).map_or(text.len(), |o| o.min(text.len()));
        let end = start.saturating_add(size as usize).min(text.len());
        reply.data(&text[start..end]);
    }
}

/// Mount, serve until SIGTERM or SIGINT, unmount.
pub fn run(args: &FloorArgs) -> Result<()> {
    let contents = FILES
        .iter()
        .map(|f| fs::read(format!("/proc/{f}")).with_context(|| format!("reading /proc/{f}")))
        .collect::<Result<Vec<_>>>()?;
    let fs = Floor {
        contents,
        started: SystemTime::now(),
    };
    if let Some(p) = &args.pidfile {
        fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("cannot catch SIGTERM")?;
    fs::create_dir_all(&args.mountpoint)
        .with_context(|| format!("cannot create {}", args.mountpoint.display()))?;
    let fd = connection::open_and_mount(&args.mountpoint, &[], false)
        .with_context(|| format!("cannot mount {}", args.mountpoint.display()))?;
    let mut config = fuser::Config::default();
    config.acl = SessionACL::All;
    config.n_threads = Some(1);
    let session = fuser::Session::from_fd(fs, fd, SessionACL::All, config)
        .context("the FUSE handshake failed")?;
    let background = session.spawn().context("cannot start serving")?;
    eprintln!(
        "lxcfs-bench floor-server: serving {}",
        args.mountpoint.display()
    );
    let _ = signals.forever().next();
    connection::unmount(&args.mountpoint)
        .with_context(|| format!("cannot unmount {}", args.mountpoint.display()))?;
    drop(background);
    Ok(())
}
