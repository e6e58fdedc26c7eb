//! `hostview` against captured host trees (`fixtures/`, see `fixtures/README.md`).
//!
//! Every test opens a tree as the host's root with the `/proc`-walking init resolver
//! (the ioctl needs a real nsfs) and checks what each kind of reader is served:
//! exact meminfo values, the lines left as the host's, swaps, init resolution, layout
//! detection, and the fail-open cases where the host's file must come back unchanged.
//!
//! Rendered outputs are also kept under `tests/expected/<tree>-<tid>-<file>`;
//! `UPDATE_EXPECTED=1 cargo test -p hostview --test fixtures` rewrites them (review the
//! diff before committing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hostview::cgroup::{Backend, Controller};
use hostview::{Dir, Error, Host, InitResolver, Layout, NsId, Options, ResolverKind, VirtualFile};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");
const EXPECTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/expected");

const HOST_NS: NsId = NsId(4026531836);
const SWAPS_HEADER: &str = "Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n";
const TREES: [&str; 7] = [
    "v1-legacy",
    "v2-unified",
    "v2-nested-max",
    "v2-no-memory-controller",
    "hybrid",
    "swap-off",
    "edge-malformed",
];

// ------------------------------------------------------------------------- helpers

fn tree_root(tree: &str) -> PathBuf {
    Path::new(FIXTURES).join(tree)
}

fn procfs() -> Options {
    Options {
        resolver: ResolverKind::Procfs,
        ..Options::default()
    }
}

fn open(tree: &str) -> Host {
    open_with(tree, procfs())
}

fn open_with(tree: &str, opts: Options) -> Host {
    Host::open(&tree_root(tree), opts).unwrap_or_else(|e| panic!("opening {tree}: {e}"))
}

fn render(host: &Host, file: VirtualFile, tid: u32) -> String {
    let mut out = b"stale".to_vec();
    host.render(file, tid, &mut out)
        .unwrap_or_else(|e| panic!("rendering {file:?} for {tid}: {e}"));
    String::from_utf8(out).unwrap()
}

fn meminfo(host: &Host, tid: u32) -> String {
    render(host, VirtualFile::Meminfo, tid)
}

fn swaps(host: &Host, tid: u32) -> String {
    render(host, VirtualFile::Swaps, tid)
}

/// A file of the tree, as the host would serve it.
fn host_text(tree: &str, rel: &str) -> String {
    std::fs::read_to_string(tree_root(tree).join(rel)).unwrap()
}

/// The one `none` line LXCFS and lxcfs-rs show when the container has swap.
fn swaps_with(total_kb: u64, used_kb: u64) -> String {
    format!(
        "{SWAPS_HEADER}none{:36}virtual\t\t{total_kb}\t{used_kb}\t0\n",
        ""
    )
}

/// label → kB of every `Label: N kB` line.
fn values(meminfo: &str) -> HashMap<String, u64> {
    meminfo
        .lines()
        .filter_map(|l| {
            let (label, rest) = l.split_once(':')?;
            let n = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
            Some((label.to_string(), n))
        })
        .collect()
}

fn kb(meminfo: &str, label: &str) -> u64 {
    *values(meminfo)
        .get(label)
        .unwrap_or_else(|| panic!("no {label} line in\n{meminfo}"))
}

/// `out` is the host's meminfo with exactly the `expected` lines replaced, each in the
/// kernel's `%-16s%8lu kB` layout; every other line is the host's, byte for byte.
fn assert_meminfo(tree: &str, tid: u32, out: &str, expected: &[(&str, u64)]) {
    let host = host_text(tree, "proc/meminfo");
    let want: HashMap<&str, u64> = expected.iter().copied().collect();
    assert_eq!(want.len(), expected.len(), "a label is listed twice");
    assert!(out.ends_with('\n'), "{tree}/{tid}: no final newline");
    let out_lines: Vec<&str> = out.lines().collect();
    let host_lines: Vec<&str> = host.lines().collect();
    assert_eq!(
        out_lines.len(),
        host_lines.len(),
        "{tree}/{tid}: line count"
    );
    let mut replaced = 0;
    for (o, h) in out_lines.iter().zip(&host_lines) {
        let label = h.split_once(':').unwrap().0;
        match want.get(label) {
            Some(v) => {
                let line = format!("{:<16}{v:>8} kB", format!("{label}:"));
                assert_eq!(*o, line, "{tree}/{tid}: {label}");
                replaced += 1;
            }
            None => assert_eq!(o, h, "{tree}/{tid}: {label} must be the host's line"),
        }
    }
    assert_eq!(
        replaced,
        want.len(),
        "{tree}/{tid}: an expected label is missing"
    );
}

/// A key of a `memory.stat` fixture file, matched exactly, in kB.
fn stat_kb(tree: &str, cgroup: &str, key: &str) -> u64 {
    let text = host_text(tree, &format!("sys/fs/cgroup/{cgroup}/memory.stat"));
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse::<u64>().ok())?
        })
        .unwrap_or_else(|| panic!("{key} not in {cgroup}/memory.stat"))
        / 1024
}

/// Compare with `tests/expected/<name>`, or rewrite it under `UPDATE_EXPECTED=1`.
fn check_expected(name: &str, actual: &str) {
    let path = Path::new(EXPECTED).join(name);
    if std::env::var("UPDATE_EXPECTED").as_deref() == Ok("1") {
        std::fs::create_dir_all(EXPECTED).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (UPDATE_EXPECTED=1 writes it; review it before committing)",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .map(|(i, (e, a))| format!("line {}:\n  expected {e:?}\n  actual   {a:?}", i + 1))
            .collect();
        panic!(
            "{name}: rendering differs from {} ({} lines expected, {} rendered)\n{}",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// The host's meminfo and swaps, byte for byte.
fn assert_host_files(tree: &str, host: &Host, tid: u32) {
    assert_eq!(
        meminfo(host, tid),
        host_text(tree, "proc/meminfo"),
        "{tree}: reader {tid} must get the host's meminfo"
    );
    assert_eq!(
        swaps(host, tid),
        host_text(tree, "proc/swaps"),
        "{tree}: reader {tid} must get the host's swaps"
    );
}

fn dir_name_ends(dir: &Dir, suffix: &str) -> bool {
    dir.name().ends_with(suffix)
}

// ------------------------------------------------------------------------- expectations
//
// Values in kB, derived by hand from the fixture files (bytes / 1024, truncated).

/// v1-legacy, `lxc/c1` (init 2000): 256 MiB under `lxc`'s 512 MiB, RAM+swap 320 MiB
/// under 640 MiB, usage 180 MiB, RAM+swap usage 200 MiB, swappiness 60.
const V1_C1: &[(&str, u64)] = &[
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
const V1_C2: &[(&str, u64)] = &[
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
const V2_DOCKER: &[(&str, u64)] = &[
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
const V2_CRON: &[(&str, u64)] = &[
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
const NESTED_POD: &[(&str, u64)] = &[
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
const NESTED_MIDDLE: &[(&str, u64)] = &[
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
const NESTED_UNDELEGATED: &[(&str, u64)] = &[
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
const HYBRID_DOCKER: &[(&str, u64)] = &[
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
const SWAPOFF_DOCKER: &[(&str, u64)] = &[
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
const EDGE_JUNKSTAT: &[(&str, u64)] = &[
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
const EDGE_GOODPATH: &[(&str, u64)] = &[
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
const EDGE_HUGE: &[(&str, u64)] = &[
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

// ------------------------------------------------------------------------- layout

#[test]
fn every_tree_opens_with_the_procfs_resolver() {
    for tree in TREES {
        let host = open(tree);
        assert_eq!(host.resolver(), InitResolver::Procfs, "{tree}");
        assert!(host.features().contains("init resolver: procfs"), "{tree}");
        assert!(
            host.features().contains("NS_GET_TGID_FROM_PIDNS=no"),
            "{tree}"
        );
    }
}

#[test]
fn layouts_are_detected() {
    let want = [
        ("v1-legacy", Layout::Legacy),
        ("v2-unified", Layout::Unified),
        ("v2-nested-max", Layout::Unified),
        ("v2-no-memory-controller", Layout::Unified),
        ("hybrid", Layout::Hybrid),
        ("swap-off", Layout::Unified),
        ("edge-malformed", Layout::Legacy),
    ];
    for (tree, layout) in want {
        assert_eq!(open(tree).layout(), layout, "{tree}");
    }
}

#[test]
fn v1_legacy_hierarchies_and_comount() {
    let host = open("v1-legacy");
    let hier = host.hierarchies();
    assert!(hier.v2.is_none());
    let names: Vec<String> = hier.v1.iter().map(|h| h.controllers.join(",")).collect();
    assert_eq!(
        names,
        [
            "name=systemd",
            "cpuset",
            "cpu,cpuacct",
            "memory",
            "blkio",
            "pids"
        ]
    );
    // cpu and cpuacct are one hierarchy.
    let cpu = hier.backend(Controller::Cpu).unwrap();
    assert_eq!(hier.backend(Controller::Cpuacct), Some(cpu));
    assert!(matches!(cpu, Backend::V1(2)));
    assert!(dir_name_ends(
        hier.backend_dir(cpu).unwrap(),
        "sys/fs/cgroup/cpu,cpuacct"
    ));
    assert!(matches!(hier.backend(Controller::Io), Some(Backend::V1(4))));
    assert!(matches!(
        hier.backend(Controller::Memory),
        Some(Backend::V1(3))
    ));
}

#[test]
fn v1_legacy_container_paths_prune_init_scope_per_hierarchy() {
    let host = open("v1-legacy");
    let hier = host.hierarchies();
    let c = host.container(2000).unwrap();
    for ctl in [
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Io,
        Controller::Pids,
    ] {
        let (dir, path) = c.paths.locate(hier, ctl).unwrap();
        assert_eq!(path, "lxc/c1", "{ctl:?}");
        assert!(
            dir_name_ends(dir, &format!("sys/fs/cgroup/{}", ctl_dir(ctl))),
            "{ctl:?}: {}",
            dir.name()
        );
    }
    assert_eq!(c.paths.unified(), None);
}

fn ctl_dir(c: Controller) -> &'static str {
    match c {
        Controller::Cpu | Controller::Cpuacct => "cpu,cpuacct",
        Controller::Io => "blkio",
        other => other.v1_name(),
    }
}

#[test]
fn hybrid_hierarchies() {
    let host = open("hybrid");
    let hier = host.hierarchies();
    let v2 = hier.v2.as_ref().unwrap();
    assert_eq!(v2.mount_point, "/sys/fs/cgroup/unified");
    // Like the machine this was modelled on: hugetlb is left to v2, nothing we read.
    assert_eq!(v2.controllers, ["hugetlb"]);
    assert_eq!(hier.v1.len(), 9);
    for ctl in [
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Io,
        Controller::Pids,
    ] {
        assert!(
            matches!(hier.backend(ctl), Some(Backend::V1(_))),
            "{ctl:?} must come from v1"
        );
    }
    // cpu and cpuacct are separate mounts here.
    assert_ne!(
        hier.backend(Controller::Cpu),
        hier.backend(Controller::Cpuacct)
    );
    let c = host.container(3000).unwrap();
    assert_eq!(c.paths.unified(), Some("system.slice/docker-abc123.scope"));
    let (dir, path) = c.paths.locate(hier, Controller::Cpuacct).unwrap();
    assert_eq!(path, "system.slice/docker-abc123.scope");
    assert!(dir_name_ends(dir, "sys/fs/cgroup/cpuacct"));
    let (dir, _) = c.paths.locate(hier, Controller::Memory).unwrap();
    assert!(dir_name_ends(dir, "sys/fs/cgroup/memory"));
}

#[test]
fn v2_unified_paths_prune_init_scope() {
    let host = open("v2-unified");
    let hier = host.hierarchies();
    assert!(hier.v1.is_empty());
    let v2 = hier.v2.as_ref().unwrap();
    assert_eq!(
        v2.controllers,
        ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"]
    );
    assert_eq!(hier.backend(Controller::Memory), Some(Backend::V2));
    let c = host.container(2000).unwrap();
    assert_eq!(c.paths.unified(), Some("system.slice/docker-abc.scope"));
    let (dir, path) = c.paths.locate(hier, Controller::Memory).unwrap();
    assert_eq!(path, "system.slice/docker-abc.scope");
    assert!(dir_name_ends(dir, "sys/fs/cgroup"));
    // The host's pid 1 in /init.scope is at the root once pruned.
    assert_eq!(host.container(1).unwrap().paths.unified(), Some("."));
}

#[test]
fn edge_mountinfo_junk_missing_mount_point_and_bind_mount() {
    // A junk line, a truncated line, a devices mount whose directory is not there and a
    // second mount of the memory hierarchy: three usable hierarchies remain.
    let host = open("edge-malformed");
    let hier = host.hierarchies();
    let names: Vec<String> = hier.v1.iter().map(|h| h.controllers.join(",")).collect();
    assert_eq!(names, ["name=systemd", "cpu,cpuacct", "memory"]);
    let memory: Vec<_> = hier
        .v1
        .iter()
        .filter(|h| h.controllers == ["memory"])
        .collect();
    assert_eq!(memory.len(), 1);
    assert_eq!(memory[0].mount_point, "/sys/fs/cgroup/memory");
}

// ------------------------------------------------------------------------- init resolution

fn resolved(host: &Host, tid: u32) -> (u32, Option<NsId>) {
    let c = host
        .container(tid)
        .unwrap_or_else(|e| panic!("container of {tid}: {e}"));
    (c.init, c.ns)
}

#[test]
fn v1_legacy_init_of_every_kind_of_reader() {
    let c1 = Some(NsId(4026532001));
    let c2 = Some(NsId(4026532101));
    let cases = [
        (2000, 2000, c1), // the init itself
        (2001, 2000, c1), // its child (PPid walk)
        (2002, 2000, c1), // a thread of the child (Tgid, then the walk)
        (2100, 2000, c1), // lxc-attach: parent outside the namespace, /proc scan
        (2110, 2000, c1), // child of the attached process: walk, then scan
        (2500, 2500, c2),
        (100, 100, None), // host readers are their own "container"
        (1, 1, None),
        (42, 42, None),
    ];
    for (tid, init, ns) in cases {
        // A fresh host each time, so no answer comes from the cache.
        assert_eq!(resolved(&open("v1-legacy"), tid), (init, ns), "tid {tid}");
    }
    // And through one host, cache included.
    let host = open("v1-legacy");
    for (tid, init, ns) in cases {
        assert_eq!(resolved(&host, tid), (init, ns), "cached, tid {tid}");
    }
}

#[test]
fn v1_legacy_resolver_directly() {
    let proc = Dir::open(&tree_root("v1-legacy").join("proc")).unwrap();
    let ns = NsId(4026532001);
    assert_eq!(NsId::of(&proc, 2100).unwrap(), ns);
    assert_eq!(NsId::of(&proc, 100).unwrap(), HOST_NS);
    for tid in [2000, 2001, 2002, 2100, 2110] {
        assert_eq!(
            InitResolver::Procfs.resolve(&proc, tid, ns).unwrap(),
            2000,
            "tid {tid}"
        );
    }
}

#[test]
fn v2_unified_init_of_every_kind_of_reader() {
    let ns = Some(NsId(4026532301));
    for (tid, init, ns) in [
        (2000, 2000, ns),
        (2001, 2000, ns),
        (2003, 2000, ns), // a thread of init itself
        (2100, 2000, ns), // docker exec: parent is the shim on the host
        (100, 100, None),
        (300, 300, None),
    ] {
        assert_eq!(resolved(&open("v2-unified"), tid), (init, ns), "tid {tid}");
    }
}

#[test]
fn v2_unified_nested_pid_namespace_is_its_own_reader() {
    // 2300 is pid 1 of a namespace nested in the container's (NSpid `2300 60 1`); its
    // readers get the cgroup of that init (the container's nginx.service), with limits
    // still walked up through the container.
    let nested = Some(NsId(4026532399));
    for tid in [2300, 2301] {
        assert_eq!(
            resolved(&open("v2-unified"), tid),
            (2300, nested),
            "tid {tid}"
        );
    }
    let host = open("v2-unified");
    let out = meminfo(&host, 2301);
    assert_eq!(kb(&out, "MemTotal"), 262_144); // docker-abc.scope's 256 MiB
    assert_eq!(kb(&out, "MemFree"), 262_144 - 176_128); // nginx.service's usage
    assert_eq!(kb(&out, "MemAvailable"), 86_016 + 18_432 + 58_368 + 4_608);
    assert_eq!(kb(&out, "SwapTotal"), 65_536);
    assert_eq!(kb(&out, "SwapFree"), 65_536 - 16_384);
    assert_ne!(out, meminfo(&host, 2000));
}

#[test]
fn other_trees_resolve_their_inits() {
    for (tree, tid, init, ns) in [
        ("v2-nested-max", 4000, 4000, 4026532401),
        ("v2-nested-max", 4101, 4100, 4026532402),
        ("v2-nested-max", 4200, 4200, 4026532403),
        ("v2-no-memory-controller", 5001, 5000, 4026532501),
        ("hybrid", 3001, 3000, 4026532701),
        ("swap-off", 6000, 6000, 4026532601),
        // The reader's own status is garbage: found by the scan.
        ("edge-malformed", 3801, 3800, 4026532809),
    ] {
        assert_eq!(
            resolved(&open(tree), tid),
            (init, Some(NsId(ns))),
            "{tree} tid {tid}"
        );
    }
}

#[test]
fn edge_unresolvable_readers_are_errors_not_panics() {
    let host = open("edge-malformed");
    // Init's /proc directory is gone and nothing else in the namespace is pid 1.
    assert!(matches!(
        host.container(3401),
        Err(Error::InitNotFound { tid: 3401 })
    ));
    // The ns link does not name a pid namespace.
    assert!(matches!(host.container(3600), Err(Error::Parse { .. })));
    assert!(matches!(host.container(0), Err(Error::NoCaller { tid: 0 })));
    let gone = host.container(99_999).unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    assert_eq!(gone.errno(), libc::ENOENT);
}

// ------------------------------------------------------------------------- host readers

#[test]
fn host_readers_at_the_root_get_the_host_files_byte_for_byte() {
    for (tree, tids) in [
        ("v1-legacy", &[1u32, 42, 100, 1990, 2490][..]),
        ("v2-unified", &[1, 100]),
        ("v2-nested-max", &[1, 100]),
        ("hybrid", &[1, 42, 100]),
        ("swap-off", &[1, 100]),
        ("edge-malformed", &[1, 42, 100]),
    ] {
        let host = open(tree);
        for &tid in tids {
            assert_host_files(tree, &host, tid);
        }
    }
}

#[test]
fn v2_unified_host_reader_in_a_limited_cgroup_gets_its_own() {
    let host = open("v2-unified");
    assert_meminfo("v2-unified", 300, &meminfo(&host, 300), V2_CRON);
    assert_eq!(swaps(&host, 300), swaps_with(2_097_148, 0));
}

// ------------------------------------------------------------------------- containers

#[test]
fn v1_legacy_container_meminfo_and_swaps() {
    let host = open("v1-legacy");
    let out = meminfo(&host, 2000);
    assert_meminfo("v1-legacy", 2000, &out, V1_C1);
    assert_eq!(swaps(&host, 2000), swaps_with(65_536, 20_480));
    // Every reader of c1 sees the same files.
    for tid in [2001, 2002, 2100, 2110] {
        assert_eq!(meminfo(&host, tid), out, "tid {tid}");
        assert_eq!(swaps(&host, tid), swaps_with(65_536, 20_480), "tid {tid}");
    }
}

#[test]
fn v1_legacy_swappiness_zero_shows_a_full_swap() {
    let host = open("v1-legacy");
    assert_meminfo("v1-legacy", 2500, &meminfo(&host, 2500), V1_C2);
    assert_eq!(swaps(&host, 2500), swaps_with(8_192, 8_192));
}

#[test]
fn v1_legacy_exact_memory_stat_keys() {
    // The reference matched keys by prefix; every key here has a prefix-sharing
    // neighbour with a different value.
    let host = open("v1-legacy");
    let out = meminfo(&host, 2000);
    let st = |k| stat_kb("v1-legacy", "memory/lxc/c1", k);
    assert_eq!(kb(&out, "Mapped"), st("total_mapped_file"));
    assert_eq!(kb(&out, "Dirty"), st("total_dirty"));
    assert_eq!(kb(&out, "Writeback"), st("total_writeback"));
    assert_eq!(kb(&out, "AnonHugePages"), st("total_rss_huge"));
    assert_eq!(kb(&out, "AnonPages"), st("total_rss"));
    assert_eq!(kb(&out, "Cached"), st("total_cache"));
    assert_eq!(kb(&out, "Shmem"), st("total_shmem"));
    // Hierarchical totals, not the container cgroup's own (small) counters.
    assert_ne!(st("total_rss"), st("rss"));
    assert_ne!(st("total_rss"), st("total_rss_huge"));
    assert_ne!(st("total_mapped_file"), st("mapped_file"));
    assert_ne!(st("total_dirty"), st("total_writeback"));
}

#[test]
fn v2_unified_container_meminfo_and_swaps() {
    let host = open("v2-unified");
    let out = meminfo(&host, 2000);
    assert_meminfo("v2-unified", 2000, &out, V2_DOCKER);
    assert_eq!(swaps(&host, 2000), swaps_with(65_536, 16_384));
    for tid in [2001, 2003, 2100] {
        assert_eq!(meminfo(&host, tid), out, "tid {tid}");
        assert_eq!(swaps(&host, tid), swaps_with(65_536, 16_384), "tid {tid}");
    }
}

#[test]
fn v2_unified_exact_memory_stat_keys() {
    let host = open("v2-unified");
    let out = meminfo(&host, 2000);
    let st = |k| stat_kb("v2-unified", "system.slice/docker-abc.scope", k);
    assert_eq!(kb(&out, "Mapped"), st("file_mapped"));
    assert_eq!(kb(&out, "Dirty"), st("file_dirty"));
    assert_eq!(kb(&out, "Writeback"), st("file_writeback"));
    assert_eq!(kb(&out, "AnonHugePages"), st("anon_thp"));
    assert_eq!(kb(&out, "ShmemHugePages"), st("shmem_thp"));
    assert_eq!(kb(&out, "AnonPages"), st("anon"));
    assert_eq!(kb(&out, "Cached"), st("file"));
    assert_eq!(kb(&out, "Slab"), st("slab"));
    assert_eq!(kb(&out, "SReclaimable"), st("slab_reclaimable"));
    assert_eq!(kb(&out, "SUnreclaim"), st("slab_unreclaimable"));
    assert_eq!(kb(&out, "KernelStack"), st("kernel_stack"));
    assert_eq!(kb(&out, "PageTables"), st("pagetables"));
    assert_eq!(kb(&out, "Percpu"), st("percpu"));
    for (a, b) in [
        ("file", "file_mapped"),
        ("file", "file_dirty"),
        ("file_dirty", "file_writeback"),
        ("anon", "anon_thp"),
        ("slab", "slab_reclaimable"),
    ] {
        assert_ne!(
            st(a),
            st(b),
            "{a} and {b} must differ for this test to mean anything"
        );
    }
}

#[test]
fn mem_available_never_counts_shmem() {
    for (tree, tid, v2) in [
        ("v1-legacy", 2000, false),
        ("v2-unified", 2000, true),
        ("v2-nested-max", 4100, true),
        ("hybrid", 3000, false),
    ] {
        let out = meminfo(&open(tree), tid);
        let v = |l| kb(&out, l);
        assert!(v("Shmem") > 0, "{tree}: the fixture must have shmem");
        let reclaimable =
            v("Active(file)") + v("Inactive(file)") + if v2 { v("SReclaimable") } else { 0 };
        assert_eq!(
            v("MemAvailable"),
            (v("MemFree") + reclaimable).min(v("MemTotal")),
            "{tree}"
        );
    }
}

#[test]
fn v2_unified_swap_disabled_by_option() {
    let plain = meminfo(&open("v2-unified"), 2000);
    let host = open_with(
        "v2-unified",
        Options {
            swap: false,
            ..procfs()
        },
    );
    let out = meminfo(&host, 2000);
    let mut want: Vec<(&str, u64)> = V2_DOCKER.to_vec();
    for (label, v) in &mut want {
        if *label == "SwapTotal" || *label == "SwapFree" {
            *v = 0;
        }
    }
    assert_meminfo("v2-unified", 2000, &out, &want);
    assert_eq!(swaps(&host, 2000), SWAPS_HEADER);
    assert_eq!(out.lines().count(), plain.lines().count());
}

#[test]
fn v2_nested_limits_walk_up() {
    let host = open("v2-nested-max");
    assert_meminfo("v2-nested-max", 4000, &meminfo(&host, 4000), NESTED_POD);
    assert_eq!(swaps(&host, 4000), swaps_with(4_194_300, 1_024));
    assert_meminfo("v2-nested-max", 4100, &meminfo(&host, 4100), NESTED_MIDDLE);
    assert_eq!(meminfo(&host, 4101), meminfo(&host, 4100));
    assert_eq!(swaps(&host, 4100), swaps_with(32_768, 0));
    assert_meminfo(
        "v2-nested-max",
        4200,
        &meminfo(&host, 4200),
        NESTED_UNDELEGATED,
    );
    assert_eq!(swaps(&host, 4200), swaps_with(4_194_300, 0));
}

#[test]
fn v2_no_memory_controller_serves_host_values() {
    let host = open("v2-no-memory-controller");
    // The root offers memory; it is just never enabled below it.
    assert_eq!(
        host.hierarchies().backend(Controller::Memory),
        Some(Backend::V2)
    );
    for tid in [5000, 5001] {
        assert_host_files("v2-no-memory-controller", &host, tid);
    }
}

#[test]
fn hybrid_container_without_swap_accounting() {
    let host = open("hybrid");
    assert_meminfo("hybrid", 3000, &meminfo(&host, 3000), HYBRID_DOCKER);
    assert_eq!(swaps(&host, 3000), SWAPS_HEADER);
    assert_eq!(meminfo(&host, 3001), meminfo(&host, 3000));
}

#[test]
fn swap_off_host_means_no_swap_for_containers() {
    let host = open("swap-off");
    assert_meminfo("swap-off", 6000, &meminfo(&host, 6000), SWAPOFF_DOCKER);
    assert_eq!(swaps(&host, 6000), SWAPS_HEADER);
    assert_eq!(host_text("swap-off", "proc/swaps").lines().count(), 1);
}

#[test]
fn the_kill_switch_serves_the_host_files_to_containers() {
    let host = open("v2-unified");
    host.set_serve_host_files(true);
    assert_host_files("v2-unified", &host, 2000);
    host.set_serve_host_files(false);
    assert_meminfo("v2-unified", 2000, &meminfo(&host, 2000), V2_DOCKER);
}

// ------------------------------------------------------------------------- malformed input

#[test]
fn edge_readable_despite_junk() {
    let host = open("edge-malformed");
    assert_meminfo("edge-malformed", 3100, &meminfo(&host, 3100), EDGE_JUNKSTAT);
    assert_eq!(swaps(&host, 3100), swaps_with(1_048_576, 0));
    // Garbage lines in /proc/<pid>/cgroup around a good memory line.
    assert_meminfo("edge-malformed", 3200, &meminfo(&host, 3200), EDGE_GOODPATH);
    assert_eq!(swaps(&host, 3200), SWAPS_HEADER);
    // Garbage in the reader's own status file.
    assert_eq!(meminfo(&host, 3801), meminfo(&host, 3200));
}

#[test]
fn edge_huge_numbers_saturate() {
    let host = open("edge-malformed");
    assert_meminfo("edge-malformed", 3500, &meminfo(&host, 3500), EDGE_HUGE);
    assert_eq!(swaps(&host, 3500), swaps_with(1_048_576, 1_048_576));
}

#[test]
fn edge_fail_open_serves_the_host_files() {
    let host = open("edge-malformed");
    for tid in [
        3000,     // memory.limit_in_bytes is "garbage"
        3300,     // /proc/<pid>/cgroup is nothing but garbage: no memory cgroup
        3401,     // init is gone
        3600,     // the ns link is not a pid namespace link
        3700,     // memory.usage_in_bytes is empty
        0,        // no caller
        99_999,   // no such process
        u32::MAX, // not even a valid pid
    ] {
        assert_host_files("edge-malformed", &host, tid);
        // A second read (failure already logged) is the same.
        assert_host_files("edge-malformed", &host, tid);
    }
}

/// Every reader in every tree: meminfo and swaps always served (the host's files exist
/// in every tree) with the host's line structure, and no file panics for anyone.
#[test]
fn every_reader_of_every_tree_is_served() {
    for tree in TREES {
        let host = open(tree);
        let proc = Dir::open(&tree_root(tree).join("proc")).unwrap();
        let mut tids = proc.numeric_entries().unwrap();
        tids.extend([0, 99_999, u32::MAX]);
        let host_lines = host_text(tree, "proc/meminfo").lines().count();
        for tid in tids {
            let out = meminfo(&host, tid);
            assert_eq!(out.lines().count(), host_lines, "{tree}/{tid}");
            let sw = swaps(&host, tid);
            assert!(sw.starts_with("Filename"), "{tree}/{tid}: {sw}");
            // The other files are not this suite's subject: only no panic.
            for file in VirtualFile::ALL {
                let mut buf = Vec::new();
                let _ = host.render(file, tid, &mut buf);
            }
        }
    }
}

/// meminfo and swaps of one reader always agree.
#[test]
fn swaps_agrees_with_meminfo() {
    for tree in TREES {
        let host = open(tree);
        let proc = Dir::open(&tree_root(tree).join("proc")).unwrap();
        for tid in proc.numeric_entries().unwrap() {
            let m = meminfo(&host, tid);
            let s = swaps(&host, tid);
            if s == host_text(tree, "proc/swaps") {
                continue; // the host's own files
            }
            let (total, free) = (kb(&m, "SwapTotal"), kb(&m, "SwapFree"));
            let want = if total == 0 {
                SWAPS_HEADER.to_string()
            } else {
                swaps_with(total, total - free)
            };
            assert_eq!(s, want, "{tree}/{tid}");
        }
    }
}

// ------------------------------------------------------------------------- snapshots

/// (tree, reader) pairs whose renderings are kept under `tests/expected/`.
const SNAPSHOTS: &[(&str, u32)] = &[
    ("v1-legacy", 100),
    ("v1-legacy", 2000),
    ("v1-legacy", 2100),
    ("v1-legacy", 2500),
    ("v2-unified", 100),
    ("v2-unified", 300),
    ("v2-unified", 2000),
    ("v2-nested-max", 4000),
    ("v2-nested-max", 4100),
    ("v2-nested-max", 4200),
    ("v2-no-memory-controller", 5000),
    ("hybrid", 3000),
    ("swap-off", 6000),
    ("edge-malformed", 3000),
    ("edge-malformed", 3100),
    ("edge-malformed", 3200),
    ("edge-malformed", 3401),
    ("edge-malformed", 3500),
];

#[test]
fn renderings_match_the_expected_files() {
    for &(tree, tid) in SNAPSHOTS {
        let host = open(tree);
        check_expected(&format!("{tree}-{tid}-meminfo"), &meminfo(&host, tid));
        check_expected(&format!("{tree}-{tid}-swaps"), &swaps(&host, tid));
    }
}
