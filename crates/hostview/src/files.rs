//! The virtual files and how each is produced from a container's view.

/// Every file the filesystem serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VirtualFile {
    Meminfo,
    Swaps,
    Cpuinfo,
    Stat,
    Uptime,
    Loadavg,
    Diskstats,
    CpuOnline,
    CpuPossible,
    CpuPresent,
    CpuOffline,
    PressureCpu,
    PressureMemory,
    PressureIo,
    Slabinfo,
    Vmstat,
}

impl VirtualFile {
    pub const ALL: [VirtualFile; 16] = [
        VirtualFile::Meminfo,
        VirtualFile::Swaps,
        VirtualFile::Cpuinfo,
        VirtualFile::Stat,
        VirtualFile::Uptime,
        VirtualFile::Loadavg,
        VirtualFile::Diskstats,
        VirtualFile::CpuOnline,
        VirtualFile::CpuPossible,
        VirtualFile::CpuPresent,
        VirtualFile::CpuOffline,
        VirtualFile::PressureCpu,
        VirtualFile::PressureMemory,
        VirtualFile::PressureIo,
        VirtualFile::Slabinfo,
        VirtualFile::Vmstat,
    ];

    /// Its entry in [`TABLE`].
    pub fn spec(self) -> &'static Spec {
        // TABLE is in declaration order (checked by a test).
        &TABLE[self as usize]
    }

    /// The host file this one stands for, relative to the root: where it appears in
    /// the mount, and what is served when the container's data cannot be read.
    pub fn host_path(self) -> &'static str {
        self.spec().path
    }

    /// Readable by root only, like the host's (`/proc/slabinfo` is 0400: its layout
    /// helps kernel heap exploits, so an unprivileged container user must not get it).
    pub fn root_only(self) -> bool {
        self.spec().root_only
    }

    /// Its name in its directory.
    pub fn name(self) -> &'static str {
        let p = self.host_path();
        p.rsplit('/').next().unwrap_or(p)
    }
}

/// How a file is made from a container's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renderer {
    /// From the memory controller: meminfo, swaps.
    Memory,
    /// From the CPU view: cpuinfo, stat, uptime, the sysfs CPU lists.
    Cpu,
    /// From what the container's tasks did: load, I/O, pressure, slabs, vm events.
    Activity,
}

/// One served file: everything about it that is not its rendering code.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub file: VirtualFile,
    /// Relative to the mount's root, and to the host's root for the host's own file
    /// (served when the container's data cannot be read).
    pub path: &'static str,
    /// Its inode number in the mount (fixed: bind mounts outlive the daemon's workers).
    pub inode: u64,
    pub renderer: Renderer,
    pub root_only: bool,
}

const fn spec(file: VirtualFile, path: &'static str, inode: u64, renderer: Renderer) -> Spec {
    Spec {
        file,
        path,
        inode,
        renderer,
        root_only: false,
    }
}

/// Every served file, in [`VirtualFile`] declaration order.
pub const TABLE: [Spec; 16] = [
    spec(VirtualFile::Meminfo, "proc/meminfo", 103, Renderer::Memory),
    spec(VirtualFile::Swaps, "proc/swaps", 105, Renderer::Memory),
    spec(VirtualFile::Cpuinfo, "proc/cpuinfo", 100, Renderer::Cpu),
    spec(VirtualFile::Stat, "proc/stat", 104, Renderer::Cpu),
    spec(VirtualFile::Uptime, "proc/uptime", 106, Renderer::Cpu),
    spec(
        VirtualFile::Loadavg,
        "proc/loadavg",
        102,
        Renderer::Activity,
    ),
    spec(
        VirtualFile::Diskstats,
        "proc/diskstats",
        101,
        Renderer::Activity,
    ),
    spec(
        VirtualFile::CpuOnline,
        "sys/devices/system/cpu/online",
        200,
        Renderer::Cpu,
    ),
    spec(
        VirtualFile::CpuPossible,
        "sys/devices/system/cpu/possible",
        201,
        Renderer::Cpu,
    ),
    spec(
        VirtualFile::CpuPresent,
        "sys/devices/system/cpu/present",
        202,
        Renderer::Cpu,
    ),
    spec(
        VirtualFile::CpuOffline,
        "sys/devices/system/cpu/offline",
        203,
        Renderer::Cpu,
    ),
    spec(
        VirtualFile::PressureCpu,
        "proc/pressure/cpu",
        107,
        Renderer::Activity,
    ),
    spec(
        VirtualFile::PressureMemory,
        "proc/pressure/memory",
        108,
        Renderer::Activity,
    ),
    spec(
        VirtualFile::PressureIo,
        "proc/pressure/io",
        109,
        Renderer::Activity,
    ),
    Spec {
        root_only: true,
        ..spec(
            VirtualFile::Slabinfo,
            "proc/slabinfo",
            110,
            Renderer::Activity,
        )
    },
    spec(VirtualFile::Vmstat, "proc/vmstat", 111, Renderer::Activity),
];

// Every variant has an entry: `spec` indexes by discriminant.
const _: () = assert!(TABLE.len() == VirtualFile::ALL.len());

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn the_table_is_in_declaration_order_with_unique_paths_and_inodes() {
        assert_eq!(TABLE.len(), VirtualFile::ALL.len());
        for (i, f) in VirtualFile::ALL.iter().enumerate() {
            assert_eq!(TABLE[i].file, *f);
            assert_eq!(*f as usize, i);
            for other in &TABLE[i + 1..] {
                assert_ne!(TABLE[i].path, other.path);
                assert_ne!(TABLE[i].inode, other.inode);
            }
        }
    }
}
