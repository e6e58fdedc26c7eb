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

/// Whether a reader with `uid` and `gid` may read a host entry of `mode`, by the
/// attributes we show for it (`root:root`, its permission bits): without
/// `default_permissions` the kernel leaves the check to us, and the daemon itself can
/// read what the host keeps for root (`cpufreq/cpuinfo_cur_freq` is 0400).
pub fn readable(mode: u32, uid: u32, gid: u32) -> bool {
    let bit = match (uid, gid) {
        (0, _) => return true,
        (_, 0) => 0o040,
        _ => 0o004,
    };
    mode & bit != 0
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

#[cfg(test)]
mod tests {
    use super::readable;

    #[test]
    fn a_host_entry_is_read_as_its_mode_lets_root_its_group_and_others() {
        assert!(readable(0o100400, 0, 0));
        assert!(readable(0o100400, 0, 1000));
        assert!(!readable(0o100400, 1000, 1000));
        assert!(!readable(0o100400, 1000, 0));
        assert!(readable(0o100440, 1000, 0));
        assert!(!readable(0o100440, 1000, 1000));
        assert!(readable(0o100444, 1000, 1000));
        assert!(readable(0o100444, 65534, 65534));
    }
}
