//! Per-container activity files: loadavg, diskstats, pressure, slabinfo.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;

/// Two threads spinning for 40 s in a container that reads its loadavg once at the end:
/// load1 must be above 0.8 (the kernel's formula gives 2 × (1 − e^(−40/60)) ≈ 0.97),
/// because load is counted from the container's start, not from its first read. An idle
/// container next to it stays near 0.
#[test]
fn loadavg_counts_from_the_containers_start() {
    let d = Daemon::start(&[]);
    let busy = Cgroup::new("load-busy", &[]);
    let idle = Cgroup::new("load-idle", &[]);
    let mnt = d.mnt.clone();
    let long = std::time::Duration::from_secs(90);
    let quiet =
        std::thread::spawn(move || run_timeout(&idle, &mnt, "sleep 40; cat /proc/loadavg", long));
    let out = run_timeout(
        &busy,
        &d.mnt,
        "timeout 41 sh -c 'while :; do :; done' &\n\
         timeout 41 sh -c 'while :; do :; done' &\n\
         sleep 40; cat /proc/loadavg",
        long,
    );
    let line = out.ok().trim().to_string();
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f.len(), 5, "loadavg: {line}");
    let load1: f64 = f[0].parse().unwrap();
    assert!(
        load1 > 0.8,
        "load1 {load1} after 40 s of two spinning threads: {line}\n{}",
        d.log_text()
    );
    assert!(load1 < 2.5, "{line}");
    let (running, total) = f[3].split_once('/').unwrap();
    assert!(running.parse::<u32>().unwrap() >= 1, "{line}");
    // init, two timeouts, two spinning shells, sleep/cat: a handful, not the host's.
    assert!((3..=12).contains(&total.parse::<u32>().unwrap()), "{line}");
    // The last pid is in the container's numbering.
    assert!(f[4].parse::<u32>().unwrap() < 100, "{line}");

    let quiet = quiet.join().unwrap();
    let q: f64 = quiet.ok().split(' ').next().unwrap().parse().unwrap();
    assert!(q < 0.3, "idle container's load1 {q}: {}", quiet.ok());
}

/// The block device that holds `/var/tmp`, as `major:minor`, as the throttle files want
/// it (a partition's parent disk).
fn root_disk() -> String {
    let dir = PathBuf::from("/var/tmp");
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dev = mi
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (dir.starts_with(f[4])).then(|| (f[4].len(), f[2].to_string()))
        })
        .max()
        .map(|(_, d)| d)
        .expect("a mount holds /var/tmp");
    let sys = PathBuf::from(format!("/sys/dev/block/{dev}"));
    assert!(
        sys.exists(),
        "/var/tmp is not on a block device ({dev}): this test needs one"
    );
    if sys.join("partition").exists() {
        fs::read_to_string(sys.join("../dev"))
            .unwrap()
            .trim()
            .to_string()
    } else {
        dev
    }
}

/// v1 accounts a container's block I/O in blkio.throttle.* only where a throttle rule
/// applies: with one on the disk, 20 MiB written with O_DIRECT show up in the
/// container's diskstats (40960 sectors at least); a container that writes nothing shows
/// no writes (its processes may still read: exec'ing `sh` misses the page cache).
#[test]
fn diskstats_shows_the_containers_own_io() {
    let d = Daemon::start(&[]);
    let disk = root_disk();
    let rule = Limit::WriteBps {
        device: disk.clone(),
        bps: 10_737_418_240,
    };
    let writer = Cgroup::new("disk-writer", std::slice::from_ref(&rule));
    let idle = Cgroup::new("disk-idle", &[rule]);
    let file = std::env::temp_dir().join(unique("dd"));
    let file = PathBuf::from("/var/tmp").join(file.file_name().unwrap());
    let out = run(
        &writer,
        &d.mnt,
        &format!(
            "dd if=/dev/zero of={f} bs=1M count=20 oflag=direct 2>/dev/null || echo DD-FAILED\n\
             rm -f {f}\ncat /proc/diskstats",
            f = file.display()
        ),
    );
    let text = out.ok();
    assert!(!text.contains("DD-FAILED"), "{text}");
    let (maj, min) = disk.split_once(':').unwrap();
    let line = text
        .lines()
        .find(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[0] == maj && f[1] == min
        })
        .unwrap_or_else(|| panic!("no line for {disk} in the writer's diskstats:\n{text}"));
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(3)
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(f[4] >= 20, "writes completed: {line}");
    assert!(f[6] >= 40960, "sectors written: {line}");
    // Every line is a device the container used.
    for l in text.lines() {
        let f: Vec<u64> = l
            .split_whitespace()
            .skip(3)
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(f.iter().any(|&v| v > 0), "idle device listed: {l}");
    }

    // Its lines, if any, are the reads of exec'ing programs the page cache had lost.
    let out = run(&idle, &d.mnt, "cat /proc/diskstats; echo END");
    let text = out.ok();
    assert_eq!(text.lines().last(), Some("END"), "{text}");
    for l in text.lines().filter(|&l| l != "END") {
        let f: Vec<u64> = l
            .split_whitespace()
            .skip(3)
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(f.len() > 6, "short line: {l}");
        assert_eq!((f[4], f[6]), (0, 0), "the idle container wrote: {l}");
    }
}

/// A container whose init sits in a cgroup of the v2 hierarchy (the hybrid host's
/// `unified` mount, or the one hierarchy of a pure v2 host) sees that cgroup's pressure,
/// not the host's.
#[test]
fn pressure_is_the_containers_own() {
    let d = Daemon::start(&[]);
    let cg = Cgroup::new("psi", &[]);
    // On a hybrid host the v2 group is made by hand; the container's init joins it.
    let hybrid = match cg.layout {
        Layout::V2 => None,
        Layout::V1 => {
            let unified = PathBuf::from("/sys/fs/cgroup/unified");
            assert!(
                unified.join("cgroup.procs").exists(),
                "this test needs the cgroup2 mount at {} on a v1 host",
                unified.display()
            );
            let dir = unified.join(unique("psi"));
            fs::create_dir(&dir).unwrap();
            Some(Rm(dir))
        }
    };
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            for _ in 0..50 {
                if fs::remove_dir(&self.0).is_ok() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
    let (dir, join) = match &hybrid {
        Some(Rm(dir)) => (
            dir.clone(),
            format!("echo 1 > {}/cgroup.procs\n", dir.display()),
        ),
        None => (cg.dir("cpu"), String::new()),
    };
    let out = run(
        &cg,
        &d.mnt,
        &format!(
            "{join}\
             mount --bind \"$E2E_MNT/proc/pressure/cpu\" /proc/pressure/cpu\n\
             before=$(cat {dir}/cpu.pressure | sed -n 's/^some .*total=//p')\n\
             ours=$(cat /proc/pressure/cpu)\n\
             after=$(cat {dir}/cpu.pressure | sed -n 's/^some .*total=//p')\n\
             echo \"$before\"; echo \"$after\"; echo \"$ours\"",
            dir = dir.display()
        ),
    );
    let lines: Vec<&str> = out.ok().lines().collect();
    assert!(lines.len() >= 3, "{}", out.ok());
    let before: u64 = lines[0].parse().unwrap();
    let after: u64 = lines[1].parse().unwrap();
    let ours: u64 = lines[2]
        .rsplit_once("total=")
        .map(|(_, t)| t.parse().unwrap())
        .unwrap_or_else(|| panic!("{}", out.ok()));
    assert!(
        (before..=after).contains(&ours),
        "the container's cpu pressure total {ours} is not its cgroup's ({before}..={after})"
    );
    let host_total: u64 = fs::read_to_string("/proc/pressure/cpu")
        .unwrap()
        .lines()
        .next()
        .and_then(|l| l.rsplit_once("total="))
        .map(|(_, t)| t.parse().unwrap())
        .unwrap();
    assert!(
        ours < host_total,
        "{ours} is the host's pressure ({host_total})"
    );
}

/// slabinfo is root-only, like the host's: the kernel leaves permission checks to us.
#[test]
fn slabinfo_is_for_root_only() {
    let d = Daemon::start(&[]);
    let cg = Cgroup::new("slab", &[]);
    let out = run(
        &cg,
        &d.mnt,
        "mount --bind \"$E2E_MNT/proc/slabinfo\" /proc/slabinfo\n\
         head -1 /proc/slabinfo\n\
         setpriv --reuid=65534 --regid=65534 --clear-groups cat /proc/slabinfo 2>&1 && echo READ-AS-NOBODY\n\
         true",
    );
    let text = out.ok();
    assert!(text.starts_with("slabinfo - version"), "{text}");
    assert!(text.contains("Permission denied"), "{text}");
    assert!(!text.contains("READ-AS-NOBODY"), "{text}");
}

/// `loadavg`'s last pid never goes back while a container lives, but a container made
/// again in a cgroup of the same name (LXC restarting it) starts from its own pids, not
/// from the highest its predecessor showed.
#[test]
fn loadavg_last_pid_starts_afresh_in_a_cgroup_made_again() {
    let d = Daemon::start(&[]);
    let first = Cgroup::new("last-pid", &[]);
    let last_pid = |out: &Output| -> u32 {
        let line = out.ok().trim().to_string();
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 5, "loadavg: {line}");
        f[4].parse().unwrap()
    };
    // 300 forks, then the newest task (the last one) reads.
    let busy = run(
        &first,
        &d.mnt,
        "i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done; cat /proc/loadavg",
    );
    assert!(last_pid(&busy) >= 300, "{}", busy.ok());
    let rel = first.rel.clone();
    drop(first);
    let again = Cgroup::again(&rel, &[]);
    // Past the second a count is kept for.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let fresh = run(&again, &d.mnt, "cat /proc/loadavg");
    assert!(
        last_pid(&fresh) < 100,
        "after {}: {}",
        busy.ok().trim(),
        fresh.ok()
    );
}
