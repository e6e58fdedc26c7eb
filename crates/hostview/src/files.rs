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
}

impl VirtualFile {
    pub const ALL: [VirtualFile; 15] = [
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
    ];

    /// The host file this one stands for, relative to the root.
    pub fn host_path(self) -> &'static str {
        match self {
            VirtualFile::Meminfo => "proc/meminfo",
            VirtualFile::Swaps => "proc/swaps",
            VirtualFile::Cpuinfo => "proc/cpuinfo",
            VirtualFile::Stat => "proc/stat",
            VirtualFile::Uptime => "proc/uptime",
            VirtualFile::Loadavg => "proc/loadavg",
            VirtualFile::Diskstats => "proc/diskstats",
            VirtualFile::CpuOnline => "sys/devices/system/cpu/online",
            VirtualFile::CpuPossible => "sys/devices/system/cpu/possible",
            VirtualFile::CpuPresent => "sys/devices/system/cpu/present",
            VirtualFile::CpuOffline => "sys/devices/system/cpu/offline",
            VirtualFile::PressureCpu => "proc/pressure/cpu",
            VirtualFile::PressureMemory => "proc/pressure/memory",
            VirtualFile::PressureIo => "proc/pressure/io",
            VirtualFile::Slabinfo => "proc/slabinfo",
        }
    }

    /// Readable by root only, like the host's (`/proc/slabinfo` is 0400: its layout
    /// helps kernel heap exploits, so an unprivileged container user must not get it).
    pub fn root_only(self) -> bool {
        self == VirtualFile::Slabinfo
    }

    /// Its name in its directory.
    pub fn name(self) -> &'static str {
        let p = self.host_path();
        p.rsplit('/').next().unwrap_or(p)
    }
}
