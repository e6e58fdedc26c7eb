//! File attributes: the static tree's, and the host's for mirrored sysfs entries.

use std::time::SystemTime;

use fuser::{FileAttr, FileType, INodeNo};

use crate::tree::{Kind, Node};

/// Our files: `0444 root:root`, directories `0555`. `size` is a page-multiple hint
/// (see `hostview::Host::size_hint`).
pub fn of_node(n: &Node, size: u64, at: SystemTime) -> FileAttr {
    let (kind, perm, nlink) = match n.kind {
        Kind::Dir => (FileType::Directory, 0o555, 2),
        Kind::File(f) if f.root_only() => (FileType::RegularFile, 0o400, 1),
        Kind::File(_) => (FileType::RegularFile, 0o444, 1),
    };
    make(n.ino, kind, perm, nlink, size, at)
}

/// A host entry passed through read-only: its type and permissions without write bits.
/// sysfs reports 4096 for every attribute file, which is also our page-multiple hint.
pub fn of_host(ino: u64, st: &rustix::fs::Stat, at: SystemTime) -> FileAttr {
    let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
    let kind = kind(ft);
    let perm = (st.st_mode & 0o555) as u16;
    let size = match kind {
        FileType::RegularFile => 4096,
        FileType::Symlink => u64::try_from(st.st_size).unwrap_or(0),
        _ => 0,
    };
    let nlink = u32::try_from(st.st_nlink).unwrap_or(1);
    make(ino, kind, perm, nlink, size, at)
}

pub fn kind(ft: rustix::fs::FileType) -> FileType {
    match ft {
        rustix::fs::FileType::Directory => FileType::Directory,
        rustix::fs::FileType::Symlink => FileType::Symlink,
        _ => FileType::RegularFile,
    }
}

fn make(ino: u64, kind: FileType, perm: u16, nlink: u32, size: u64, at: SystemTime) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: at,
        mtime: at,
        ctime: at,
        crtime: at,
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
