//! The memory model behind `/proc/meminfo` and `/proc/swaps`.

use crate::Limit;

/// Values from `memory.stat`, in bytes, normalised across v1 (`total_*` keys) and v2.
/// `None` where the kernel does not report the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemStat {
    pub cache: Option<u64>,
    pub anon: Option<u64>,
    pub active_anon: Option<u64>,
    pub inactive_anon: Option<u64>,
    pub active_file: Option<u64>,
    pub inactive_file: Option<u64>,
    pub unevictable: Option<u64>,
    pub shmem: Option<u64>,
    pub mapped: Option<u64>,
    pub dirty: Option<u64>,
    pub writeback: Option<u64>,
    pub anon_thp: Option<u64>,
    pub shmem_thp: Option<u64>,
    pub file_thp: Option<u64>,
    pub slab: Option<u64>,
    pub slab_reclaimable: Option<u64>,
    pub slab_unreclaimable: Option<u64>,
    pub kernel_stack: Option<u64>,
    pub pagetables: Option<u64>,
    pub percpu: Option<u64>,
    pub zswap: Option<u64>,
    pub zswapped: Option<u64>,
}

impl MemStat {
    pub fn from_v1(text: &str) -> MemStat {
        todo!()
    }
    pub fn from_v2(text: &str) -> MemStat {
        todo!()
    }
}

/// Swap as the container may use it, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapView {
    /// Swap-only limit (v2 `memory.swap.max` walked up; v1 memsw limit − memory limit).
    pub limit: Limit,
    pub usage: u64,
    /// `memory.swappiness` is 0: the container cannot swap.
    pub swappiness_zero: bool,
}

impl SwapView {
    /// From v1's RAM+swap (`memsw`) accounting.
    pub fn from_v1(
        mem_limit: Limit,
        memsw_limit: Limit,
        mem_usage: u64,
        memsw_usage: u64,
        swappiness: Option<u64>,
    ) -> SwapView {
        todo!()
    }
}

/// What the daemon read about one container's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryView {
    /// Effective limit (minimum over the cgroup and its ancestors).
    pub limit: Limit,
    pub usage: u64,
    pub stat: MemStat,
    /// `None` when swap accounting is unavailable.
    pub swap: Option<SwapView>,
}

/// The host's totals, in kB, from `/proc/meminfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostMem {
    pub mem_total_kb: u64,
    pub swap_total_kb: u64,
}

impl HostMem {
    pub fn parse(meminfo: &str) -> Option<HostMem> {
        todo!()
    }
}

/// Every number the container's meminfo and swaps show, in kB. `None` means "keep the
/// host's line".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemValues {
    pub mem_total: u64,
    pub mem_free: u64,
    pub mem_available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
    pub cached: u64,
    pub active_anon: Option<u64>,
    pub inactive_anon: Option<u64>,
    pub active_file: Option<u64>,
    pub inactive_file: Option<u64>,
    pub unevictable: Option<u64>,
    pub shmem: Option<u64>,
    pub anon_pages: Option<u64>,
    pub mapped: Option<u64>,
    pub dirty: Option<u64>,
    pub writeback: Option<u64>,
    pub anon_huge: Option<u64>,
    pub shmem_huge: Option<u64>,
    pub file_huge: Option<u64>,
    pub slab: Option<u64>,
    pub s_reclaimable: Option<u64>,
    pub s_unreclaim: Option<u64>,
    pub kernel_stack: Option<u64>,
    pub page_tables: Option<u64>,
    pub percpu: Option<u64>,
    pub zswap: Option<u64>,
    pub zswapped: Option<u64>,
}

impl MemValues {
    pub fn swap_used(&self) -> u64 {
        self.swap_total.saturating_sub(self.swap_free)
    }
}

/// Combine host totals and the container's view. `swap_enabled` is false under `-u`.
pub fn compute(host: &HostMem, view: &MemoryView, swap_enabled: bool) -> MemValues {
    todo!()
}
