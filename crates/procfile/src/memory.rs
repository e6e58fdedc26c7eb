//! The memory model behind `/proc/meminfo` and `/proc/swaps`.

use crate::{Limit, keyed};

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
    /// From v1 `memory.stat`, using the hierarchical `total_*` keys. When a `total_*`
    /// key is absent but its local counterpart exists (the root cgroup on some kernels),
    /// the local key is used. v1 has no slab, kernel stack, page table, percpu or zswap
    /// counters: those stay `None`.
    pub fn from_v1(text: &str) -> MemStat {
        let mut total = MemStat::default();
        let mut local = MemStat::default();
        for (key, value) in keyed::pairs(text) {
            let (stat, name) = match key.strip_prefix("total_") {
                Some(name) => (&mut total, name),
                None => (&mut local, key),
            };
            if let Some(slot) = stat.v1_slot(name) {
                slot.get_or_insert(value);
            }
        }
        total.or(local)
    }

    /// From v2 `memory.stat` (flat keys, hierarchical by nature), matched exactly.
    pub fn from_v2(text: &str) -> MemStat {
        let mut stat = MemStat::default();
        for (key, value) in keyed::pairs(text) {
            if let Some(slot) = stat.v2_slot(key) {
                slot.get_or_insert(value);
            }
        }
        stat
    }

    /// The field a v1 key (without its `total_` prefix) feeds.
    fn v1_slot(&mut self, name: &str) -> Option<&mut Option<u64>> {
        Some(match name {
            "cache" => &mut self.cache,
            "rss" => &mut self.anon,
            "active_anon" => &mut self.active_anon,
            "inactive_anon" => &mut self.inactive_anon,
            "active_file" => &mut self.active_file,
            "inactive_file" => &mut self.inactive_file,
            "unevictable" => &mut self.unevictable,
            "shmem" => &mut self.shmem,
            "mapped_file" => &mut self.mapped,
            "dirty" => &mut self.dirty,
            "writeback" => &mut self.writeback,
            "rss_huge" => &mut self.anon_thp,
            _ => return None,
        })
    }

    /// The field a v2 key feeds.
    fn v2_slot(&mut self, key: &str) -> Option<&mut Option<u64>> {
        Some(match key {
            "file" => &mut self.cache,
            "anon" => &mut self.anon,
            "active_anon" => &mut self.active_anon,
            "inactive_anon" => &mut self.inactive_anon,
            "active_file" => &mut self.active_file,
            "inactive_file" => &mut self.inactive_file,
            "unevictable" => &mut self.unevictable,
            "shmem" => &mut self.shmem,
            "file_mapped" => &mut self.mapped,
            "file_dirty" => &mut self.dirty,
            "file_writeback" => &mut self.writeback,
            "anon_thp" => &mut self.anon_thp,
            "shmem_thp" => &mut self.shmem_thp,
            "file_thp" => &mut self.file_thp,
            "slab" => &mut self.slab,
            "slab_reclaimable" => &mut self.slab_reclaimable,
            "slab_unreclaimable" => &mut self.slab_unreclaimable,
            "kernel_stack" => &mut self.kernel_stack,
            "pagetables" => &mut self.pagetables,
            "percpu" => &mut self.percpu,
            "zswap" => &mut self.zswap,
            "zswapped" => &mut self.zswapped,
            _ => return None,
        })
    }

    /// Field by field, `self`'s value, else `other`'s.
    fn or(self, other: MemStat) -> MemStat {
        MemStat {
            cache: self.cache.or(other.cache),
            anon: self.anon.or(other.anon),
            active_anon: self.active_anon.or(other.active_anon),
            inactive_anon: self.inactive_anon.or(other.inactive_anon),
            active_file: self.active_file.or(other.active_file),
            inactive_file: self.inactive_file.or(other.inactive_file),
            unevictable: self.unevictable.or(other.unevictable),
            shmem: self.shmem.or(other.shmem),
            mapped: self.mapped.or(other.mapped),
            dirty: self.dirty.or(other.dirty),
            writeback: self.writeback.or(other.writeback),
            anon_thp: self.anon_thp.or(other.anon_thp),
            shmem_thp: self.shmem_thp.or(other.shmem_thp),
            file_thp: self.file_thp.or(other.file_thp),
            slab: self.slab.or(other.slab),
            slab_reclaimable: self.slab_reclaimable.or(other.slab_reclaimable),
            slab_unreclaimable: self.slab_unreclaimable.or(other.slab_unreclaimable),
            kernel_stack: self.kernel_stack.or(other.kernel_stack),
            pagetables: self.pagetables.or(other.pagetables),
            percpu: self.percpu.or(other.percpu),
            zswap: self.zswap.or(other.zswap),
            zswapped: self.zswapped.or(other.zswapped),
        }
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
        SwapView {
            limit: v1_swap_limit(mem_limit, memsw_limit),
            usage: memsw_usage.saturating_sub(mem_usage),
            swappiness_zero: swappiness == Some(0),
        }
    }
}

/// The swap-only part of v1's RAM+swap limit.
///
/// - memsw unlimited: swap is unlimited ([`Limit::Max`]).
/// - both finite: `memsw − mem`, saturating at 0 (the kernel keeps memsw ≥ mem, so 0
///   only happens when swap is effectively forbidden).
/// - memory unlimited but memsw finite (the kernel refuses that on one cgroup, but the
///   minima walked over ancestors could in principle disagree): RAM+swap together may
///   not exceed memsw, so swap alone can reach at most `memsw`: `Value(memsw)`. This is
///   an upper bound, never an underestimate of what the container may swap, and it is
///   still capped by the host's SwapTotal in [`compute`].
fn v1_swap_limit(mem_limit: Limit, memsw_limit: Limit) -> Limit {
    match (mem_limit, memsw_limit) {
        (_, Limit::Max) => Limit::Max,
        (Limit::Max, Limit::Value(memsw)) => Limit::Value(memsw),
        (Limit::Value(mem), Limit::Value(memsw)) => Limit::Value(memsw.saturating_sub(mem)),
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
    /// `MemTotal` and `SwapTotal` (0 if absent); `None` without a readable `MemTotal`.
    pub fn parse(meminfo: &str) -> Option<HostMem> {
        let mut mem_total_kb = None;
        let mut swap_total_kb = None;
        for line in meminfo.lines() {
            let Some((label, rest)) = line.split_once(':') else {
                continue;
            };
            let slot = match label {
                "MemTotal" => &mut mem_total_kb,
                "SwapTotal" => &mut swap_total_kb,
                _ => continue,
            };
            if slot.is_none() {
                *slot = kb_value(rest);
            }
        }
        Some(HostMem {
            mem_total_kb: mem_total_kb?,
            swap_total_kb: swap_total_kb.unwrap_or(0),
        })
    }
}

/// The number of a meminfo line after its label: `      24684084 kB`.
pub(crate) fn kb_value(rest: &str) -> Option<u64> {
    let rest = rest.trim_ascii();
    let digits = rest.strip_suffix("kB").unwrap_or(rest);
    crate::value::parse_u64(digits)
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
    /// The hugetlb cgroup's bound on the huge page lines; `None` keeps the host's.
    pub huge: Option<crate::HugeValues>,
}

impl MemValues {
    pub fn swap_used(&self) -> u64 {
        self.swap_total.saturating_sub(self.swap_free)
    }
}

/// Combine host totals and the container's view. `swap_enabled` is false under `-u`.
///
/// All arithmetic saturates: no input, however inconsistent, makes a value wrap, go
/// negative, or panic. Invariants: `mem_free ≤ mem_total`, `mem_available ≤ mem_total`,
/// `cached ≤ mem_total`, `mem_total ≤ host.mem_total_kb`, `swap_free ≤ swap_total ≤
/// host.swap_total_kb`.
pub fn compute(host: &HostMem, view: &MemoryView, swap_enabled: bool) -> MemValues {
    let st = &view.stat;
    let kb = |v: Option<u64>| v.map(to_kb);

    let mem_total = match view.limit {
        Limit::Max => host.mem_total_kb,
        Limit::Value(limit) => to_kb(limit).min(host.mem_total_kb),
    };
    let mem_free = mem_total.saturating_sub(to_kb(view.usage));
    // Page cache that can be dropped, plus reclaimable slab. Shmem/tmpfs is not
    // available: it sits on the anon LRUs and can only be swapped, never dropped.
    let reclaimable = [st.active_file, st.inactive_file, st.slab_reclaimable]
        .into_iter()
        .flatten()
        .fold(0u64, u64::saturating_add);
    let mem_available = mem_free.saturating_add(to_kb(reclaimable)).min(mem_total);

    let (swap_total, swap_free) = match view.swap {
        Some(swap) if swap_enabled && host.swap_total_kb > 0 => {
            let mut total = match swap.limit {
                Limit::Max => host.swap_total_kb,
                Limit::Value(limit) => to_kb(limit).min(host.swap_total_kb),
            };
            let used = to_kb(swap.usage).min(total);
            if swap.swappiness_zero {
                // It cannot swap: show a full device.
                total = used;
            }
            (total, total.saturating_sub(used))
        }
        _ => (0, 0),
    };

    MemValues {
        mem_total,
        mem_free,
        mem_available,
        swap_total,
        swap_free,
        cached: st.cache.map_or(0, to_kb).min(mem_total),
        active_anon: kb(st.active_anon),
        inactive_anon: kb(st.inactive_anon),
        active_file: kb(st.active_file),
        inactive_file: kb(st.inactive_file),
        unevictable: kb(st.unevictable),
        shmem: kb(st.shmem),
        anon_pages: kb(st.anon),
        mapped: kb(st.mapped),
        dirty: kb(st.dirty),
        writeback: kb(st.writeback),
        anon_huge: kb(st.anon_thp),
        shmem_huge: kb(st.shmem_thp),
        file_huge: kb(st.file_thp),
        // v1's memory.stat has no slab keys. Passing the host's slab through would make
        // `free` count the host's reclaimable slab as this container's buff/cache (more
        // than its whole limit on a busy host), so unknown slab is shown as 0.
        slab: kb(st.slab).or(Some(0)),
        s_reclaimable: kb(st.slab_reclaimable).or(Some(0)),
        s_unreclaim: kb(st.slab_unreclaimable).or(Some(0)),
        kernel_stack: kb(st.kernel_stack),
        page_tables: kb(st.pagetables),
        percpu: kb(st.percpu),
        // Where the cgroup does not account zswap (v1, kernels before 5.19) the
        // container has none that it can see; the host's would be another's pages.
        zswap: kb(st.zswap).or(Some(0)),
        zswapped: kb(st.zswapped).or(Some(0)),
        huge: None,
    }
}

/// Bytes to kB, truncating (as the kernel and LXCFS do).
fn to_kb(bytes: u64) -> u64 {
    bytes / 1024
}
