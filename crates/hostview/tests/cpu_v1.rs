//! The CPU view against the `cpu-v1` fixture tree: cpuinfo, stat, uptime and the sysfs
//! CPU lists, rendered for a reader inside a container, agree with its cpuset and quota,
//! and `/proc/stat` only ever grows — across clock, usage, cpuset and quota changes.
//!
//! `cpu-v1` (its clock is in `proc/uptime`; start times are in ticks of 100 Hz): 12 CPUs,
//! `cpu,cpuacct` co-mounted; `/lxc/c1` has cpuset `0-3,8,10-11` and no quota of its own
//! under `/lxc`'s 1.5 CPUs; `/lxc/c2` has cpuset `10-11` and 0.5 CPU.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cpu_kit;

use std::time::{Duration, Instant};

use hostview::VirtualFile;

use cpu_kit::*;

const V1_C1: u32 = 3001; // a worker; init is 3000
const V1_C2: u32 = 3100;
const V1_HOST: u32 = 100;
const V1_C1_CPUSET: &str = "sys/fs/cgroup/cpuset/lxc/c1";
const V1_C1_USAGE: &str = "sys/fs/cgroup/cpu,cpuacct/lxc/c1/cpuacct.usage_all";

#[test]
fn v1_default_view_keeps_host_ids_everywhere() {
    let root = fixture("cpu-v1");
    let host = open(&root, false);
    assert_one_view(&host, V1_C1, &[0, 1, 2, 3, 8, 10, 11]);
    assert_eq!(
        render(&host, VirtualFile::CpuOnline, V1_C1),
        "0-3,8,10-11\n"
    );
    // Blocks are the host's own, only filtered.
    let cpuinfo = render(&host, VirtualFile::Cpuinfo, V1_C1);
    assert_eq!(field(&cpuinfo, 8, "apicid"), "16");
    assert_eq!(field(&cpuinfo, 11, "core id"), "11");
    assert_eq!(field(&cpuinfo, 10, "siblings"), "12");
    let host_cpuinfo = host_file(&root, VirtualFile::Cpuinfo);
    for block in cpuinfo.split_terminator("\n\n") {
        assert!(
            host_cpuinfo.contains(&format!("{block}\n\n")),
            "block not from the host:\n{block}"
        );
    }
    // A quota does not limit the count without --enable-cfs.
    assert_one_view(&host, V1_C2, &[10, 11]);
}

#[test]
fn v1_first_stat_is_the_containers_usage_per_cpu() {
    let root = fixture("cpu-v1");
    let host = open(&root, false);
    let st = stat(&host, V1_C1);
    // Init started at 4000 s, now is 5000 s: 1000 s of life on each CPU. /lxc's quota
    // of 1.5 CPUs is not the capacity without --enable-cfs: the 7 CPUs shown are.
    let cap = 1000 * S;
    // usage_all: own time, plus cpu5's (not visible: 7 s user, 0.7 s system) spread
    // evenly over the 7 visible CPUs.
    let (su, ss) = (S, S / 10);
    let own = [
        (0, 100 * S, 20 * S),
        (1, 50 * S, 10 * S),
        (2, 30 * S, 5 * S),
        (3, 10 * S, S),
        (8, 60 * S, 6 * S),
        (10, 20 * S, 2 * S),
        (11, 5 * S, S / 2),
    ];
    for (id, u, s) in own {
        assert_eq!(st.line(id), line(id, u + su, s + ss, cap), "cpu{id}");
    }
    assert_eq!(st.ids(), [0, 1, 2, 3, 8, 10, 11]);
    // btime passes through; the host's event counts are scaled to the container's
    // share of the host's uptime (init started at 4000 s of 5000: a fifth); process
    // lines are the container's: 3001 and 3003 (in a child cgroup) run, 3002 is in D,
    // the highest pid in its namespace is 42.
    let host_stat = host_file(&root, VirtualFile::Stat);
    let btime = host_stat.lines().find(|l| l.starts_with("btime ")).unwrap();
    assert!(st.text.lines().any(|l| l == btime), "btime passes through");
    for key in ["intr ", "ctxt ", "softirq "] {
        let host_line = host_stat.lines().find(|l| l.starts_with(key)).unwrap();
        let want: Vec<String> = host_line[key.len()..]
            .split_whitespace()
            .map(|v| (v.parse::<u64>().unwrap() / 5).to_string())
            .collect();
        let want = format!("{key}{}", want.join(" "));
        assert!(
            st.text.lines().any(|l| l == want),
            "{key}: want {want:?} in\n{}",
            st.text
        );
    }
    assert_eq!(st.value("procs_running"), 2);
    assert_eq!(st.value("procs_blocked"), 1);
    assert_eq!(st.value("processes"), 42);
    // Line order: cpu, cpuN…, then the host's other lines in their order.
    let keys: Vec<&str> = st
        .text
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .filter(|k| !k.starts_with("cpu"))
        .collect();
    assert_eq!(
        keys,
        [
            "intr",
            "ctxt",
            "btime",
            "processes",
            "procs_running",
            "procs_blocked",
            "softirq"
        ]
    );
    assert!(st.text.starts_with("cpu  "));
}

#[test]
fn v1_rereading_without_time_passing_is_identical() {
    let host = open(&fixture("cpu-v1"), false);
    let a = render(&host, VirtualFile::Stat, V1_C1);
    let b = render(&host, VirtualFile::Stat, V1_C1);
    assert_eq!(a, b);
}

#[test]
fn v1_stat_grows_with_clock_and_usage() {
    let tmp = copy_tree(&fixture("cpu-v1"));
    let root = tmp.path();
    let host = open(root, false);
    let before = stat(&host, V1_C1);

    set_clock(root, "5010.00");
    bump_usage_all(&root.join(V1_C1_USAGE), 0, 5 * S, 0);
    bump_usage_all(&root.join(V1_C1_USAGE), 8, 0, S);
    let after = stat(&host, V1_C1);
    assert_monotonic(&before, &after);
    let d = |id: u32, col: usize| after.cpu(id)[col] - before.cpu(id)[col];
    assert_eq!(d(0, 0), 500, "cpu0 user +5 s");
    assert_eq!(d(0, 2), 0);
    // 5 s of work in 10 s: the other 5 s of cpu0 are idle, whatever the quota.
    assert_eq!(d(0, 3), 500);
    assert_eq!(d(8, 2), 100, "cpu8 system +1 s");
    assert_eq!(d(8, 0), 0);
    // 7 CPUs for 10 s, 6 s used: 64 s of idle, each CPU's unused time.
    let idle: u64 = [0, 1, 2, 3, 8, 10, 11].iter().map(|&id| d(id, 3)).sum();
    assert_eq!(idle, 6400, "total idle");
    for id in [1, 2, 3, 10, 11] {
        assert_eq!(d(id, 3), 1000, "cpu{id} idle");
        assert_eq!(d(id, 0) + d(id, 2), 0);
    }
    assert_eq!(d(8, 3), 900, "cpu8 idle");
    // Wall time never runs backwards for the counters even if the clock file does.
    set_clock(root, "5005.00");
    let again = stat(&host, V1_C1);
    assert_monotonic(&after, &again);
}

#[test]
fn v1_usage_reset_does_not_make_counters_go_back() {
    let tmp = copy_tree(&fixture("cpu-v1"));
    let root = tmp.path();
    let host = open(root, false);
    let before = stat(&host, V1_C1);
    // The cgroup's counters restart (recreated cgroup, `echo 0 > cpuacct.usage`).
    let zero: String = std::iter::once("cpu user system\n".to_string())
        .chain((0..12).map(|c| format!("{c} 0 0\n")))
        .collect();
    write(root, V1_C1_USAGE, &zero);
    set_clock(root, "5001.00");
    let after = stat(&host, V1_C1);
    assert_monotonic(&before, &after);
    assert_eq!(after.total[0], before.total[0]);
}

#[test]
fn v1_cpuset_change_keeps_counters_monotonic() {
    let tmp = copy_tree(&fixture("cpu-v1"));
    let root = tmp.path();
    let host = open(root, false);
    let wide = stat(&host, V1_C1);

    for f in ["cpuset.cpus", "cpuset.effective_cpus"] {
        write(root, &format!("{V1_C1_CPUSET}/{f}"), "8\n");
    }
    set_clock(root, "5001.00");
    bump_usage_all(&root.join(V1_C1_USAGE), 8, S / 2, 0);
    let narrow = stat(&host, V1_C1);
    assert_eq!(narrow.ids(), [8]);
    assert_monotonic(&wide, &narrow);
    assert!(narrow.cpu(8)[0] >= wide.cpu(8)[0] + 50);
    assert_one_view(&host, V1_C1, &[8]);

    for f in ["cpuset.cpus", "cpuset.effective_cpus"] {
        write(root, &format!("{V1_C1_CPUSET}/{f}"), "0-3,8,10-11\n");
    }
    set_clock(root, "5002.00");
    let wide_again = stat(&host, V1_C1);
    assert_eq!(wide_again.ids(), [0, 1, 2, 3, 8, 10, 11]);
    assert_monotonic(&narrow, &wide_again);
    // The whole sequence never lost a tick of the `cpu` line.
    for (a, b) in wide.total.iter().zip(&wide_again.total) {
        assert!(b >= a);
    }
}

#[test]
fn v1_quota_view_shows_the_first_ceil_quota_cpus_renumbered() {
    let root = fixture("cpu-v1");
    let host = open(&root, true);
    // c1: no quota of its own, /lxc's 1.5 CPUs → 2 CPUs, host 0 and 1.
    assert_one_view(&host, V1_C1, &[0, 1]);
    // c2: its own 0.5 CPU (tighter than /lxc) → 1 CPU: host 10 shown as 0.
    assert_one_view(&host, V1_C2, &[0]);
    let cpuinfo = render(&host, VirtualFile::Cpuinfo, V1_C2);
    assert_eq!(field(&cpuinfo, 0, "apicid"), "20", "host cpu10's block");
    assert_eq!(field(&cpuinfo, 0, "core id"), "10");
    // c2 used 6 s user and 1 s system in its 500 s, all of it on 1 CPU of half capacity.
    let st = stat(&host, V1_C2);
    assert_eq!(st.line(0), line(0, 6 * S, S, 500 * S / 2));
}

#[test]
fn v1_quota_change_keeps_counters_monotonic() {
    let tmp = copy_tree(&fixture("cpu-v1"));
    let root = tmp.path();
    let host = open(root, true);
    let two = stat(&host, V1_C1);
    assert_eq!(two.ids(), [0, 1]);
    let quota = "sys/fs/cgroup/cpu,cpuacct/lxc/cpu.cfs_quota_us";

    write(root, quota, "350000\n");
    set_clock(root, "5001.00");
    let four = stat(&host, V1_C1);
    assert_eq!(four.ids(), [0, 1, 2, 3]);
    assert_monotonic(&two, &four);

    write(root, quota, "50000\n");
    set_clock(root, "5002.00");
    let one = stat(&host, V1_C1);
    assert_eq!(one.ids(), [0]);
    assert_monotonic(&four, &one);
    assert_eq!(
        render(&host, VirtualFile::Cpuinfo, V1_C1)
            .matches("processor")
            .count(),
        1
    );

    write(root, quota, "-1\n");
    set_clock(root, "5003.00");
    let none = stat(&host, V1_C1);
    assert_eq!(none.ids(), [0, 1, 2, 3, 8, 10, 11], "no quota: host ids");
    assert_monotonic(&one, &none);
}

#[test]
fn v1_uptime_is_the_age_of_init_and_idle_matches_stat() {
    let host = open(&fixture("cpu-v1"), false);
    // proc/uptime 5000.00; init (3000) started at 400000 ticks = 4000 s.
    let up = render(&host, VirtualFile::Uptime, V1_C1);
    let (age, idle) = up.trim_end().split_once(' ').unwrap();
    assert_eq!(age, "1000.00");
    assert!(up.ends_with('\n') && !up.ends_with("\n\n"));
    let st = stat(&host, V1_C1);
    let idle_ticks: u64 = idle.replace('.', "").parse().unwrap();
    // Each cpuN line truncates to whole ticks; the uptime sum truncates once.
    let diff = idle_ticks.abs_diff(st.total[3]);
    assert!(diff <= 7, "uptime idle {idle} vs stat idle {}", st.total[3]);
    // c2's init started at 4500 s.
    let up = render(&host, VirtualFile::Uptime, V1_C2);
    assert!(up.starts_with("500.00 "), "{up}");
}

#[test]
fn v1_uptime_never_negative_when_the_clock_is_before_init_start() {
    let tmp = copy_tree(&fixture("cpu-v1"));
    let root = tmp.path();
    set_clock(root, "100.00");
    let host = open(root, false);
    let up = render(&host, VirtualFile::Uptime, V1_C1);
    assert_eq!(up, "0.00 0.00\n");
    let st = stat(&host, V1_C1);
    assert_eq!(st.ids(), [0, 1, 2, 3, 8, 10, 11]);
}

#[test]
fn v1_processes_never_decrease_when_the_highest_pid_exits() {
    let tmp = copy_tree(&fixture("cpu-v1"));
    let root = tmp.path();
    let host = open(root, false);
    let before = stat(&host, V1_C1);
    assert_eq!(before.value("processes"), 42);
    // 3003 (pid 42 inside, running) exits.
    write(root, "sys/fs/cgroup/pids/lxc/c1/sub/tasks", "");
    // Task counts are refreshed at most once a second: poll until they are.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let st = stat(&host, V1_C1);
        if st.value("procs_running") == 1 {
            break st;
        }
        assert!(Instant::now() < deadline, "task counts never refreshed");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(after.value("procs_blocked"), 1);
    assert_eq!(after.value("processes"), 42, "processes is monotonic");
}

#[test]
fn v1_host_reader_gets_the_hosts_files() {
    let root = fixture("cpu-v1");
    let host = open(&root, true);
    for f in [
        VirtualFile::Cpuinfo,
        VirtualFile::Stat,
        VirtualFile::Uptime,
        VirtualFile::CpuOnline,
        VirtualFile::CpuPossible,
        VirtualFile::CpuPresent,
        VirtualFile::CpuOffline,
    ] {
        assert_eq!(render(&host, f, V1_HOST), host_file(&root, f), "{f:?}");
    }
    assert!(host.cpu_view(V1_HOST).unwrap().is_none());
}

/// c2 (cpuset 10-11, 0.5 CPU) spends its whole quota, 5 s in 10 s, on cpu10: `(before,
/// after)` of its `/proc/stat` under a daemon with or without `--enable-cfs`.
fn saturated_half_cpu(cfs: bool) -> (Stat, Stat) {
    let tmp = copy_tree(&fixture("cpu-v1"));
    let root = tmp.path();
    let host = open(root, cfs);
    let before = stat(&host, V1_C2);
    // c2 (cpuset 10-11, 0.5 CPU) spends its whole quota, 5 s in 10 s, on cpu10.
    set_clock(root, "5010.00");
    bump_usage_all(
        &root.join("sys/fs/cgroup/cpu,cpuacct/lxc/c2/cpuacct.usage_all"),
        10,
        5 * S,
        0,
    );
    let after = stat(&host, V1_C2);
    assert_monotonic(&before, &after);
    (before, after)
}

#[test]
fn v1_saturated_quota_is_half_of_one_of_its_two_cpus() {
    let (before, after) = saturated_half_cpu(false);
    assert_eq!(after.ids(), [10, 11]);
    assert_eq!(after.total[0] - before.total[0], 500);
    // top's process list shows the loop at 50 % of a CPU; its header, over the two CPUs
    // it shows, 25 % us: 15 s of the 20 s idle. Per CPU: cpu10 half idle, cpu11 all.
    assert_eq!(after.total[3] - before.total[3], 1500, "idle grew");
    assert_eq!(after.cpu(10)[3] - before.cpu(10)[3], 500);
    assert_eq!(after.cpu(11)[3] - before.cpu(11)[3], 1000);
}

#[test]
fn v1_saturated_quota_in_the_quota_view_leaves_no_idle() {
    let (before, after) = saturated_half_cpu(true);
    // One CPU standing for the 0.5 CPU of quota, all of it used: 100 % busy in top.
    assert_eq!(after.ids(), [0]);
    assert_eq!(after.total[0] - before.total[0], 500);
    assert_eq!(after.total[3] - before.total[3], 0, "idle grew");
}

#[test]
fn v1_containers_do_not_share_history() {
    let host = open(&fixture("cpu-v1"), false);
    let c1 = stat(&host, V1_C1);
    let c2 = stat(&host, V1_C2);
    assert_eq!(c2.ids(), [10, 11]);
    // c2: 500 s old on 2 CPUs (its 0.5 CPU of quota shows as idle); cpu10 4 s + 1 s,
    // cpu11 2 s.
    let cap = 500 * S;
    assert_eq!(c2.line(10), line(10, 4 * S, S, cap));
    assert_eq!(c2.line(11), line(11, 2 * S, 0, cap));
    assert_eq!(stat(&host, V1_C1).text, c1.text);
}

#[test]
fn v1_vmstat_counts_events_since_the_container_started() {
    let root = fixture("cpu-v1");
    let host = open(&root, false);
    // Init started at 4000 s of the host's 5000: a fifth of every event counter, the
    // rate vmstat's first line divides by /proc/stat's CPU time stays the host's.
    // Current amounts (free pages, a threshold, working-set nodes) stay the host's.
    assert_eq!(
        render(&host, VirtualFile::Vmstat, V1_C1),
        "nr_free_pages 2329417\nnr_dirty_threshold 500000\nworkingset_nodes 74419\n\
         nr_dirtied 7748593\nnuma_hit 1\npgpgin 1800000\npgpgout 900001\npswpin 200\n\
         pswpout 500\npgfault 15555555\n"
    );
    // The host itself: its own file.
    assert_eq!(
        render(&host, VirtualFile::Vmstat, V1_HOST),
        host_file(&root, VirtualFile::Vmstat)
    );
}
