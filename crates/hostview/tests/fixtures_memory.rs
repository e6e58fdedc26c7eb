//! `hostview` against captured host trees (`fixtures/`, see `fixtures/README.md`): the
//! meminfo and swaps each kind of reader is served — exact values, the lines left as the
//! host's, swaps agreeing with meminfo, and the fail-open cases (malformed input,
//! unresolvable readers) where the host's file must come back unchanged.
//!
//! Every test opens a tree as the host's root with the `/proc`-walking init resolver
//! (the ioctl needs a real nsfs).
//!
//! Rendered outputs are also kept under `tests/expected/<tree>-<tid>-<file>`;
//! `UPDATE_EXPECTED=1 cargo test -p hostview --test fixtures_memory` rewrites them
//! (review the diff before committing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture_kit;

use hostview::cgroup::{Backend, Controller};
use hostview::{Dir, Options, VirtualFile};

use fixture_kit::expected::*;
use fixture_kit::*;

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
