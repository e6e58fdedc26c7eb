//! The static tree: LXCFS's layout (`proc/*`, `sys/devices/system/cpu/*`), so runtimes'
//! existing bind mounts work unchanged.

use hostview::VirtualFile;

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

const fn dir(ino: u64, parent: u64, name: &'static str) -> Node {
    Node {
        ino,
        parent,
        name,
        kind: Kind::Dir,
    }
}

const fn file(ino: u64, parent: u64, f: VirtualFile, name: &'static str) -> Node {
    Node {
        ino,
        parent,
        name,
        kind: Kind::File(f),
    }
}

pub const NODES: &[Node] = &[
    dir(ROOT, ROOT, ""),
    dir(PROC, ROOT, "proc"),
    dir(SYS, ROOT, "sys"),
    dir(SYS_DEVICES, SYS, "devices"),
    dir(SYS_SYSTEM, SYS_DEVICES, "system"),
    dir(SYS_CPU, SYS_SYSTEM, "cpu"),
    dir(PROC_PRESSURE, PROC, "pressure"),
    file(100, PROC, VirtualFile::Cpuinfo, "cpuinfo"),
    file(101, PROC, VirtualFile::Diskstats, "diskstats"),
    file(102, PROC, VirtualFile::Loadavg, "loadavg"),
    file(103, PROC, VirtualFile::Meminfo, "meminfo"),
    file(104, PROC, VirtualFile::Stat, "stat"),
    file(105, PROC, VirtualFile::Swaps, "swaps"),
    file(106, PROC, VirtualFile::Uptime, "uptime"),
    file(107, PROC_PRESSURE, VirtualFile::PressureCpu, "cpu"),
    file(108, PROC_PRESSURE, VirtualFile::PressureMemory, "memory"),
    file(109, PROC_PRESSURE, VirtualFile::PressureIo, "io"),
    file(110, PROC, VirtualFile::Slabinfo, "slabinfo"),
    file(200, SYS_CPU, VirtualFile::CpuOnline, "online"),
    file(201, SYS_CPU, VirtualFile::CpuPossible, "possible"),
    file(202, SYS_CPU, VirtualFile::CpuPresent, "present"),
    file(203, SYS_CPU, VirtualFile::CpuOffline, "offline"),
];

/// Whether the kernel's own file answers `poll` with `POLLERR | POLLPRI` besides
/// readable and writable: sysfs attributes and PSI files do (a poller waits on them
/// for a change or a trigger), the other /proc files do not. Inodes outside the static
/// tree are all below the CPU directory.
pub fn polls_priority(ino: u64) -> bool {
    node(ino).is_none_or(|n| n.parent == SYS_CPU || n.parent == PROC_PRESSURE)
}

/// Whether `ino` stands for a sysfs entry (xattrs: sysfs has none, /proc refuses them).
pub fn in_sys(ino: u64) -> bool {
    match node(ino) {
        None => true,
        Some(n) if n.ino == SYS => true,
        Some(n) if n.ino == ROOT => false,
        Some(n) => in_sys(n.parent),
    }
}

pub fn node(ino: u64) -> Option<&'static Node> {
    NODES.iter().find(|n| n.ino == ino)
}

pub fn child(parent: u64, name: &[u8]) -> Option<&'static Node> {
    NODES
        .iter()
        .find(|n| n.parent == parent && n.ino != ROOT && n.name.as_bytes() == name)
}

pub fn children(parent: u64) -> impl Iterator<Item = &'static Node> {
    NODES
        .iter()
        .filter(move |n| n.parent == parent && n.ino != ROOT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_reachable_and_inodes_are_unique() {
        for f in VirtualFile::ALL {
            let n = NODES.iter().find(|n| n.kind == Kind::File(f));
            assert!(n.is_some(), "{f:?} has no node");
        }
        for (i, a) in NODES.iter().enumerate() {
            for b in &NODES[i + 1..] {
                assert_ne!(a.ino, b.ino);
            }
            assert!(node(a.parent).is_some_and(|p| p.kind == Kind::Dir));
        }
        assert_eq!(child(PROC, b"meminfo").map(|n| n.ino), Some(103));
        assert!(child(PROC, b"nope").is_none());
    }
}
