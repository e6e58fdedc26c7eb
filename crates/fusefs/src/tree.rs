//! The static tree: LXCFS's layout (`proc/*`, `sys/devices/system/cpu/*`), so runtimes'
//! existing bind mounts work unchanged.

use std::sync::LazyLock;

use hostview::VirtualFile;
use hostview::files::{Spec, TABLE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(VirtualFile),
}

#[derive(Debug, Clone, Copy)]
pub struct Node {
    pub ino: u64,
    pub parent: u64,
    pub name: &'static str,
    pub kind: Kind,
}

pub const ROOT: u64 = 1;
const PROC: u64 = 2;
const SYS: u64 = 3;
const SYS_DEVICES: u64 = 4;
const SYS_SYSTEM: u64 = 5;
pub const SYS_CPU: u64 = 6;
const PROC_PRESSURE: u64 = 7;
/// `cgroup/` (`--enable-cgroup` only; its entries are `cgroupfs`'s).
pub const CGROUP: u64 = 8;

const fn dir(ino: u64, parent: u64, name: &'static str) -> Node {
    Node {
        ino,
        parent,
        name,
        kind: Kind::Dir,
    }
}

/// The directories, with their paths; the files in them are hostview's
/// [`hostview::files::TABLE`], each under the directory of its path.
const DIRS: [(Node, &str); 8] = [
    (dir(ROOT, ROOT, ""), ""),
    (dir(PROC, ROOT, "proc"), "proc"),
    (dir(SYS, ROOT, "sys"), "sys"),
    (dir(SYS_DEVICES, SYS, "devices"), "sys/devices"),
    (dir(SYS_SYSTEM, SYS_DEVICES, "system"), "sys/devices/system"),
    (dir(SYS_CPU, SYS_SYSTEM, "cpu"), "sys/devices/system/cpu"),
    (dir(PROC_PRESSURE, PROC, "pressure"), "proc/pressure"),
    (dir(CGROUP, ROOT, "cgroup"), "cgroup"),
];

fn file_node(spec: &'static Spec) -> Option<Node> {
    let (dir_path, name) = spec.path.rsplit_once('/')?;
    let parent = DIRS.iter().find(|(_, p)| *p == dir_path)?.0.ino;
    Some(Node {
        ino: spec.inode,
        parent,
        name,
        kind: Kind::File(spec.file),
    })
}

/// Every node: the directories, then one per served file, built once (every request
/// looks its inode up here).
static NODES: LazyLock<Vec<Node>> = LazyLock::new(|| {
    DIRS.iter()
        .map(|(n, _)| *n)
        .chain(TABLE.iter().filter_map(file_node))
        .collect()
});

fn nodes() -> impl Iterator<Item = Node> {
    NODES.iter().copied()
}

/// Whether the kernel's own file answers `poll` with `POLLERR | POLLPRI` besides
/// readable and writable: sysfs attributes and PSI files do (a poller waits on them
/// for a change or a trigger), the other /proc files do not. Inodes outside the static
/// tree are below the CPU directory or `cgroup/` (cgroupfs files answer as sysfs's).
pub fn polls_priority(ino: u64) -> bool {
    node(ino).is_none_or(|n| n.parent == SYS_CPU || n.parent == PROC_PRESSURE)
}

/// Whether `ino` stands for a sysfs or cgroupfs entry (xattrs: they have none, /proc
/// refuses them).
pub fn in_sys(ino: u64) -> bool {
    match node(ino) {
        None => true,
        Some(n) if n.ino == SYS || n.ino == CGROUP => true,
        Some(n) if n.ino == ROOT => false,
        Some(n) => in_sys(n.parent),
    }
}

pub fn node(ino: u64) -> Option<Node> {
    nodes().find(|n| n.ino == ino)
}

pub fn child(parent: u64, name: &[u8]) -> Option<Node> {
    nodes().find(|n| n.parent == parent && n.ino != ROOT && n.name.as_bytes() == name)
}

pub fn children(parent: u64) -> impl Iterator<Item = Node> {
    nodes().filter(move |n| n.parent == parent && n.ino != ROOT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_reachable_and_inodes_are_unique() {
        let all: Vec<Node> = nodes().collect();
        for f in VirtualFile::ALL {
            let n = all.iter().find(|n| n.kind == Kind::File(f));
            assert!(n.is_some(), "{f:?} has no node");
        }
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.ino, b.ino);
            }
            assert!(node(a.parent).is_some_and(|p| p.kind == Kind::Dir));
        }
        assert_eq!(child(PROC, b"meminfo").map(|n| n.ino), Some(103));
        assert!(child(PROC, b"nope").is_none());
    }
}
