//! Why a reader was served the host's file instead of its container's: a closed set,
//! so that it can label a metric (a label value per cause, never per container or
//! path) and still say in a sentence what happened (`lxcfs-rs check --pid`).

use crate::error::Error;

/// Why the host's file stands in for the container's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostReason {
    // By design: the container has nothing of its own to show.
    MemoryRoot,
    CpuRoot,
    HostReader,
    HostUptimeOption,
    NoStartTime,
    NoTaskCgroup,
    LoadavgOff,
    LoadRoot,
    IoRoot,
    NoCgroup2,
    Cgroup2Root,
    NoPressure,
    NoSlabinfo,
    NotVirtualized,
    // Failures: the container's data could not be read (its fallback is logged).
    ReadError,
    ParseError,
    InitNotFound,
    InitScanBusy,
    NoCaller,
    NoCgroups,
    OutsideHierarchy,
}

impl HostReason {
    pub const ALL: [HostReason; 21] = [
        HostReason::MemoryRoot,
        HostReason::CpuRoot,
        HostReason::HostReader,
        HostReason::HostUptimeOption,
        HostReason::NoStartTime,
        HostReason::NoTaskCgroup,
        HostReason::LoadavgOff,
        HostReason::LoadRoot,
        HostReason::IoRoot,
        HostReason::NoCgroup2,
        HostReason::Cgroup2Root,
        HostReason::NoPressure,
        HostReason::NoSlabinfo,
        HostReason::NotVirtualized,
        HostReason::ReadError,
        HostReason::ParseError,
        HostReason::InitNotFound,
        HostReason::InitScanBusy,
        HostReason::NoCaller,
        HostReason::NoCgroups,
        HostReason::OutsideHierarchy,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            HostReason::MemoryRoot => "memory_root",
            HostReason::CpuRoot => "cpu_root",
            HostReason::HostReader => "host_reader",
            HostReason::HostUptimeOption => "host_uptime_option",
            HostReason::NoStartTime => "no_start_time",
            HostReason::NoTaskCgroup => "no_task_cgroup",
            HostReason::LoadavgOff => "loadavg_off",
            HostReason::LoadRoot => "load_root",
            HostReason::IoRoot => "io_root",
            HostReason::NoCgroup2 => "no_cgroup2",
            HostReason::Cgroup2Root => "cgroup2_root",
            HostReason::NoPressure => "no_pressure",
            HostReason::NoSlabinfo => "no_slabinfo",
            HostReason::NotVirtualized => "not_virtualized",
            HostReason::ReadError => "read_error",
            HostReason::ParseError => "parse_error",
            HostReason::InitNotFound => "init_not_found",
            HostReason::InitScanBusy => "init_scan_busy",
            HostReason::NoCaller => "no_caller",
            HostReason::NoCgroups => "no_cgroups",
            HostReason::OutsideHierarchy => "outside_hierarchy",
        }
    }

    /// The sentence `check` prints.
    pub fn why(self) -> &'static str {
        match self {
            HostReason::MemoryRoot => {
                "no memory controller, or its memory cgroup is the root: the host's values are its own"
            }
            HostReason::CpuRoot => "its CPU cgroups are the roots: the host's CPUs are its own",
            HostReason::HostReader => {
                "a reader in the host's pid namespace: the host's uptime is its own"
            }
            HostReason::HostUptimeOption => {
                "--host-uptime: process ages (ps, psutil) count from the host's boot"
            }
            HostReason::NoStartTime => "its init's start time cannot be read",
            HostReason::NoTaskCgroup => "no cgroup to count its tasks in",
            HostReason::LoadavgOff => "the load sampler is off (--disable-loadavg)",
            HostReason::LoadRoot => "its cgroup is the root: the host's load is its own",
            HostReason::IoRoot => "no io (blkio) controller, or its io cgroup is the root",
            HostReason::NoCgroup2 => "no cgroup2 hierarchy: per-cgroup pressure is only kept there",
            HostReason::Cgroup2Root => "its cgroup2 group is the root",
            HostReason::NoPressure => {
                "its cgroup2 group has no pressure file (kernel without per-cgroup PSI, or psi=0)"
            }
            HostReason::NoSlabinfo => {
                "no cgroup v1 memory.kmem.slabinfo with content for its group (cgroup v2 keeps none)"
            }
            HostReason::NotVirtualized => "not a file its renderer virtualizes",
            HostReason::ReadError => "a file of its cgroups or of /proc cannot be read",
            HostReason::ParseError => "a file of its cgroups or of /proc is malformed",
            HostReason::InitNotFound => "the init of its pid namespace cannot be found",
            HostReason::InitScanBusy => {
                "its container, or the host, was already searching /proc for the init of a pid \
                 namespace (kernels before 6.11; one search at a time per container, one of \
                 every process at a time on the host)"
            }
            HostReason::NoCaller => "the reader is gone or not visible to the daemon",
            HostReason::NoCgroups => "no cgroup hierarchy is mounted",
            HostReason::OutsideHierarchy => "its cgroup lies outside the mounted hierarchy",
        }
    }

    /// Whether this is a failure (logged once per container) rather than a container
    /// that has nothing of its own to show.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            HostReason::ReadError
                | HostReason::ParseError
                | HostReason::InitNotFound
                | HostReason::InitScanBusy
                | HostReason::NoCaller
                | HostReason::NoCgroups
                | HostReason::OutsideHierarchy
        )
    }

    /// The failure behind an error.
    pub fn of_error(e: &Error) -> HostReason {
        match e {
            Error::Io { .. } => HostReason::ReadError,
            Error::Parse { .. } => HostReason::ParseError,
            Error::InitNotFound { .. } => HostReason::InitNotFound,
            Error::InitScanBusy { .. } => HostReason::InitScanBusy,
            // Only the cgroup view's pid lists are refused so, and they have no host
            // file to fall back on; the nearest reason, should a rendering ever see it.
            Error::PidListBusy { .. } => HostReason::InitScanBusy,
            Error::NoCaller { .. } => HostReason::NoCaller,
            Error::NoCgroups => HostReason::NoCgroups,
            Error::OutsideHierarchy { .. } => HostReason::OutsideHierarchy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_declaration_order_and_names_are_distinct() {
        for (i, r) in HostReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut names: Vec<_> = HostReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), HostReason::ALL.len());
    }
}
