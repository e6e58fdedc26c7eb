//! Property tests: parsers are total, CpuSet round-trips, `compute` keeps its invariants,
//! and `render::meminfo` keeps the host's line structure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use procfile::cpuset::MAX_CPUS;
use procfile::{
    CpuSet, HostHuge, HostMem, HugeView, Limit, MemStat, MemoryView, SwapView, hugetlb, keyed,
    memory::compute, mountinfo, pid, render, value,
};

/// Run every parser on `s`; none may panic.
fn parse_everything(s: &str) {
    let _ = value::parse_u64(s);
    let _ = value::parse_i64(s);
    let _ = value::parse_limit_v1(s);
    let _ = value::parse_limit_v2(s);
    let _ = keyed::pairs(s).count();
    let _ = keyed::get(s, "file");
    if let Some(set) = CpuSet::parse(s) {
        let _ = (set.len(), set.to_string(), set.iter().count());
    }
    let _ = mountinfo::entries(s).count();
    let _ = mountinfo::parse_line(s);
    let _ = pid::cgroup_lines(s).count();
    let _ = pid::parse_stat(s);
    let _ = pid::parse_status(s);
    let _ = MemStat::from_v1(s);
    let _ = MemStat::from_v2(s);
    let _ = HostMem::parse(s);
    if let Some(h) = HostHuge::parse(s) {
        let _ = h.cgroup_size_name();
    }
}

fn limit() -> impl Strategy<Value = Limit> {
    prop_oneof![
        Just(Limit::Max),
        any::<u64>().prop_map(Limit::Value),
        (0u64..1 << 40).prop_map(Limit::Value),
    ]
}

/// Mostly small numbers (the interesting range), sometimes anything.
fn bytes() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..1 << 40, any::<u64>()]
}

fn opt_bytes() -> impl Strategy<Value = Option<u64>> {
    proptest::option::of(bytes())
}

fn mem_stat() -> impl Strategy<Value = MemStat> {
    (
        prop::array::uniform8(opt_bytes()),
        prop::array::uniform8(opt_bytes()),
        prop::array::uniform6(opt_bytes()),
    )
        .prop_map(|(a, b, c)| MemStat {
            cache: a[0],
            anon: a[1],
            active_anon: a[2],
            inactive_anon: a[3],
            active_file: a[4],
            inactive_file: a[5],
            unevictable: a[6],
            shmem: a[7],
            mapped: b[0],
            dirty: b[1],
            writeback: b[2],
            anon_thp: b[3],
            shmem_thp: b[4],
            file_thp: b[5],
            slab: b[6],
            slab_reclaimable: b[7],
            slab_unreclaimable: c[0],
            kernel_stack: c[1],
            pagetables: c[2],
            percpu: c[3],
            zswap: c[4],
            zswapped: c[5],
        })
}

fn memory_view() -> impl Strategy<Value = MemoryView> {
    let swap = proptest::option::of((limit(), bytes(), any::<bool>()).prop_map(
        |(limit, usage, swappiness_zero)| SwapView {
            limit,
            usage,
            swappiness_zero,
        },
    ));
    (limit(), bytes(), mem_stat(), swap).prop_map(|(limit, usage, stat, swap)| MemoryView {
        limit,
        usage,
        stat,
        swap,
    })
}

fn host_mem() -> impl Strategy<Value = HostMem> {
    (
        prop_oneof![0u64..1 << 32, any::<u64>()],
        prop_oneof![Just(0u64), 0u64..1 << 32, any::<u64>()],
    )
        .prop_map(|(mem_total_kb, swap_total_kb)| HostMem {
            mem_total_kb,
            swap_total_kb,
        })
}

const LABELS: &[&str] = &[
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "Active",
    "Inactive",
    "Active(anon)",
    "Inactive(file)",
    "SwapTotal",
    "SwapFree",
    "Mapped",
    "KReclaimable",
    "Zswapped",
    "HugePages_Total",
    "DirectMap4k",
    "Mlocked",
];

/// A host meminfo line: a known or random label and a value, or random junk.
fn meminfo_line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (prop::sample::select(LABELS), any::<u64>())
            .prop_map(|(l, v)| format!("{:<16}{v:>8} kB", format!("{l}:"))),
        2 => ("[A-Za-z_()]{1,20}", any::<u32>()).prop_map(|(l, v)| format!("{l}: {v}")),
        1 => "[^\r\n]{0,40}",
    ]
}

proptest! {
    #[test]
    fn parsers_never_panic_on_strings(s in any::<String>()) {
        parse_everything(&s);
    }

    #[test]
    fn parsers_never_panic_on_bytes(b in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_everything(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn parsers_never_panic_on_format_like_text(
        s in "([0-9a-z_:() \t,\\-\\\\]{0,30}\n){0,8}"
    ) {
        parse_everything(&s);
    }

    #[test]
    fn cpuset_display_parse_round_trip(
        ids in prop::collection::vec(
            prop_oneof![0u32..128, 0u32..MAX_CPUS, any::<u32>()], 0..64)
    ) {
        let set: CpuSet = ids.iter().copied().collect();
        let text = set.to_string();
        let back = CpuSet::parse(&text);
        prop_assert_eq!(back.as_ref(), Some(&set), "text {:?}", text);
        let back_nl = CpuSet::parse(&format!("{text}\n"));
        prop_assert_eq!(back_nl.as_ref(), Some(&set));
        let mut expected: Vec<u32> = ids.into_iter().filter(|&c| c < MAX_CPUS).collect();
        expected.sort_unstable();
        expected.dedup();
        prop_assert_eq!(set.len(), expected.len());
        prop_assert_eq!(set.is_empty(), expected.is_empty());
        prop_assert_eq!(set.iter().collect::<Vec<_>>(), expected.clone());
        for c in expected {
            prop_assert!(set.contains(c));
        }
    }

    #[test]
    fn cpuset_parse_display_is_canonical(
        ranges in prop::collection::vec((0u32..300, 0u32..20), 0..10)
    ) {
        let text = ranges
            .iter()
            .map(|&(a, n)| if n == 0 { a.to_string() } else { format!("{a}-{}", a + n) })
            .collect::<Vec<_>>()
            .join(",");
        let set = CpuSet::parse(&text).unwrap();
        let canon = set.to_string();
        prop_assert_eq!(CpuSet::parse(&canon).unwrap().to_string(), canon);
    }

    #[test]
    fn compute_invariants(host in host_mem(), view in memory_view(), swap in any::<bool>()) {
        let m = compute(&host, &view, swap);
        prop_assert!(m.mem_total <= host.mem_total_kb);
        prop_assert!(m.mem_free <= m.mem_total);
        prop_assert!(m.mem_available <= m.mem_total);
        prop_assert!(m.mem_available >= m.mem_free);
        prop_assert!(m.cached <= m.mem_total);
        prop_assert!(m.swap_free <= m.swap_total);
        prop_assert!(m.swap_total <= host.swap_total_kb);
        prop_assert_eq!(m.swap_used(), m.swap_total - m.swap_free);
        if !swap || view.swap.is_none() {
            prop_assert_eq!((m.swap_total, m.swap_free), (0, 0));
        }
        if view.limit == Limit::Max {
            prop_assert_eq!(m.mem_total, host.mem_total_kb);
        }
        // Rendering those values never panics either.
        let mut out = Vec::new();
        render::swaps(&m, &mut out);
        render::meminfo("MemTotal: 1 kB\nActive: 2 kB\n", &m, &mut out);
    }

    #[test]
    fn swap_v1_never_wraps(
        mem in limit(), memsw in limit(), usage in any::<u64>(), sw_usage in any::<u64>(),
        swappiness in proptest::option::of(0u64..200)
    ) {
        let s = SwapView::from_v1(mem, memsw, usage, sw_usage, swappiness);
        prop_assert!(s.usage <= sw_usage);
        prop_assert_eq!(s.swappiness_zero, swappiness == Some(0));
        if let (Limit::Value(m), Limit::Value(w)) = (mem, memsw) {
            prop_assert_eq!(s.limit, Limit::Value(w.saturating_sub(m)));
        }
        if memsw == Limit::Max {
            prop_assert_eq!(s.limit, Limit::Max);
        }
    }

    #[test]
    fn meminfo_keeps_host_lines(
        lines in prop::collection::vec(meminfo_line(), 0..40),
        trailing_newline in any::<bool>(),
        host in host_mem(),
        view in memory_view(),
    ) {
        let mut text = lines.join("\n");
        if trailing_newline && !text.is_empty() {
            text.push('\n');
        }
        let vals = compute(&host, &view, true);
        let mut out = Vec::new();
        render::meminfo(&text, &vals, &mut out);
        let out = String::from_utf8(out).unwrap();
        prop_assert_eq!(out.lines().count(), text.lines().count());
        prop_assert!(out.is_empty() || out.ends_with('\n'));
        for (host_line, line) in text.lines().zip(out.lines()) {
            let label = host_line.split_once(':').map(|(l, _)| l);
            prop_assert_eq!(line.split_once(':').map(|(l, _)| l), label);
            if label == Some("MemTotal") {
                let n: u64 = line[16..].trim().strip_suffix(" kB").unwrap().trim().parse().unwrap();
                prop_assert_eq!(n, vals.mem_total);
            }
            if label.is_none() || label == Some("DirectMap4k") {
                prop_assert_eq!(line, host_line);
            }
        }
    }

    #[test]
    fn hugetlb_bounds_hold(
        total in bytes(), free in bytes(), rsvd in bytes(), surp in bytes(),
        page_kb in prop_oneof![Just(2048u64), Just(1 << 20), Just(64), 1u64..u64::MAX],
        hugetlb_kb in opt_bytes(),
        limit in limit(), usage in bytes(), rsvd_usage in opt_bytes(),
        lines in prop::collection::vec(meminfo_line(), 0..20),
    ) {
        let host = HostHuge { total, free, rsvd, surp, page_kb, hugetlb_kb };
        let view = HugeView { limit, usage, rsvd_usage };
        let Some(v) = hugetlb::compute(&host, &view) else {
            prop_assert_eq!(limit, Limit::Max);
            return Ok(());
        };
        prop_assert!(v.free <= v.total && v.total <= host.total);
        prop_assert!(v.free <= host.free);
        prop_assert!(v.rsvd <= v.free);
        prop_assert!(v.surp <= v.total);
        prop_assert!(v.hugetlb_kb.is_some() == host.hugetlb_kb.is_some());
        if let (Some(c), Some(h)) = (v.hugetlb_kb, host.hugetlb_kb) {
            prop_assert!(c <= h);
        }
        // Rendered into any host text, the structure stays the host's.
        let text = lines.join("\n");
        let vals = procfile::MemValues { huge: Some(v), ..Default::default() };
        let mut out = Vec::new();
        render::meminfo(&text, &vals, &mut out);
        let out = String::from_utf8(out).unwrap();
        prop_assert_eq!(out.lines().count(), text.lines().count());
        for (host_line, line) in text.lines().zip(out.lines()) {
            prop_assert_eq!(
                line.split_once(':').map(|(l, _)| l),
                host_line.split_once(':').map(|(l, _)| l)
            );
            if host_line.starts_with("HugePages_Total:") {
                prop_assert_eq!(line[16..].trim().parse::<u64>().unwrap(), v.total);
            }
        }
    }
}
