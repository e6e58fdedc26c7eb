//! What the host reader tells whoever counts (the daemon's shared counters): how
//! readers' pid namespaces were resolved, what a load-sampler tick cost, containers
//! pruned, log lines held back. hostview knows nothing of where it goes; the worker
//! plugs its counters in with [`crate::Host::set_observer`].

use std::time::Duration;

/// How the init of a reader's pid namespace was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// `NS_GET_TGID_FROM_PIDNS`.
    Ioctl,
    /// Following `PPid` inside the namespace (kernels without the ioctl).
    ProcfsParents,
    /// Among the processes of the reader's cgroup and the groups around it, or the pids
    /// just below its own (a reader that entered with `setns`; see `initscan`).
    ProcfsNear,
    /// A scan of every process in `/proc` (a reader that entered with `setns`).
    ProcfsScan,
    /// The init found before, checked to still be the namespace's (its cgroup paths
    /// were due for a re-read).
    CachedInit,
    /// No method found it.
    Failed,
    /// Turned away: its container's search of `/proc`, or the host's search of every
    /// process, was under way (see `initscan`); its time includes any search near the
    /// reader and a wait for the container's.
    Busy,
}

impl Resolution {
    pub const ALL: [Resolution; 7] = [
        Resolution::Ioctl,
        Resolution::ProcfsParents,
        Resolution::ProcfsNear,
        Resolution::ProcfsScan,
        Resolution::CachedInit,
        Resolution::Failed,
        Resolution::Busy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Resolution::Ioctl => "ioctl",
            Resolution::ProcfsParents => "procfs_parents",
            Resolution::ProcfsNear => "procfs_near",
            Resolution::ProcfsScan => "procfs_scan",
            Resolution::CachedInit => "cached_init",
            Resolution::Failed => "failed",
            Resolution::Busy => "busy",
        }
    }
}

/// Receives what [`crate::Host`] measures. Every method is called off the hot path of
/// a cached read (a resolution happens when a container is new or its paths are due,
/// a tick every 5 s), and must not block.
pub trait Observer: Send + Sync {
    fn resolved(&self, how: Resolution, took: Duration);
    /// A load-sampler tick counted `cgroups` cgroups in `took`.
    fn sampled(&self, cgroups: usize, took: Duration);
    /// `n` idle or excess containers were dropped from the cache.
    fn pruned(&self, n: usize);
    /// `n` log lines about failing containers were held back by the rate limit.
    fn log_suppressed(&self, n: u64);
}
