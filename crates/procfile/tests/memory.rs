//! `procfile::memory`: memory.stat normalisation, v1 swap, host totals and `compute`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use procfile::{HostMem, Limit, MemStat, MemValues, MemoryView, SwapView, memory::compute};

/// `/sys/fs/cgroup/memory/memory.stat` captured on a cgroup v1 host (kernel 6.x).
const V1_STAT: &str = include_str!("data/memory.stat.v1");
/// A 6.x cgroup v2 `memory.stat`, every key in the kernel's order.
const V2_STAT: &str = include_str!("data/memory.stat.v2");
/// `/proc/meminfo` captured on the same host (24 GiB, no swap).
const HOST_MEMINFO: &str = include_str!("data/meminfo.host");

const MIB: u64 = 1024 * 1024;

#[test]
fn v1_uses_hierarchical_total_keys() {
    let s = MemStat::from_v1(V1_STAT);
    assert_eq!(s.cache, Some(412_041_216)); // total_cache, not cache 9502720
    assert_eq!(s.anon, Some(7_118_848)); // total_rss
    assert_eq!(s.anon_thp, Some(0)); // total_rss_huge
    assert_eq!(s.shmem, Some(9_084_928));
    assert_eq!(s.mapped, Some(10_792_960)); // total_mapped_file
    assert_eq!(s.dirty, Some(3_366_912));
    assert_eq!(s.writeback, Some(0));
    assert_eq!(s.inactive_anon, Some(2_793_472));
    assert_eq!(s.active_anon, Some(1_552_384));
    assert_eq!(s.inactive_file, Some(334_848_000));
    assert_eq!(s.active_file, Some(68_108_288));
    assert_eq!(s.unevictable, Some(11_739_136));
    // v1 has none of these.
    for absent in [
        s.shmem_thp,
        s.file_thp,
        s.slab,
        s.slab_reclaimable,
        s.slab_unreclaimable,
        s.kernel_stack,
        s.pagetables,
        s.percpu,
        s.zswap,
        s.zswapped,
    ] {
        assert_eq!(absent, None);
    }
}

#[test]
fn v1_exact_keys_rss_vs_rss_huge() {
    // The reference's prefix match lets `total_rss` swallow `total_rss_huge`.
    let s = MemStat::from_v1("total_rss_huge 2097152\ntotal_rss 8192\ntotal_cache 4096\n");
    assert_eq!(s.anon, Some(8192));
    assert_eq!(s.anon_thp, Some(2_097_152));
    assert_eq!(s.cache, Some(4096));
    let s = MemStat::from_v1("total_rss 8192\ntotal_rss_huge 2097152\n");
    assert_eq!((s.anon, s.anon_thp), (Some(8192), Some(2_097_152)));
}

#[test]
fn v1_falls_back_to_local_keys() {
    // Totals win wherever they exist, whatever the order; local keys fill the gaps.
    let s = MemStat::from_v1("cache 100\nrss 200\ntotal_cache 1000\nmapped_file 7\ndirty 3\n");
    assert_eq!(s.cache, Some(1000));
    assert_eq!(s.anon, Some(200));
    assert_eq!(s.mapped, Some(7));
    assert_eq!(s.dirty, Some(3));
    assert_eq!(s.writeback, None);
    // v2 names mean nothing on v1.
    let s = MemStat::from_v1("file 1\nanon 2\nslab 3\ntotal_slab 4\n");
    assert_eq!(s, MemStat::default());
}

#[test]
fn v2_maps_every_key() {
    let s = MemStat::from_v2(V2_STAT);
    let expected = MemStat {
        cache: Some(104_857_600),
        anon: Some(52_428_800),
        active_anon: Some(31_457_280),
        inactive_anon: Some(41_943_040),
        active_file: Some(20_971_520),
        inactive_file: Some(62_914_560),
        unevictable: Some(0),
        shmem: Some(20_971_520),
        mapped: Some(31_457_280),
        dirty: Some(12_288),
        writeback: Some(8192),
        anon_thp: Some(8_388_608),
        shmem_thp: Some(2_097_152),
        file_thp: Some(0),
        slab: Some(6_291_456),
        slab_reclaimable: Some(5_242_880),
        slab_unreclaimable: Some(1_048_576),
        kernel_stack: Some(655_360),
        pagetables: Some(1_048_576),
        percpu: Some(131_072),
        zswap: Some(0),
        zswapped: Some(0),
    };
    assert_eq!(s, expected);
}

#[test]
fn v2_exact_keys_whatever_the_order() {
    let s = MemStat::from_v2(
        "file_mapped 4096\nfile_dirty 1024\nfile_writeback 512\nfile_thp 2048\nfile 8192\n\
         anon_thp 16384\nanon 32768\nslab_reclaimable 10\nslab 30\nzswapped 5\nzswap 6\n",
    );
    assert_eq!(s.cache, Some(8192));
    assert_eq!(s.mapped, Some(4096));
    assert_eq!(s.dirty, Some(1024));
    assert_eq!(s.writeback, Some(512));
    assert_eq!(s.file_thp, Some(2048));
    assert_eq!(s.anon, Some(32768));
    assert_eq!(s.anon_thp, Some(16384));
    assert_eq!(s.slab, Some(30));
    assert_eq!(s.slab_reclaimable, Some(10));
    assert_eq!(s.slab_unreclaimable, None);
    assert_eq!(s.zswap, Some(6));
    assert_eq!(s.zswapped, Some(5));
    // v1 names mean nothing on v2; malformed lines are skipped.
    let s = MemStat::from_v2("total_cache 1\ncache 2\nrss 3\nfile x\nfile 1 2\nanon\n");
    assert_eq!(s, MemStat::default());
}

#[test]
fn swap_v1_from_memsw() {
    let v = Limit::Value;
    let s = SwapView::from_v1(v(256 * MIB), v(512 * MIB), 100 * MIB, 130 * MIB, Some(60));
    assert_eq!(
        s,
        SwapView {
            limit: v(256 * MIB),
            usage: 30 * MIB,
            swappiness_zero: false
        }
    );
    // memsw unlimited: swap unlimited.
    let s = SwapView::from_v1(v(256 * MIB), Limit::Max, 0, 0, None);
    assert_eq!(s.limit, Limit::Max);
    assert!(!s.swappiness_zero);
    let s = SwapView::from_v1(Limit::Max, Limit::Max, 5, 4, Some(0));
    assert_eq!(s.limit, Limit::Max);
    assert_eq!(s.usage, 0); // memsw_usage < usage: saturates
    assert!(s.swappiness_zero);
    // Equal limits: no swap allowed.
    assert_eq!(
        SwapView::from_v1(v(256 * MIB), v(256 * MIB), 0, 0, None).limit,
        v(0)
    );
    // Inconsistent memsw < mem: saturates at 0.
    assert_eq!(SwapView::from_v1(v(10), v(5), 0, 0, None).limit, v(0));
    // Memory unlimited, memsw finite: swap bounded by memsw itself.
    assert_eq!(
        SwapView::from_v1(Limit::Max, v(512 * MIB), 0, 0, None).limit,
        v(512 * MIB)
    );
}

#[test]
fn host_mem_parse() {
    let h = HostMem::parse(HOST_MEMINFO).unwrap();
    assert_eq!(
        h,
        HostMem {
            mem_total_kb: 24_684_084,
            swap_total_kb: 0
        }
    );
    let h = HostMem::parse("MemTotal:  1000 kB\nSwapTotal:     2048 kB\n").unwrap();
    assert_eq!((h.mem_total_kb, h.swap_total_kb), (1000, 2048));
    assert_eq!(HostMem::parse("MemFree: 1 kB\nSwapTotal: 2 kB\n"), None);
    assert_eq!(HostMem::parse("MemTotal: lots kB\n"), None);
    assert_eq!(HostMem::parse(""), None);
    // Exact labels: `MemTotalX` is not `MemTotal`.
    assert_eq!(HostMem::parse("MemTotalX: 5 kB\n"), None);
    let h = HostMem::parse("MemTotal: 7 kB\nSwapTotal: x kB\n").unwrap();
    assert_eq!(h.swap_total_kb, 0);
}

fn view(limit: Limit, usage: u64, stat: MemStat, swap: Option<SwapView>) -> MemoryView {
    MemoryView {
        limit,
        usage,
        stat,
        swap,
    }
}

#[test]
fn compute_v2_256mib_container() {
    let host = HostMem::parse(HOST_MEMINFO).unwrap();
    let v = view(
        Limit::Value(256 * MIB),
        180 * MIB,
        MemStat::from_v2(V2_STAT),
        None,
    );
    let m = compute(&host, &v, true);
    assert_eq!(m.mem_total, 262_144);
    assert_eq!(m.mem_free, 262_144 - 184_320);
    // free + active_file 20480 + inactive_file 61440 + slab_reclaimable 5120; no shmem.
    assert_eq!(m.mem_available, 77_824 + 20_480 + 61_440 + 5_120);
    assert_eq!(m.cached, 102_400);
    assert_eq!(m.anon_pages, Some(51_200));
    assert_eq!(m.mapped, Some(30_720));
    assert_eq!(m.dirty, Some(12));
    assert_eq!(m.writeback, Some(8));
    assert_eq!(m.anon_huge, Some(8192));
    assert_eq!(m.shmem_huge, Some(2048));
    assert_eq!(m.file_huge, Some(0));
    assert_eq!(m.shmem, Some(20_480));
    assert_eq!(m.slab, Some(6144));
    assert_eq!(m.s_reclaimable, Some(5120));
    assert_eq!(m.s_unreclaim, Some(1024));
    assert_eq!(m.kernel_stack, Some(640));
    assert_eq!(m.page_tables, Some(1024));
    assert_eq!(m.percpu, Some(128));
    assert_eq!((m.zswap, m.zswapped), (Some(0), Some(0)));
    assert_eq!((m.swap_total, m.swap_free), (0, 0));
}

#[test]
fn compute_unlimited_is_host_and_caps_hold() {
    let host = HostMem {
        mem_total_kb: 1000,
        swap_total_kb: 0,
    };
    let stat = MemStat {
        cache: Some(5000 * 1024),
        active_file: Some(4000 * 1024),
        ..MemStat::default()
    };
    let m = compute(&host, &view(Limit::Max, 100 * 1024, stat, None), true);
    assert_eq!(m.mem_total, 1000);
    assert_eq!(m.mem_free, 900);
    assert_eq!(m.mem_available, 1000);
    assert_eq!(m.cached, 1000);
    assert_eq!(m.active_anon, None);
    // Usage above the limit: free 0, never negative.
    let m = compute(
        &host,
        &view(
            Limit::Value(512 * 1024),
            4096 * 1024,
            MemStat::default(),
            None,
        ),
        true,
    );
    assert_eq!(
        (m.mem_total, m.mem_free, m.mem_available, m.cached),
        (512, 0, 0, 0)
    );
    // Bytes truncate to kB.
    let m = compute(
        &host,
        &view(Limit::Value(2047), 1023, MemStat::default(), None),
        true,
    );
    assert_eq!((m.mem_total, m.mem_free), (1, 1));
}

fn swap_host() -> HostMem {
    HostMem {
        mem_total_kb: 8 * 1024 * 1024,
        swap_total_kb: 2 * 1024 * 1024,
    }
}

fn with_swap(limit: Limit, usage: u64, zero: bool) -> MemoryView {
    let swap = SwapView {
        limit,
        usage,
        swappiness_zero: zero,
    };
    view(Limit::Value(256 * MIB), 0, MemStat::default(), Some(swap))
}

#[test]
fn compute_swap() {
    let host = swap_host();
    let m = compute(
        &host,
        &with_swap(Limit::Value(64 * MIB), 16 * MIB, false),
        true,
    );
    assert_eq!(
        (m.swap_total, m.swap_free, m.swap_used()),
        (65_536, 49_152, 16_384)
    );
    // Unlimited: the host's swap.
    let m = compute(&host, &with_swap(Limit::Max, 0, false), true);
    assert_eq!(
        (m.swap_total, m.swap_free),
        (2 * 1024 * 1024, 2 * 1024 * 1024)
    );
    // Limit above the host's swap: capped.
    let m = compute(&host, &with_swap(Limit::Value(1 << 40), MIB, false), true);
    assert_eq!((m.swap_total, m.swap_used()), (2 * 1024 * 1024, 1024));
    // Usage above the limit: used = total, free 0.
    let m = compute(&host, &with_swap(Limit::Value(MIB), 8 * MIB, false), true);
    assert_eq!((m.swap_total, m.swap_free), (1024, 0));
    // Swappiness 0: a full device of what is used.
    let m = compute(
        &host,
        &with_swap(Limit::Value(64 * MIB), 16 * MIB, true),
        true,
    );
    assert_eq!((m.swap_total, m.swap_free), (16_384, 0));
    // -u, no accounting, or no host swap: nothing.
    let m = compute(&host, &with_swap(Limit::Max, MIB, false), false);
    assert_eq!((m.swap_total, m.swap_free), (0, 0));
    let mut v = with_swap(Limit::Max, MIB, false);
    v.swap = None;
    assert_eq!(compute(&host, &v, true).swap_total, 0);
    let no_swap = HostMem {
        swap_total_kb: 0,
        ..host
    };
    let m = compute(&no_swap, &with_swap(Limit::Max, MIB, false), true);
    assert_eq!((m.swap_total, m.swap_free), (0, 0));
}

#[test]
fn compute_extreme_inputs_do_not_wrap() {
    let full = MemStat {
        cache: Some(u64::MAX),
        anon: Some(u64::MAX),
        active_anon: Some(u64::MAX),
        inactive_anon: Some(u64::MAX),
        active_file: Some(u64::MAX),
        inactive_file: Some(u64::MAX),
        slab_reclaimable: Some(u64::MAX),
        ..MemStat::default()
    };
    let host = HostMem {
        mem_total_kb: u64::MAX,
        swap_total_kb: u64::MAX,
    };
    for limit in [Limit::Max, Limit::Value(u64::MAX), Limit::Value(0)] {
        for usage in [0, u64::MAX] {
            let swap = SwapView {
                limit,
                usage,
                swappiness_zero: false,
            };
            let m = compute(&host, &view(limit, usage, full.clone(), Some(swap)), true);
            assert!(m.mem_free <= m.mem_total);
            assert!(m.mem_available <= m.mem_total);
            assert!(m.cached <= m.mem_total);
            assert!(m.swap_free <= m.swap_total);
        }
    }
    let m = compute(&host, &view(Limit::Max, 0, full, None), true);
    assert_eq!(m.mem_available, u64::MAX);
    assert_eq!(MemValues::default().swap_used(), 0);
}
