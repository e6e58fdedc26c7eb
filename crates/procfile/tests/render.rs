//! `procfile::render`: `/proc/meminfo` and `/proc/swaps`, checked line by line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use procfile::{
    HostMem, HugeValues, Limit, MemStat, MemValues, MemoryView, SwapView, memory::compute, render,
};

const V1_STAT: &str = include_str!("data/memory.stat.v1");
const V2_STAT: &str = include_str!("data/memory.stat.v2");
const HOST_MEMINFO: &str = include_str!("data/meminfo.host");
const MIB: u64 = 1024 * 1024;

fn render_meminfo(host: &str, vals: &MemValues) -> String {
    let mut out = Vec::new();
    render::meminfo(host, vals, &mut out);
    String::from_utf8(out).unwrap()
}

/// label → value in kB, for every `Label:  N kB` line.
fn values(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|l| {
            let (label, rest) = l.split_once(':')?;
            let rest = rest.trim();
            // The huge page counts have no unit.
            let n = rest
                .strip_suffix("kB")
                .unwrap_or(rest)
                .trim()
                .parse()
                .ok()?;
            Some((label, n))
        })
        .collect()
}

fn v2_view() -> MemoryView {
    MemoryView {
        limit: Limit::Value(256 * MIB),
        usage: 180 * MIB,
        stat: MemStat::from_v2(V2_STAT),
        swap: Some(SwapView {
            limit: Limit::Value(64 * MIB),
            usage: 16 * MIB,
            swappiness_zero: false,
        }),
    }
}

#[test]
fn meminfo_v2_256mib_line_by_line() {
    let host = HostMem::parse(HOST_MEMINFO).unwrap();
    let vals = compute(&host, &v2_view(), true);
    let out = render_meminfo(HOST_MEMINFO, &vals);

    assert_eq!(out.lines().count(), HOST_MEMINFO.lines().count());
    assert!(out.ends_with('\n'));
    let first: Vec<_> = out.lines().take(6).collect();
    assert_eq!(
        first,
        [
            "MemTotal:         262144 kB",
            "MemFree:           77824 kB",
            "MemAvailable:     164864 kB",
            "Buffers:               0 kB",
            "Cached:           102400 kB",
            "SwapCached:            0 kB",
        ]
    );

    let expected: HashMap<&str, u64> = [
        ("MemTotal", 262_144),
        ("MemFree", 77_824),
        ("MemAvailable", 164_864),
        ("Buffers", 0),
        ("Cached", 102_400),
        ("SwapCached", 0),
        ("Active", 30_720 + 20_480),
        ("Inactive", 40_960 + 61_440),
        ("Active(anon)", 30_720),
        ("Inactive(anon)", 40_960),
        ("Active(file)", 20_480),
        ("Inactive(file)", 61_440),
        ("Unevictable", 0),
        ("SwapTotal", 0), // the host has no swap
        ("SwapFree", 0),
        ("Zswap", 0),
        ("Zswapped", 0),
        ("Dirty", 12),
        ("Writeback", 8),
        ("AnonPages", 51_200),
        ("Mapped", 30_720),
        ("Shmem", 20_480),
        ("KReclaimable", 5120),
        ("Slab", 6144),
        ("SReclaimable", 5120),
        ("SUnreclaim", 1024),
        ("KernelStack", 640),
        ("PageTables", 1024),
        ("Percpu", 128),
        ("AnonHugePages", 8192),
        ("ShmemHugePages", 2048),
        ("FileHugePages", 0),
    ]
    .into_iter()
    .collect();

    for (host_line, line) in HOST_MEMINFO.lines().zip(out.lines()) {
        let label = host_line.split_once(':').unwrap().0;
        match expected.get(label) {
            Some(&kb) => {
                let want = format!("{:<16}{:>8} kB", format!("{label}:"), kb);
                assert_eq!(line, want, "line {label}");
            }
            None => assert_eq!(line, host_line, "unknown line must pass through"),
        }
    }
    let got = values(&out);
    assert!(got["MemFree"] <= got["MemTotal"]);
    assert!(got["MemAvailable"] <= got["MemTotal"]);
    // Lines we do not virtualize stay the host's.
    let host_vals = values(HOST_MEMINFO);
    assert_eq!(got["Mlocked"], host_vals["Mlocked"]);
    assert_eq!(got["CommitLimit"], host_vals["CommitLimit"]);
    assert!(out.contains("\nHugePages_Total:       0\n"));
    assert!(out.contains("\nVmallocTotal:   34359738367 kB\n"));
}

#[test]
fn meminfo_v1_keeps_host_lines_it_cannot_know() {
    let host = HostMem::parse(HOST_MEMINFO).unwrap();
    let v = MemoryView {
        limit: Limit::Value(512 * MIB),
        usage: 400 * MIB,
        stat: MemStat::from_v1(V1_STAT),
        swap: None,
    };
    let vals = compute(&host, &v, true);
    let out = render_meminfo(HOST_MEMINFO, &vals);
    assert_eq!(out.lines().count(), HOST_MEMINFO.lines().count());
    let got = values(&out);
    let host_vals = values(HOST_MEMINFO);
    assert_eq!(got["MemTotal"], 524_288);
    assert_eq!(got["MemFree"], 524_288 - 409_600);
    // free + active_file + inactive_file (v1 has no slab_reclaimable).
    assert_eq!(got["MemAvailable"], 114_688 + 66_512 + 327_000);
    assert_eq!(got["Cached"], 402_384);
    assert_eq!(got["Mapped"], 10_540);
    assert_eq!(got["AnonPages"], 6952);
    assert_eq!(got["Dirty"], 3288);
    // v1 has no slab counters: shown as 0 so that `free` does not count the host's
    // reclaimable slab as the container's buff/cache.
    for label in ["Slab", "SReclaimable", "SUnreclaim", "KReclaimable"] {
        assert_eq!(got[label], 0, "{label}");
    }
    // No kernel stack/page tables/percpu/zswap counters either: host lines.
    for label in [
        "KernelStack",
        "PageTables",
        "Percpu",
        "ShmemHugePages",
        "FileHugePages",
        "Zswap",
        "Zswapped",
    ] {
        assert_eq!(got[label], host_vals[label], "{label}");
    }
}

#[test]
fn meminfo_none_keeps_host_and_active_needs_both_parts() {
    let host = "MemTotal:  100 kB\nActive:  50 kB\nInactive:  40 kB\nActive(anon):  1 kB\n\
                Weird line without colon\n\nDirectMap4k:   26624 kB";
    let vals = MemValues {
        mem_total: 80,
        active_anon: Some(3),
        inactive_anon: Some(2),
        inactive_file: Some(4),
        ..MemValues::default()
    };
    let out = render_meminfo(host, &vals);
    assert_eq!(
        out,
        "MemTotal:             80 kB\n\
         Active:  50 kB\n\
         Inactive:              6 kB\n\
         Active(anon):          3 kB\n\
         Weird line without colon\n\
         \n\
         DirectMap4k:   26624 kB\n"
    );
}

#[test]
fn meminfo_huge_page_counts_have_the_kernels_columns() {
    let host = "HugePages_Total:     512\nHugePages_Free:      500\nHugePages_Rsvd:        6\n\
                HugePages_Surp:        2\nHugepagesize:       2048 kB\nHugetlb:         1048576 kB\n";
    let huge = HugeValues {
        total: 128,
        free: 118,
        rsvd: 4,
        surp: 0,
        hugetlb_kb: Some(262_144),
    };
    let vals = MemValues {
        huge: Some(huge),
        ..MemValues::default()
    };
    assert_eq!(
        render_meminfo(host, &vals),
        "HugePages_Total:     128\nHugePages_Free:      118\nHugePages_Rsvd:        4\n\
         HugePages_Surp:        0\nHugepagesize:       2048 kB\nHugetlb:          262144 kB\n"
    );
    // Past five digits the kernel's %5lu widens to the right, as here.
    let wide = MemValues {
        huge: Some(HugeValues {
            total: 1_234_567,
            ..huge
        }),
        ..MemValues::default()
    };
    assert_eq!(
        render_meminfo("HugePages_Total:       0\n", &wide),
        "HugePages_Total:   1234567\n"
    );
    // Without a hugetlb bound the host's lines stay.
    assert_eq!(render_meminfo(host, &MemValues::default()), host);
}

#[test]
fn meminfo_appends_and_pads_long_values() {
    let mut out = b"previous\n".to_vec();
    let vals = MemValues {
        mem_total: u64::MAX,
        ..MemValues::default()
    };
    render::meminfo("MemTotal: 1 kB\r\nOther: 2\r\n", &vals, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "previous\nMemTotal:       18446744073709551615 kB\nOther: 2\r\n"
    );
    let mut out = Vec::new();
    render::meminfo("", &vals, &mut out);
    assert!(out.is_empty());
}

fn render_swaps(vals: &MemValues) -> String {
    let mut out = Vec::new();
    render::swaps(vals, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn swaps_with_and_without_swap() {
    let header = "Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n";
    assert_eq!(render_swaps(&MemValues::default()), header);

    let host = HostMem {
        mem_total_kb: 8 * 1024 * 1024,
        swap_total_kb: 2 * 1024 * 1024,
    };
    let vals = compute(&host, &v2_view(), true);
    let out = render_swaps(&vals);
    assert_eq!(
        out,
        format!("{header}none{}virtual\t\t65536\t16384\t0\n", " ".repeat(36))
    );
    // Same numbers as meminfo.
    let mi = render_meminfo("SwapTotal: 0 kB\nSwapFree: 0 kB\n", &vals);
    assert_eq!(
        mi,
        "SwapTotal:         65536 kB\nSwapFree:          49152 kB\n"
    );
    // Swap disabled (-u): header only.
    let vals = compute(&host, &v2_view(), false);
    assert_eq!(render_swaps(&vals), header);
}

#[test]
fn meminfo_layout_is_the_kernels() {
    // Feed the host's own numbers back: every substituted line must come out byte for
    // byte as the kernel printed it (Buffers aside, which we always show as 0).
    let h = values(HOST_MEMINFO);
    let k = |label: &str| Some(h[label]);
    let vals = MemValues {
        mem_total: h["MemTotal"],
        mem_free: h["MemFree"],
        mem_available: h["MemAvailable"],
        swap_total: h["SwapTotal"],
        swap_free: h["SwapFree"],
        cached: h["Cached"],
        active_anon: k("Active(anon)"),
        inactive_anon: k("Inactive(anon)"),
        active_file: k("Active(file)"),
        inactive_file: k("Inactive(file)"),
        unevictable: k("Unevictable"),
        shmem: k("Shmem"),
        anon_pages: k("AnonPages"),
        mapped: k("Mapped"),
        dirty: k("Dirty"),
        writeback: k("Writeback"),
        anon_huge: k("AnonHugePages"),
        shmem_huge: k("ShmemHugePages"),
        file_huge: k("FileHugePages"),
        slab: k("Slab"),
        s_reclaimable: k("KReclaimable"),
        s_unreclaim: k("SUnreclaim"),
        kernel_stack: k("KernelStack"),
        page_tables: k("PageTables"),
        percpu: k("Percpu"),
        zswap: k("Zswap"),
        zswapped: k("Zswapped"),
        huge: Some(HugeValues {
            total: h["HugePages_Total"],
            free: h["HugePages_Free"],
            rsvd: h["HugePages_Rsvd"],
            surp: h["HugePages_Surp"],
            hugetlb_kb: k("Hugetlb"),
        }),
    };
    let out = render_meminfo(HOST_MEMINFO, &vals);
    let buffers = HOST_MEMINFO
        .lines()
        .find(|l| l.starts_with("Buffers:"))
        .unwrap();
    let expected = HOST_MEMINFO.replace(buffers, "Buffers:               0 kB");
    assert_eq!(out, expected);
}

#[test]
fn zswap_is_zero_where_the_cgroup_does_not_account_it() {
    let host = HostMem {
        mem_total_kb: 8 * 1024 * 1024,
        swap_total_kb: 0,
    };
    let text = "Zswap:            524288 kB\nZswapped:        1048576 kB\n";
    let v1 = MemoryView {
        stat: MemStat::from_v1(V1_STAT),
        ..v2_view()
    };
    assert_eq!(
        render_meminfo(text, &compute(&host, &v1, true)),
        "Zswap:                 0 kB\nZswapped:              0 kB\n"
    );
    let v2 = compute(&host, &v2_view(), true);
    let st = MemStat::from_v2(V2_STAT);
    assert_eq!(v2.zswap, Some(st.zswap.unwrap() / 1024));
}
