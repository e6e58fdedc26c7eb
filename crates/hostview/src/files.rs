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
}

impl VirtualFile {
    pub const ALL: [VirtualFile; 11] = [
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
        }
    }

    /// Its name in its directory.
    pub fn name(self) -> &'static str {
        let p = self.host_path();
        p.rsplit('/').next().unwrap_or(p)
    }
}
