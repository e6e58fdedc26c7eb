//! End to end: readers that die mid-request, and many short-lived containers.
//!
//! Needs root, /dev/fuse and writable cgroups (v1, hybrid or v2): fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// The daemon answers a host reader in time and is still running.
fn assert_responsive(d: &mut Daemon) {
    let text = read_deadline(&d.path("proc/meminfo"), DEADLINE).unwrap();
    assert!(text.starts_with("MemTotal:"), "{text}");
    assert!(d.alive(), "the daemon died:\n{}", d.log_text());
    let log = d.log_text();
    assert!(!log.contains("panic"), "the daemon panicked:\n{log}");
}

#[test]
fn readers_that_exit_or_are_killed_mid_request_do_not_hang_the_daemon() {
    let mut d = Daemon::start(&[]);
    let cg = Cgroup::with_memory_limit("die", 256 * MIB);
    let out = run(
        &cg,
        &d.mnt,
        // Open, then exit without reading; open, then die by SIGKILL without reading;
        // readers killed at random points of open/read/release.
        "i=0; while [ $i -lt 20 ]; do\n\
           sh -c 'exec 3</proc/meminfo; exit 0'\n\
           sh -c 'exec 3</proc/swaps; kill -9 $$'\n\
           cat /proc/meminfo >/dev/null & kill -9 $! 2>/dev/null\n\
           dd if=/proc/meminfo bs=1 count=4000 2>/dev/null >/dev/null & kill -9 $! 2>/dev/null\n\
           i=$((i+1))\n\
         done\n\
         wait\n\
         head -n1 /proc/meminfo",
    );
    let last = out.stdout.lines().last().unwrap_or("");
    assert_eq!(
        meminfo_get(last, "MemTotal"),
        Some(256 * 1024),
        "after the dying readers: {:?}\n{}",
        out.stdout,
        out.stderr
    );
    assert_responsive(&mut d);
}

#[test]
fn fifty_short_lived_containers_then_the_daemon_is_small_and_responsive() {
    const THREADS: usize = 5;
    const EACH: usize = 10;
    let mut d = Daemon::start(&[]);
    let a = Cgroup::with_memory_limit("s128", 128 * MIB);
    let b = Cgroup::with_memory_limit("s384", 384 * MIB);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (a, b, mnt) = (&a, &b, &d.mnt);
            s.spawn(move || {
                for i in 0..EACH {
                    // Each run is a new pid namespace, so a new cache entry.
                    let (cg, want) = if (t + i) % 2 == 0 {
                        (a, 128 * 1024)
                    } else {
                        (b, 384 * 1024)
                    };
                    let out = run(
                        cg,
                        mnt,
                        "cat /proc/meminfo /proc/swaps >/dev/null; head -n1 /proc/meminfo",
                    );
                    assert_eq!(
                        meminfo_value(out.ok(), "MemTotal"),
                        want,
                        "container {t}/{i}"
                    );
                }
            });
        }
    });
    assert_responsive(&mut d);
    let rss = d.rss_kb();
    assert!(rss < 64 * 1024, "daemon VmRSS {rss} kB after 50 containers");
}
