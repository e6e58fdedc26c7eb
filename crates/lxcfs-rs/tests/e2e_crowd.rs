//! End to end: a container with 20 000 tasks. Apart from the other hostile-input tests
//! because it needs room for 20 000 threads: the pure cgroup-v2 VM (1 GiB, emulated)
//! does not run it.
//!
//! Needs root, /dev/fuse, writable cgroups and python3: fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

/// The sampler ticks (in µs) the daemon logged, in order.
fn sampler_ticks(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.split_once("load sampler: ")?.1.split_once(" cgroups in "))
        .filter_map(|(_, t)| t.trim_end_matches(" µs").trim().parse().ok())
        .collect()
}

/// A container with 20 000 threads (the issue asks for 50 000; this host's pid_max is
/// 32 768, and raising it is a host-wide change a test must not make): its loadavg
/// counts every one, its `/proc/stat` and `/proc/loadavg` reads stay fast, and the load
/// sampler's tick does not grow with its tasks (the kernel counts them: one round trip
/// per cgroup).
#[test]
fn a_container_with_twenty_thousand_tasks_is_counted_in_bounded_time() {
    const THREADS: u64 = 20_000;
    let d = Daemon::start(&["-d"]);
    let cg = Cgroup::with_memory_limit("crowd", 4096 * MIB);
    let ctr = Running::start(&cg, &d.mnt);
    poll(DEADLINE, "a first sampler tick", || {
        (!sampler_ticks(&d.log_text()).is_empty()).then_some(())
    });
    let quiet_tick = *sampler_ticks(&d.log_text()).last().unwrap();
    // nsenter enters the namespaces, not the cgroup: join it first.
    let join: String = cg
        .procs_files()
        .iter()
        .map(|f| format!("echo $$ > '{}'\n", f.display()))
        .collect();
    let out = ctr.exec(&format!(
        "{join}python3 -c '\nimport threading\nthreading.stack_size(64 * 1024)\n\
         ev = threading.Event()\nts = [threading.Thread(target=ev.wait) for _ in range({THREADS})]\n\
         [t.start() for t in ts]\nev.wait()\n' \
         </dev/null >/dev/null 2>&1 &\necho spawned"
    ));
    assert!(out.ok().contains("spawned"));
    poll(
        Duration::from_secs(120),
        "20 000 threads in the container",
        || {
            let n: usize = cg.procs_files().first().map_or(0, |_| {
                std::fs::read_to_string(cg.dir("pids").join("tasks"))
                    .map(|t| t.lines().count())
                    .unwrap_or(0)
            });
            (n as u64 > THREADS).then_some(())
        },
    );
    // Two ticks with the crowd in place.
    let before = sampler_ticks(&d.log_text()).len();
    poll(
        Duration::from_secs(20),
        "two sampler ticks with the crowd",
        || (sampler_ticks(&d.log_text()).len() >= before + 2).then_some(()),
    );
    let crowded_tick = *sampler_ticks(&d.log_text()).last().unwrap();
    // Reads after the counts' one-second cache expired: each recounts.
    std::thread::sleep(Duration::from_millis(1100));
    let out = ctr.exec(&format!(
        "{join}python3 -c '\nimport time\n\
         for p in (\"/proc/stat\", \"/proc/loadavg\"): t = time.perf_counter(); \
         s = open(p).read(); print(p, int((time.perf_counter() - t) * 1e6), \
         s.splitlines()[-1] if p.endswith(\"avg\") else \"\")\n'"
    ));
    let text = out.ok().to_string();
    eprintln!(
        "sampler tick: {quiet_tick} µs quiet, {crowded_tick} µs with {THREADS} threads; reads: {text}"
    );
    let loadavg = text
        .lines()
        .find(|l| l.starts_with("/proc/loadavg"))
        .unwrap();
    let total: u64 = loadavg
        .split_whitespace()
        .nth(5)
        .and_then(|f| f.split_once('/'))
        .and_then(|(_, t)| t.parse().ok())
        .unwrap_or_else(|| panic!("{loadavg}"));
    assert!(total > THREADS, "loadavg counts {total} tasks: {loadavg}");
    for l in text.lines() {
        let us: u64 = l.split_whitespace().nth(1).unwrap().parse().unwrap();
        // Alone, a recount took 30 ms in the debug build, 94 ms beside the rest of the
        // suite; reading every task's status, as before, took 1.6 s.
        assert!(
            us < 250_000,
            "{l}: a recount of {THREADS} tasks took {us} µs"
        );
    }
    assert!(
        crowded_tick < 100_000,
        "a sampler tick took {crowded_tick} µs with {THREADS} threads ({quiet_tick} µs without)"
    );
}
