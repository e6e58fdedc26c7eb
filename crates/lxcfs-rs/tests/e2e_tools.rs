//! End to end: what real tools print inside a container, where they combine our files
//! with per-process files we do not serve.
//!
//! Needs root, /dev/fuse, writable cgroups (v1, hybrid or v2) and procps: fails, saying
//! why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// `[[DD-]HH:]MM:SS` as ps prints ELAPSED, in seconds.
fn etime_secs(s: &str) -> Option<u64> {
    let (days, rest) = match s.trim().split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, s.trim()),
    };
    let parts: Vec<u64> = rest
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let secs = match parts.as_slice() {
        [m, s] => m * 60 + s,
        [h, m, s] => h * 3600 + m * 60 + s,
        _ => return None,
    };
    Some(days * 86_400 + secs)
}

/// ps computes a process's age as uptime minus its start time, which /proc/<pid>/stat
/// counts from the host's boot. With --host-uptime, the age of a process started 2 s
/// ago is 2 s, and uptime is the host's.
#[test]
fn ps_elapsed_time_is_right_with_host_uptime() {
    require_tools(&["ps"], "procps").unwrap();
    // --enable-cfs changes the CPU view only: ps's arithmetic is the same.
    for flags in [&["--host-uptime"][..], &["--host-uptime", "--enable-cfs"]] {
        ps_with(flags);
    }
}

fn ps_with(flags: &[&str]) {
    let d = Daemon::start(flags);
    let cg = Cgroup::with_memory_limit("ps-etime", 128 * MIB);
    let out = run(
        &cg,
        &d.mnt,
        "sleep 300 & p=$!\nsleep 2\nps -o etime= -p $p; echo ---; cat /proc/uptime; echo ---\n\
         pgrep --older 1 -x sleep\nkill $p",
    );
    let s = sections(out.ok());
    assert!(
        s[2].lines().count() == 1,
        "pgrep --older 1 finds the 2 s old sleep: {:?}",
        s[2]
    );
    let age = etime_secs(&s[0]).unwrap_or_else(|| panic!("ps -o etime: {:?}", s[0]));
    assert!(
        (1..=30).contains(&age),
        "a process started 2 s ago is {age} s old for ps"
    );
    let uptime: f64 = s[1].split_whitespace().next().unwrap().parse().unwrap();
    let host: f64 = host_uptime_secs();
    assert!(
        (host - uptime).abs() < 30.0,
        "--host-uptime: the container's uptime {uptime} is not the host's {host}"
    );
}

/// Without the flag uptime is the container's age (LXCFS's behaviour, what `uptime`
/// and monitoring agents show), and ps's ELAPSED is then not a process's age: the
/// trade-off --host-uptime exists for, pinned here so a change of default is seen.
#[test]
fn by_default_uptime_is_the_containers_age_and_ps_cannot_use_it() {
    require_tools(&["ps"], "procps").unwrap();
    let d = Daemon::start(&[]);
    let cg = Cgroup::with_memory_limit("ps-default", 128 * MIB);
    let out = run(
        &cg,
        &d.mnt,
        "sleep 300 & p=$!\nsleep 2\nps -o etime= -p $p; echo ---; cat /proc/uptime\nkill $p",
    );
    let s = sections(out.ok());
    let uptime: f64 = s[1].split_whitespace().next().unwrap().parse().unwrap();
    assert!(uptime < 30.0, "a fresh container's uptime is {uptime} s");
    let host: f64 = host_uptime_secs();
    if host > 60.0 {
        assert_ne!(
            etime_secs(&s[0]).map(|a| a <= 30),
            Some(true),
            "ps got a process's age right from the container's uptime: {:?}",
            s[0]
        );
    }
}

/// vmstat's first line divides /proc/stat's event counts, and /proc/vmstat's paging and
/// swapping counts, by the time /proc/stat says the CPUs ran: the container's. Both
/// files show the host's counts since its boot scaled to the container's share of that
/// time (bound here as LXC and crun can; runc refuses /proc/vmstat), so the rates come
/// out as the host's average rates, not the host's whole history spread over the
/// container's few seconds (56 252 181 interrupts a second before).
#[test]
fn vmstats_first_line_shows_plausible_rates() {
    require_tools(&["vmstat"], "procps").unwrap();
    for flags in [&[][..], &["--enable-cfs"]] {
        vmstat_with(flags);
    }
}

fn vmstat_with(flags: &[&str]) {
    let d = Daemon::start(flags);
    let cg = Cgroup::new("vmstat", &[Limit::Memory(128 * MIB), Limit::cpus("0")]);
    let out = run(
        &cg,
        &d.mnt,
        "mount --bind \"$E2E_MNT/proc/vmstat\" /proc/vmstat || exit 97\n\
         sleep 1; vmstat 1 1; echo ---; cat /proc/vmstat; echo ---; cat /proc/uptime",
    );
    let s = sections(out.ok());
    let text = &s[0];
    // "procs ... system ... cpu" / " r  b swpd ... in cs us sy id ..." / values
    let header: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    let values: Vec<u64> = text
        .lines()
        .nth(2)
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let col = |name: &str| values[header.iter().position(|h| *h == name).unwrap()];
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let vmstat = std::fs::read_to_string("/proc/vmstat").unwrap();
    let count = |file: &str, key: &str| -> u64 {
        file.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key:?} in\n{file}"))
    };
    let up: f64 = host_uptime_secs();
    let cpus = std::thread::available_parallelism().unwrap().get() as f64;
    // The host's average rates, per CPU of the host and for all of them: the container
    // (one CPU) sees somewhere in between; 5x for what vmstat's rounding and the
    // container's idle accounting add. (Paging in KiB, as vmstat's bi/bo.)
    for (col_name, file, key) in [
        ("in", &stat, "intr "),
        ("cs", &stat, "ctxt "),
        ("bi", &vmstat, "pgpgin "),
        ("bo", &vmstat, "pgpgout "),
        ("si", &vmstat, "pswpin "),
        ("so", &vmstat, "pswpout "),
    ] {
        let host_rate = count(file, key) as f64 / up;
        let seen = col(col_name) as f64;
        assert!(
            seen <= 5.0 * host_rate * cpus + 100.0,
            "vmstat's {col_name} is {seen}/s; the host averages {host_rate:.0}/s\n{text}"
        );
    }
    // The container's counts are the host's over the container's share of its uptime:
    // at most the host's, and as small as a few seconds of a long uptime make them.
    let age: f64 = s[2].split_whitespace().next().unwrap().parse().unwrap();
    for key in ["pgpgin ", "pgpgout ", "pgfault "] {
        let (mine, host) = (count(&s[1], key) as f64, count(&vmstat, key) as f64);
        assert!(
            mine <= host * (age + 5.0) / up + 1.0,
            "{key}{mine} in a container {age} s old; the host has {host} in {up} s"
        );
    }
    // Current amounts stay the host's kind of number (a gauge is not scaled).
    assert!(count(&s[1], "nr_free_pages ") > 0, "{}", s[1]);
}

/// psutil (Debian's, with Debian's python3), as monitoring agents use it: the
/// container's CPUs and memory, and process start times right (they come from /proc/stat's btime, the host's, and the start
/// ticks, not from uptime).
#[test]
fn psutil_sees_the_container() {
    require_tools(&["python3"], "python3").unwrap();
    for flags in [&[][..], &["--enable-cfs"]] {
        psutil_with(flags);
    }
}

fn psutil_with(flags: &[&str]) {
    let d = Daemon::start(flags);
    let cg = Cgroup::new("psutil", &[Limit::Memory(256 * MIB), Limit::cpus("1")]);
    let out = run(
        &cg,
        &d.mnt,
        "mount --bind \"$E2E_MNT/sys/devices/system/cpu\" /sys/devices/system/cpu\n\
         /usr/bin/python3 -c 'import psutil, os, time\n\
         p = psutil.Process(os.getpid())\n\
         print(psutil.cpu_count(), psutil.virtual_memory().total)\n\
         print(round(time.time() - p.create_time()), round(psutil.boot_time()))\n\
         print(psutil.cpu_percent(interval=0.5) <= 100.0)'",
    );
    assert!(
        !out.stderr.contains("No module named"),
        "Debian's python3 has no psutil (apt-get install python3-psutil): {}",
        out.stderr
    );
    let text = out.ok();
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["1", &(256 * MIB).to_string()], "{text}");
    let age: i64 = lines[1][0].parse().unwrap();
    assert!((0..30).contains(&age), "create_time is {age} s ago\n{text}");
    let btime: i64 = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let boot: i64 = lines[1][1].parse().unwrap();
    assert!((boot - btime).abs() <= 1, "boot_time {boot}, btime {btime}");
    assert_eq!(lines[2], ["True"], "{text}");
}

/// psutil's `cpu_percent` over a busy loop of known size: one shell loop in a
/// container of two CPUs with half a CPU of quota. By default the view is the cpuset's
/// two CPUs, so the loop is a quarter of the machine (as top's header shows it); with
/// `--enable-cfs` the machine is the quota's one CPU, which the loop fills.
#[test]
fn psutil_cpu_percent_follows_a_busy_loop() {
    require_tools(&["python3"], "python3").unwrap();
    let two = testkit::cgroup::root_cpus().unwrap();
    assert!(two.len() >= 2, "needs two CPUs, the host has {two}");
    let cpus: Vec<u32> = two.iter().take(2).collect();
    let list = format!("{},{}", cpus[0], cpus[1]);
    for (flags, count, range) in [
        (&[][..], 2, 10.0..=40.0),
        (&["--enable-cfs"][..], 1, 50.0..=100.0),
    ] {
        let d = Daemon::start(flags);
        let cg = Cgroup::new(
            "psutil-busy",
            &[
                Limit::cpus(&list),
                Limit::Quota {
                    quota_us: 50_000,
                    period_us: 100_000,
                },
            ],
        );
        let out = run(
            &cg,
            &d.mnt,
            "mount --bind \"$E2E_MNT/sys/devices/system/cpu\" /sys/devices/system/cpu\n\
             sh -c 'while :; do :; done' & loop=$!\n\
             /usr/bin/python3 -c 'import psutil\n\
             psutil.cpu_percent()\n\
             print(psutil.cpu_count(), psutil.cpu_percent(interval=2))'\n\
             kill $loop",
        );
        let text = out.ok();
        let f: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(f[0], count.to_string(), "{flags:?}: {text}");
        let pct: f64 = f[1].parse().unwrap();
        assert!(
            range.contains(&pct),
            "{flags:?}: cpu_percent {pct} with one busy loop at half a CPU, want {range:?}"
        );
    }
}
