//! End to end: /proc/stat under real CPU load in containers — a busy loop that saturates
//! its container's CFS quota must look busy in `top`, /proc/stat's busy time following
//! the cgroup's usage and its idle time only what the quota left unused; and a cpuset
//! changed under a running container keeps the counters monotonic. Real cgroups (v1 or v2),
//! a new pid + mount namespace, every file bind-mounted as a runtime does, plus the
//! daemon's `sys/devices/system/cpu` over the container's `/sys/devices/system/cpu`.
//!
//! Needs root, /dev/fuse, writable cgroups (v1, hybrid or v2), a host with at least 2 CPUs and
//! `nproc`, `getconf`, `python3`, `lscpu`, `top`, `uptime`, `taskset`, `ls`: fails,
//! saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod cpu_kit;

use common::*;
use cpu_kit::*;

/// One sample printed by [`SAMPLE`].
struct Sample {
    /// The container's /proc/uptime, s.
    up: f64,
    /// The scheduler's exact run time, ns (`cpuacct.usage`, `cpu.stat` usage_usec).
    usage: u64,
    /// User + system time, what /proc/stat's busy is made of, in ticks: summed over
    /// `cpuacct.usage_all` (tick-sampled) on v1, `cpu.stat` user_usec + system_usec on v2.
    usage_all: u64,
    stat: Stat,
}

/// Prints the container's uptime, its cgroup's usage (v1: cpuacct.usage and usage_all;
/// v2: cpu.stat, and /dev/null), and /proc/stat.
const SAMPLE: &str = "cat /proc/uptime \"$USAGE\" \"$USAGE_ALL\" /proc/stat";

/// The files [`SAMPLE`] reads for `cg`'s usage, as `USAGE` and `USAGE_ALL`.
fn usage_files(cg: &Cgroup) -> [(&'static str, String); 2] {
    let (usage, all) = match cg.layout {
        Layout::V1 => (
            cg.dir("cpuacct").join("cpuacct.usage"),
            cg.dir("cpuacct").join("cpuacct.usage_all"),
        ),
        Layout::V2 => (cg.dir("cpu").join("cpu.stat"), "/dev/null".into()),
    };
    [
        ("USAGE", usage.display().to_string()),
        ("USAGE_ALL", all.display().to_string()),
    ]
}

fn sample(t: &str) -> Sample {
    let lines: Vec<&str> = t.lines().collect();
    let up = lines[0].split_whitespace().next().unwrap().parse().unwrap();
    let stat_at = lines
        .iter()
        // /proc/stat's "cpu  <user> ..." (usage_all's header is "cpu user system")
        .position(|l| {
            l.starts_with("cpu ")
                && l.split_whitespace()
                    .nth(1)
                    .is_some_and(|v| v.parse::<u64>().is_ok())
        })
        .unwrap_or_else(|| panic!("no /proc/stat in the sample:\n{t}"));
    let acct = &lines[1..stat_at];
    let (usage, usage_all) = if acct[0].starts_with("usage_usec ") {
        let get = |k: &str| -> u64 {
            acct.iter()
                .find_map(|l| l.strip_prefix(k)?.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {k} in cpu.stat:\n{t}"))
        };
        let busy_us = get("user_usec ") + get("system_usec ");
        (get("usage_usec ") * 1000, busy_us / 10_000)
    } else {
        assert_eq!(acct[1], "cpu user system", "usage_all header:\n{t}");
        let ns: u64 = acct[2..]
            .iter()
            .map(|l| {
                let r: Vec<u64> = l.split_whitespace().map(|v| v.parse().unwrap()).collect();
                r[1] + r[2]
            })
            .sum();
        (acct[0].trim().parse().unwrap(), ns / 10_000_000)
    };
    Sample {
        up,
        usage,
        usage_all,
        stat: Stat::parse(&(lines[stat_at..].join("\n") + "\n")),
    }
}

/// us + sy of each `%Cpu(s):` line of `top -b`.
fn top_busy(top: &str) -> Vec<f64> {
    top.lines()
        .filter_map(|l| l.strip_prefix("%Cpu(s):"))
        .map(|l| {
            let field = |name: &str| -> f64 {
                l.split(',')
                    .find_map(|f| f.trim().strip_suffix(name)?.trim().parse().ok())
                    .unwrap_or_else(|| panic!("no {name} in top's {l:?}"))
            };
            field("us") + field("sy")
        })
        .collect()
}

/// A busy loop, pinned to CPU `pin`, in a container of 0.5 CPU (5 ms every 10 ms: the
/// short period keeps the usage in any 1 s window within 1 % of the quota) with cpuset
/// `cpuset`, under a daemon started with `args`.
///
/// What must hold: /proc/stat's busy grows with the cgroup's usage and its idle only by
/// the capacity the loop left unused (≈ 0 when saturated); when the loop gets its whole
/// quota, `top`'s 1 s frames show ≥ 90 % us+sy.
///
/// This machine is shared: other work can keep the loop from getting its quota (the
/// group gets the highest cpu.shares against that), and then the container is rightly
/// shown less busy. Up to 3 containers are tried for one in which the loop saturated the
/// quota; the /proc/stat checks hold in every one; if none saturated, the test fails
/// saying so.
fn busy_half_cpu(args: &[&str], cpuset: &str, pin: &str) {
    let d = daemon(args);
    let mut ratios = Vec::new();
    for _ in 0..3 {
        let cg = Cgroup::new(
            "busy",
            &[
                Limit::cpus(cpuset),
                Limit::Quota {
                    quota_us: 5000,
                    period_us: 10_000,
                },
                // Ahead of everything else on this shared machine, up to its quota.
                Limit::Shares(262_144),
            ],
        );
        let [(k1, usage), (k2, usage_all)] = usage_files(&cg);
        let out = run_cpu(
            &cg,
            &d,
            &format!(
                "taskset -c \"$PIN\" sh -c 'while :; do :; done' & loop=$!\n\
                 {SAMPLE}; echo ---\n\
                 top -bn4 -d1; echo ---\n\
                 {SAMPLE}; echo ---\n\
                 sleep 2\n\
                 {SAMPLE}\n\
                 kill $loop"
            ),
            &[("PIN", pin), (k1, &usage), (k2, &usage_all)],
        );
        let s = sections(out.ok());
        assert_eq!(s.len(), 4, "{}", out.stdout);

        // top: frame 1 is since start; frames 2-4 are 1 s intervals inside the window
        // the usage is measured around.
        let frames = top_busy(&s[1]);
        assert_eq!(frames.len(), 4, "top:\n{}", s[1]);
        let (w0, w1) = (sample(&s[0]), sample(&s[2]));
        let ratio = (w1.usage - w0.usage) as f64 / 1e9 / (0.5 * (w1.up - w0.up));

        // /proc/stat over 2 s. Its user/system come from usage_all (v1, sampled at
        // ticks) or cpu.stat's user + system (v2), so they are compared with that, and
        // idle with what the capacity of 0.5 CPU leaves of it.
        let (p0, p1) = (sample(&s[2]), sample(&s[3]));
        let (st0, st1) = (p0.stat, p1.stat);
        assert_monotonic(&st0, &st1);
        let wall = ((p1.up - p0.up) * 100.0).round() as i64;
        let used = (p1.usage_all - p0.usage_all) as i64;
        let busy = (st1.busy() - st0.busy()) as i64;
        let idle = (st1.idle() - st0.idle()) as i64;
        // Either reading may be a rendering shared within the daemon's 100 ms render
        // cache (10 ticks), so the deltas may differ by that much more.
        assert!(
            (busy - used).abs() <= 5 + 10,
            "busy grew {busy} ticks; usage_all grew {used}\n{}\n{}",
            st0.text,
            st1.text
        );
        let unused = (wall / 2 - used).max(0);
        assert!(
            (idle - unused).abs() <= 10 + 10,
            "idle grew {idle} ticks; the 0.5 CPU left {unused} of {wall} ticks unused \
             (busy {busy})\n{}\n{}",
            st0.text,
            st1.text
        );

        ratios.push(ratio);
        if ratio >= 0.9 {
            assert!(
                frames[1..].iter().any(|&f| f >= 90.0),
                "a container using {:.0} % of its quota must look busy in top: us+sy per \
                 frame {frames:?}\n{}",
                100.0 * ratio,
                s[1]
            );
            return;
        }
    }
    panic!(
        "the loop never got its 0.5 CPU (share of the quota used per try: {ratios:?}): \
         this machine is too loaded to check what top shows for a saturated quota"
    );
}

#[test]
fn busy_loop_in_a_half_cpu_container_on_one_cpu_looks_busy() {
    busy_half_cpu(&[], "1", "1");
}

#[test]
fn busy_loop_in_a_half_cpu_container_on_two_cpus_looks_busy() {
    busy_half_cpu(&[], "0-1", "0");
}

#[test]
fn busy_loop_in_a_half_cpu_container_quota_view_looks_busy() {
    busy_half_cpu(&["--enable-cfs"], "0-1", "0");
}

#[test]
fn cpuset_change_while_running_keeps_stat_monotonic() {
    let d = daemon(&[]);
    let cg = Cgroup::new("cpuset-change", &[Limit::cpus("0-1")]);
    let c = Running::start(&cg, &d.mnt);
    c.exec(&format!(
        "mount --bind '{}' /sys/devices/system/cpu",
        d.path("sys/devices/system/cpu").display()
    ))
    .ok();
    // Something to account: a loop in the container's cgroup (nsenter enters the
    // namespaces, not the cgroup) for the whole test.
    let procs: Vec<String> = cg
        .procs_files()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    c.exec(&format!(
        "sh -c 'for f in {}; do echo $$ > $f || exit 1; done; exec sh -c \"while :; do :; done\"' \
         >/dev/null 2>&1 &",
        procs.join(" ")
    ))
    .ok();
    let read = || Stat::parse(c.exec("cat /proc/stat").ok());
    let mut prev = read();
    assert_eq!(prev.ids(), [0, 1]);
    let next = read();
    assert_monotonic(&prev, &next);
    prev = next;

    cg.set(&Limit::cpus("1"));
    let last = poll(DEADLINE, "/proc/stat to show only cpu1", || {
        let now = read();
        assert_monotonic(&prev, &now);
        prev = now.clone();
        (now.ids() == [1]).then_some(now)
    });
    // And again later: still growing, still only cpu1.
    let after = poll(DEADLINE, "the counters to grow", || {
        let now = read();
        (now.busy() + now.idle() > last.busy() + last.idle()).then_some(now)
    });
    assert_monotonic(&last, &after);
    assert_eq!(after.ids(), [1]);
    let s = sections(
        c.exec(
            "cat /sys/devices/system/cpu/online; echo ---; ls /sys/devices/system/cpu; \
             echo ---; grep -c ^processor /proc/cpuinfo; echo ---; getconf _NPROCESSORS_ONLN",
        )
        .ok(),
    );
    assert_eq!(s[0], "1\n");
    let ls: Vec<String> = s[1].lines().map(str::to_string).collect();
    assert_eq!(cpu_dirs(&ls), ["cpu1"]);
    assert_eq!(s[2], "1\n");
    assert_eq!(s[3], "1\n");
}
