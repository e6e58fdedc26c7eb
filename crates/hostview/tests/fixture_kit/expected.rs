//! The meminfo lines each reader of the fixture trees must be served, every other line
//! being the host's (see `assert_meminfo`). Values in kB, derived by hand from the
//! fixture files (bytes / 1024, truncated).

/// v1-legacy, `lxc/c1` (init 2000): 256 MiB under `lxc`'s 512 MiB, RAM+swap 320 MiB
/// under 640 MiB, usage 180 MiB, RAM+swap usage 200 MiB, swappiness 60.
pub const V1_C1: &[(&str, u64)] = &[
    ("MemTotal", 262_144),     // min(256 MiB, 512 MiB, unlimited)
    ("MemFree", 77_824),       // 262144 − 184320
    ("MemAvailable", 159_744), // MemFree + total_active_file + total_inactive_file
    ("Buffers", 0),
    ("Cached", 102_400), // total_cache
    ("SwapCached", 0),
    ("Active", 51_200),    // 30720 + 20480
    ("Inactive", 122_880), // 61440 + 61440
    ("Active(anon)", 30_720),
    ("Inactive(anon)", 61_440),
    ("Active(file)", 20_480),
    ("Inactive(file)", 61_440),
    ("Unevictable", 4),
    ("SwapTotal", 65_536), // memsw 320 MiB − mem 256 MiB, under the host's 1 GiB
    ("SwapFree", 45_056),  // 65536 − (200 MiB − 180 MiB)
    ("Dirty", 12),         // total_dirty
    ("Writeback", 8),      // total_writeback
    ("AnonPages", 71_680), // total_rss
    ("Mapped", 30_720),    // total_mapped_file
    ("Shmem", 20_480),     // total_shmem
    // v1 has no slab counters: 0 rather than the host's.
    ("KReclaimable", 0),
    ("Slab", 0),
    ("SReclaimable", 0),
    ("SUnreclaim", 0),
    ("AnonHugePages", 8_192), // total_rss_huge
];

/// v1-legacy, `lxc/c2` (init 2500): 128 MiB, RAM+swap 192 MiB, 8 MiB swapped out,
/// swappiness 0 (cannot swap: the device looks full).
pub const V1_C2: &[(&str, u64)] = &[
    ("MemTotal", 131_072),
    ("MemFree", 28_672),      // 131072 − 102400
    ("MemAvailable", 69_632), // 28672 + 8192 + 32768
    ("Buffers", 0),
    ("Cached", 40_960),
    ("SwapCached", 0),
    ("Active", 10_240),
    ("Inactive", 81_920),
    ("Active(anon)", 2_048),
    ("Inactive(anon)", 49_152),
    ("Active(file)", 8_192),
    ("Inactive(file)", 32_768),
    ("Unevictable", 0),
    ("SwapTotal", 8_192), // = used, because swappiness is 0
    ("SwapFree", 0),
    ("Dirty", 0),
    ("Writeback", 0),
    ("AnonPages", 51_200),
    ("Mapped", 10_240),
    ("Shmem", 0),
    ("KReclaimable", 0),
    ("Slab", 0),
    ("SReclaimable", 0),
    ("SUnreclaim", 0),
    ("AnonHugePages", 0),
];

/// v2-unified, `system.slice/docker-abc.scope` (init 2000 in its `init.scope`): 256 MiB
/// under `system.slice`'s 512 MiB, swap.max 64 MiB (parent `max`), 16 MiB swapped.
pub const V2_DOCKER: &[(&str, u64)] = &[
    ("MemTotal", 262_144),
    ("MemFree", 77_824),       // 262144 − 184320
    ("MemAvailable", 164_864), // MemFree + active_file + inactive_file + slab_reclaimable
    ("Buffers", 0),
    ("Cached", 102_400), // file
    ("SwapCached", 0),
    ("Active", 51_200),
    ("Inactive", 122_880),
    ("Active(anon)", 30_720),
    ("Inactive(anon)", 61_440),
    ("Active(file)", 20_480),
    ("Inactive(file)", 61_440),
    ("Unevictable", 4),
    ("SwapTotal", 65_536), // min(64 MiB, max, host 2097148)
    ("SwapFree", 49_152),  // 65536 − 16384
    ("Zswap", 0),
    ("Zswapped", 0),
    ("Dirty", 12),         // file_dirty
    ("Writeback", 8),      // file_writeback
    ("AnonPages", 71_680), // anon
    ("Mapped", 30_720),    // file_mapped
    ("Shmem", 20_480),
    ("KReclaimable", 5_120),
    ("Slab", 6_144),
    ("SReclaimable", 5_120),
    ("SUnreclaim", 1_024),
    ("KernelStack", 640),
    ("PageTables", 1_024),
    ("Percpu", 128),
    ("AnonHugePages", 8_192), // anon_thp
    ("ShmemHugePages", 2_048),
    ("FileHugePages", 0),
];

/// v2-unified, host process 300 in `system.slice/cron.service` (memory.max `max`,
/// parent 512 MiB): a host reader is served its own cgroup.
pub const V2_CRON: &[(&str, u64)] = &[
    ("MemTotal", 524_288),
    ("MemFree", 520_192),      // 524288 − 4096
    ("MemAvailable", 523_008), // 520192 + 768 + 1792 + 256
    ("Buffers", 0),
    ("Cached", 2_560),
    ("SwapCached", 0),
    ("Active", 1_024),
    ("Inactive", 2_560),
    ("Active(anon)", 256),
    ("Inactive(anon)", 768),
    ("Active(file)", 768),
    ("Inactive(file)", 1_792),
    ("Unevictable", 0),
    ("SwapTotal", 2_097_148), // swap.max is max all the way up: the host's
    ("SwapFree", 2_097_148),
    ("Zswap", 0),
    ("Zswapped", 0),
    ("Dirty", 0),
    ("Writeback", 0),
    ("AnonPages", 1_024),
    ("Mapped", 1_536),
    ("Shmem", 0),
    ("KReclaimable", 256),
    ("Slab", 384),
    ("SReclaimable", 256),
    ("SUnreclaim", 128),
    ("KernelStack", 32),
    ("PageTables", 64),
    ("Percpu", 1),
    ("AnonHugePages", 0),
    ("ShmemHugePages", 0),
    ("FileHugePages", 0),
];

/// v2-nested-max, kubepods container 4000: memory.max `max`, pod 1 GiB, kubepods 7 GiB;
/// swap.max `max` everywhere (host 4194300 kB), 1 MiB swapped.
pub const NESTED_POD: &[(&str, u64)] = &[
    ("MemTotal", 1_048_576),
    ("MemFree", 741_376),      // 1048576 − 307200
    ("MemAvailable", 835_584), // 741376 + 40960 + 51200 + 2048
    ("Buffers", 0),
    ("Cached", 92_160),
    ("SwapCached", 0),
    ("Active", 143_360),
    ("Inactive", 153_600),
    ("Active(anon)", 102_400),
    ("Inactive(anon)", 102_400),
    ("Active(file)", 40_960),
    ("Inactive(file)", 51_200),
    ("Unevictable", 0),
    ("SwapTotal", 4_194_300),
    ("SwapFree", 4_193_276),
    ("Zswap", 0),
    ("Zswapped", 0),
    ("Dirty", 4),
    ("Writeback", 0),
    ("AnonPages", 204_800),
    ("Mapped", 8_192),
    ("Shmem", 0),
    ("KReclaimable", 2_048),
    ("Slab", 3_072),
    ("SReclaimable", 2_048),
    ("SUnreclaim", 1_024),
    ("KernelStack", 1_024),
    ("PageTables", 2_048),
    ("Percpu", 64),
    ("AnonHugePages", 0),
    ("ShmemHugePages", 0),
    ("FileHugePages", 0),
];

/// v2-nested-max, `tenants/team-a/ct2` (init 4100): 768 MiB under team-a's 384 MiB
/// under tenants' 2 GiB; swap.max only on team-a (32 MiB).
pub const NESTED_MIDDLE: &[(&str, u64)] = &[
    ("MemTotal", 393_216),
    ("MemFree", 290_816),      // 393216 − 102400
    ("MemAvailable", 328_704), // 290816 + 16384 + 20480 + 1024
    ("Buffers", 0),
    ("Cached", 36_864),
    ("SwapCached", 0),
    ("Active", 45_056),
    ("Inactive", 61_440),
    ("Active(anon)", 28_672),
    ("Inactive(anon)", 40_960),
    ("Active(file)", 16_384),
    ("Inactive(file)", 20_480),
    ("Unevictable", 0),
    ("SwapTotal", 32_768),
    ("SwapFree", 32_768),
    ("Zswap", 0),
    ("Zswapped", 0),
    ("Dirty", 0),
    ("Writeback", 0),
    ("AnonPages", 61_440),
    ("Mapped", 16_384),
    ("Shmem", 8_192),
    ("KReclaimable", 1_024),
    ("Slab", 1_536),
    ("SReclaimable", 1_024),
    ("SUnreclaim", 512),
    ("KernelStack", 320),
    ("PageTables", 640),
    ("Percpu", 0),
    ("AnonHugePages", 0),
    ("ShmemHugePages", 0),
    ("FileHugePages", 0),
];

/// v2-nested-max, `tenants/team-b/ct3` (init 4200): no memory controller in ct3; usage
/// and statistics from team-b (640 MiB), the nearest level that has it.
pub const NESTED_UNDELEGATED: &[(&str, u64)] = &[
    ("MemTotal", 655_360),
    ("MemFree", 450_560),      // 655360 − 204800
    ("MemAvailable", 536_576), // 450560 + 30720 + 51200 + 4096
    ("Buffers", 0),
    ("Cached", 81_920),
    ("SwapCached", 0),
    ("Active", 61_440),
    ("Inactive", 122_880),
    ("Active(anon)", 30_720),
    ("Inactive(anon)", 71_680),
    ("Active(file)", 30_720),
    ("Inactive(file)", 51_200),
    ("Unevictable", 0),
    ("SwapTotal", 4_194_300),
    ("SwapFree", 4_194_300),
    ("Zswap", 0),
    ("Zswapped", 0),
    ("Dirty", 0),
    ("Writeback", 0),
    ("AnonPages", 102_400),
    ("Mapped", 0),
    ("Shmem", 0),
    ("KReclaimable", 4_096),
    ("Slab", 5_120),
    ("SReclaimable", 4_096),
    ("SUnreclaim", 1_024),
    ("KernelStack", 512),
    ("PageTables", 1_024),
    ("Percpu", 0),
    ("AnonHugePages", 0),
    ("ShmemHugePages", 0),
    ("FileHugePages", 0),
];

/// hybrid, `system.slice/docker-abc123.scope` (init 3000): v1 memory 512 MiB, no
/// swap accounting (no memsw files) on a host with 2 GiB of swap.
pub const HYBRID_DOCKER: &[(&str, u64)] = &[
    ("MemTotal", 524_288),
    ("MemFree", 393_216),      // 524288 − 131072
    ("MemAvailable", 457_728), // 393216 + 24576 + 39936
    ("Buffers", 0),
    ("Cached", 65_536),
    ("SwapCached", 0),
    ("Active", 40_960),
    ("Inactive", 81_920),
    ("Active(anon)", 16_384),
    ("Inactive(anon)", 41_984),
    ("Active(file)", 24_576),
    ("Inactive(file)", 39_936),
    ("Unevictable", 0),
    ("SwapTotal", 0),
    ("SwapFree", 0),
    ("Dirty", 8),
    ("Writeback", 4),
    ("AnonPages", 57_344),
    ("Mapped", 16_384),
    ("Shmem", 1_024),
    ("KReclaimable", 0),
    ("Slab", 0),
    ("SReclaimable", 0),
    ("SUnreclaim", 0),
    ("AnonHugePages", 4_096),
];

/// swap-off, `system.slice/docker-def.scope` (init 6000): 256 MiB, swap.max 64 MiB,
/// but the host has no swap.
pub const SWAPOFF_DOCKER: &[(&str, u64)] = &[
    ("MemTotal", 262_144),
    ("MemFree", 159_744),      // 262144 − 102400
    ("MemAvailable", 202_752), // 159744 + 20480 + 20480 + 2048
    ("Buffers", 0),
    ("Cached", 40_960),
    ("SwapCached", 0),
    ("Active", 30_720),
    ("Inactive", 61_440),
    ("Active(anon)", 10_240),
    ("Inactive(anon)", 40_960),
    ("Active(file)", 20_480),
    ("Inactive(file)", 20_480),
    ("Unevictable", 0),
    ("SwapTotal", 0),
    ("SwapFree", 0),
    ("Zswap", 0),
    ("Zswapped", 0),
    ("Dirty", 8),
    ("Writeback", 0),
    ("AnonPages", 51_200),
    ("Mapped", 10_240),
    ("Shmem", 0),
    ("KReclaimable", 2_048),
    ("Slab", 3_072),
    ("SReclaimable", 2_048),
    ("SUnreclaim", 1_024),
    ("KernelStack", 768),
    ("PageTables", 1_536),
    ("Percpu", 96),
    ("AnonHugePages", 0),
    ("ShmemHugePages", 0),
    ("FileHugePages", 0),
];

/// edge-malformed, `lxc/junkstat` (init 3100): memory.stat with junk lines; the first
/// well-formed line of each key counts, `total_rss_huge` is malformed so the local
/// `rss_huge` is used. RAM+swap unlimited: the host's swap.
pub const EDGE_JUNKSTAT: &[(&str, u64)] = &[
    ("MemTotal", 262_144),
    ("MemFree", 159_744),      // 262144 − 102400
    ("MemAvailable", 221_184), // 159744 + 20480 + 40960
    ("Buffers", 0),
    ("Cached", 61_440),
    ("SwapCached", 0),
    ("Active", 28_672),
    ("Inactive", 77_824),
    ("Active(anon)", 8_192),
    ("Inactive(anon)", 36_864),
    ("Active(file)", 20_480),
    ("Inactive(file)", 40_960),
    ("Unevictable", 0), // total_unevictable overflows u64: the local key (0)
    ("SwapTotal", 1_048_576),
    ("SwapFree", 1_048_576),
    ("Dirty", 16),
    ("Writeback", 8),
    ("AnonPages", 40_960),
    ("Mapped", 8_192),
    ("Shmem", 4_096),
    ("KReclaimable", 0),
    ("Slab", 0),
    ("SReclaimable", 0),
    ("SUnreclaim", 0),
    ("AnonHugePages", 2_048),
];

/// edge-malformed, `lxc/goodpath`: 192 MiB, RAM+swap also 192 MiB (no swap).
pub const EDGE_GOODPATH: &[(&str, u64)] = &[
    ("MemTotal", 196_608),
    ("MemFree", 147_456),      // 196608 − 49152
    ("MemAvailable", 167_936), // 147456 + 8192 + 12288
    ("Buffers", 0),
    ("Cached", 20_480),
    ("SwapCached", 0),
    ("Active", 16_384),
    ("Inactive", 28_672),
    ("Active(anon)", 8_192),
    ("Inactive(anon)", 16_384),
    ("Active(file)", 8_192),
    ("Inactive(file)", 12_288),
    ("Unevictable", 0),
    ("SwapTotal", 0),
    ("SwapFree", 0),
    ("Dirty", 0),
    ("Writeback", 0),
    ("AnonPages", 24_576),
    ("Mapped", 4_096),
    ("Shmem", 0),
    ("KReclaimable", 0),
    ("Slab", 0),
    ("SReclaimable", 0),
    ("SUnreclaim", 0),
    ("AnonHugePages", 0),
];

/// u64::MAX bytes in kB.
const HUGE_KB: u64 = u64::MAX / 1024;

/// edge-malformed, `lxc/huge` (init 3500): limits of u64::MAX (unlimited), usage
/// 2^63 − 4096, RAM+swap usage and every memory.stat counter u64::MAX. Nothing wraps:
/// MemFree 0, MemAvailable and Cached capped at MemTotal, swap full.
pub const EDGE_HUGE: &[(&str, u64)] = &[
    ("MemTotal", 16_314_764), // the host's
    ("MemFree", 0),
    ("MemAvailable", 16_314_764),
    ("Buffers", 0),
    ("Cached", 16_314_764),
    ("SwapCached", 0),
    ("Active", 2 * HUGE_KB),
    ("Inactive", 2 * HUGE_KB),
    ("Active(anon)", HUGE_KB),
    ("Inactive(anon)", HUGE_KB),
    ("Active(file)", HUGE_KB),
    ("Inactive(file)", HUGE_KB),
    ("Unevictable", HUGE_KB),
    ("SwapTotal", 1_048_576),
    ("SwapFree", 0),
    ("Dirty", HUGE_KB),
    ("Writeback", HUGE_KB),
    ("AnonPages", HUGE_KB),
    ("Mapped", HUGE_KB),
    ("Shmem", HUGE_KB),
    ("KReclaimable", 0),
    ("Slab", 0),
    ("SReclaimable", 0),
    ("SUnreclaim", 0),
    ("AnonHugePages", HUGE_KB),
];
