//! Property tests of the CPU, I/O, load and netlink code: every parser is total, the
//! CPU view keeps its invariants, and `/proc/stat` totals never decrease whatever
//! happens between reads (usage resets, clocks going back, cpuset and quota changes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use procfile::loadavg::{FIXED_1, LoadAvg};
use procfile::render::{self, ProcessCounts};
use procfile::{CpuQuota, CpuSet, CpuUsage, CpuView, StatState, diskstats, netlink, value};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-z_:= .\n-]{0,200}",
        proptest::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

fn cpuset() -> impl Strategy<Value = CpuSet> {
    proptest::collection::vec(0u32..16, 0..8).prop_map(|v| {
        let mut s = CpuSet::default();
        for c in v {
            s.insert(c);
        }
        s
    })
}

fn quota() -> impl Strategy<Value = Option<CpuQuota>> {
    proptest::option::of(
        (1u64..2_000_000, 1u64..1_000_000).prop_map(|(q, p)| CpuQuota::new(q, p).unwrap()),
    )
}

proptest! {
    #[test]
    fn parsers_are_total(s in text(), bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = CpuQuota::parse_v2(&s);
        let _ = CpuUsage::parse_usage_all(&s);
        let _ = CpuUsage::parse_usage_percpu(&s);
        let _ = CpuUsage::parse_cpu_stat(&s);
        let _ = value::parse_seconds_ns(&s);
        let _ = procfile::pid::status_state(&s);
        // vmstat keeps every line, scaled or not.
        let mut vm = Vec::new();
        render::vmstat(&s, (1, 3), &mut vm);
        prop_assert_eq!(String::from_utf8_lossy(&vm).lines().count(), s.lines().count());
        let io = diskstats::parse_io_stat(&s);
        let io2 = diskstats::parse_blkio(&s, &s);
        let mut out = Vec::new();
        diskstats::render(&s, &io, &mut out);
        diskstats::render(&s, &io2, &mut out);
        if let Some(r) = netlink::parse_reply(&bytes) {
            let _ = (netlink::family_id(&r), netlink::cgroupstats(&r));
        }
        let view = CpuView::new(&CpuSet::parse("0-3").unwrap(), None, None, false);
        render::cpuinfo(&s, &view, &mut out);
    }

    #[test]
    fn the_view_is_consistent(online in cpuset(), set in proptest::option::of(cpuset()), q in quota(), cfs in any::<bool>()) {
        let v = CpuView::new(&online, set.as_ref(), q, cfs);
        prop_assert!(!v.is_empty());
        prop_assert_eq!(v.shown_set().len(), v.len());
        for (slot, &h) in v.host_ids().iter().enumerate() {
            prop_assert!(online.contains(h) || online.is_empty());
            prop_assert_eq!(v.host_id_of(v.shown_id(slot)), Some(h));
        }
        // The kernel's own invariants of /sys/devices/system/cpu, which htop and lscpu
        // rely on: offline ⊆ possible, online ∪ offline = present ⊆ possible, online
        // and offline disjoint; and what is online is what the other files show.
        let l = v.sysfs_lists();
        for c in l.offline.iter() {
            prop_assert!(l.possible.contains(c) && !l.online.contains(c));
        }
        let mut union = l.online.clone();
        for c in l.offline.iter() {
            union.insert(c);
        }
        prop_assert_eq!(&union, &l.present);
        for c in l.present.iter() {
            prop_assert!(l.possible.contains(c));
        }
        prop_assert_eq!(&l.online, &v.shown_set());
        prop_assert!(v.capacity_milli() <= v.len() as u64 * 1000);
        if let (true, Some(q)) = (cfs, q) {
            prop_assert!(v.len() as u64 <= q.cpus_ceil().max(1));
            prop_assert!(v.renumbered());
        }
    }

    /// What `top` shows: its header's busy share is busy / (busy + idle) of the `cpu`
    /// line, its process list's %CPU is busy / elapsed (of one CPU). Whatever the
    /// container ran, within what its cpuset and quota allow, the two agree: by default
    /// the header is the busy time over all shown CPUs' time (a loop held to half a CPU
    /// on two CPUs: 25 %), in the quota view over the quota's (the same loop: 100 %).
    #[test]
    fn top_header_agrees_with_the_process_list(
        set in cpuset(),
        q in quota(),
        cfs in any::<bool>(),
        per_cpu in any::<bool>(),
        shares in proptest::collection::vec(0u64..=1000, 16),
        elapsed in 1_000_000u64..100_000_000_000,
    ) {
        let online = CpuSet::parse("0-15").unwrap();
        let v = CpuView::new(&online, Some(&set), q, cfs);
        let n = v.len() as u64;
        let allowed_milli = q.map_or(n * 1000, |q| q.millicpus().min(n * 1000)).max(1);
        // Each shown CPU busy for a share of the interval, scaled down to fit the quota.
        let want: Vec<u64> = v.host_ids().iter().zip(&shares).map(|(_, &m)| m).collect();
        let asked: u64 = want.iter().sum();
        let scale = |m: u64| if asked > allowed_milli { m * allowed_milli / asked } else { m };
        let busy_per: Vec<(u32, u64)> = v
            .host_ids()
            .iter()
            .zip(&want)
            .map(|(&c, &m)| (c, (u128::from(elapsed) * u128::from(scale(m)) / 1000) as u64))
            .collect();
        let busy: u64 = busy_per.iter().map(|(_, b)| b).sum();
        let zero = CpuUsage {
            user_ns: 0,
            system_ns: 0,
            per_cpu: per_cpu.then(|| busy_per.iter().map(|&(c, _)| (c, 0, 0)).collect()),
        };
        let now = CpuUsage {
            user_ns: busy,
            system_ns: 0,
            per_cpu: per_cpu.then(|| busy_per.iter().map(|&(c, b)| (c, b, 0)).collect()),
        };
        let wall = 1_000_000_000_000u64;
        let mut st = StatState::start(&v, &zero, 0, wall);
        st.advance(&v, &now, wall + elapsed);
        let t = st.total();
        prop_assert_eq!(t.user, busy);
        let header = t.user as f64 / (t.user + t.idle) as f64;
        let process = busy as f64 / elapsed as f64; // in CPUs, as top's Irix mode
        let cpus = if v.renumbered() { v.capacity_milli() as f64 / 1000.0 } else { n as f64 };
        prop_assert!(
            (header - process / cpus).abs() < 1e-6,
            "header {header} vs process {process} CPUs over {cpus} (view {v:?})"
        );
        if !cfs {
            prop_assert_eq!(v.capacity_milli(), n * 1000);
        }
    }

    /// Whatever happens between two reads, the `cpu` line never decreases, and it is
    /// the sum of the per-CPU lines.
    #[test]
    fn stat_totals_never_decrease(
        steps in proptest::collection::vec(
            (0u64..20_000_000_000, -5_000_000_000i64..20_000_000_000, -1_000_000_000i64..5_000_000_000, cpuset(), quota(), any::<bool>()),
            1..25),
    ) {
        let online = CpuSet::parse("0-15").unwrap();
        let (mut user, mut system, mut wall) = (0u64, 0u64, 1_000_000_000_000u64);
        let v0 = CpuView::new(&online, None, None, false);
        let mut st = StatState::start(&v0, &CpuUsage::default(), 0, wall);
        let mut last = st.total();
        for (dwall, du, ds, set, q, cfs) in steps {
            wall = wall.wrapping_add(dwall);
            user = user.saturating_add_signed(du);
            system = system.saturating_add_signed(ds);
            let v = CpuView::new(&online, Some(&set), q, cfs);
            let usage = CpuUsage { user_ns: user, system_ns: system, per_cpu: None };
            st.advance(&v, &usage, wall);
            let t = st.total();
            prop_assert!(t.user >= last.user && t.system >= last.system && t.idle >= last.idle,
                "{last:?} -> {t:?}");
            prop_assert_eq!(st.slots().len(), v.len());
            let mut out = Vec::new();
            render::stat("intr 1\n", &st, 100, &ProcessCounts::default(), &mut out);
            let text = String::from_utf8(out).unwrap();
            let rows: Vec<Vec<u64>> = text
                .lines()
                .filter(|l| l.starts_with("cpu"))
                .map(|l| l.split_whitespace().skip(1).map(|x| x.parse().unwrap()).collect())
                .collect();
            for col in 0..10 {
                let sum: u64 = rows[1..].iter().map(|r| r[col]).sum();
                prop_assert_eq!(rows[0][col], sum);
            }
            last = t;
        }
    }

    #[test]
    fn load_stays_bounded(active in proptest::collection::vec(0u64..64, 1..400)) {
        let mut l = LoadAvg::default();
        let max = *active.iter().max().unwrap();
        for a in active {
            l.sample(a);
            for v in l.0 {
                prop_assert!(v <= max * FIXED_1 + FIXED_1);
            }
        }
    }
}
