//! End to end: while a hostile container does everything nasty it can to the daemon at
//! once — thousands of tasks, cgroups 40 deep, readers hammering every file, inits
//! dying mid-read, cgroups removed with their readers — a neighbour polling its files
//! like a monitoring agent still gets each read promptly.
//!
//! The bound, and why it is relative: the issue asks for no neighbour read slower than
//! 10 ms. On this 2-core machine (shared with other builds) the hostile readers alone
//! keep both cores busy, so a neighbour's read can wait for a core whatever the daemon
//! does: even the kernel's own `/proc/vmstat`, read the same way in the same loop, takes
//! milliseconds at its 99th percentile then. So the neighbour reads both, alternately,
//! and the test asks that at the 99th percentile a served file takes at most 10 ms more
//! than the kernel's file, and that at most one read takes over 100 ms (a wait for a
//! core under other work on the machine; seen once, 138 ms) and none a second. A stall
//! of the daemon fails it: before task counts were bounded, a `/proc/stat` of the
//! 3000-task container held serving threads for ~200 ms, again and again. It prints
//! both distributions, quiet and under attack.
//!
//! Needs root, /dev/fuse, writable cgroup v1 hierarchies and python3: fails, saying
//! why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

/// How long the neighbour polls (unless a test says), and how long the hostile
/// container keeps at it.
const POLL_SECS: u32 = 5;
const HOSTILE: Duration = Duration::from_secs(12);

/// Percentiles of one kind of read, in microseconds.
#[derive(Debug, Clone, Copy)]
// p50 is only printed (through Debug), as context for the bounds.
#[allow(dead_code)]
struct Dist {
    reads: u64,
    p50: u64,
    p99: u64,
    max: u64,
    /// Reads that took over 100 ms.
    slow: u64,
}

/// The neighbour's reads for [`POLL_SECS`], every 2 ms: open, read to the end, close,
/// of a served file (one after another) and then of the kernel's own `/proc/vmstat`.
fn neighbour_reads(ctr: &Running) -> (Dist, Dist) {
    neighbour_reads_for(ctr, POLL_SECS)
}

fn neighbour_reads_for(ctr: &Running, secs: u32) -> (Dist, Dist) {
    let script = r#"python3 -c '
import time
files = ["/proc/meminfo", "/proc/stat", "/proc/loadavg", "/proc/uptime", "/proc/cpuinfo"]
ours, kernel = [], []
def timed(path, into):
    t = time.perf_counter_ns()
    with open(path, "rb") as f:
        f.read()
    into.append(time.perf_counter_ns() - t)
end = time.monotonic() + SECS
i = 0
while time.monotonic() < end:
    timed(files[i % len(files)], ours)
    timed("/proc/vmstat", kernel)
    i += 1
    time.sleep(0.002)
for lat in (ours, kernel):
    lat.sort()
    n = len(lat)
    print(n, lat[n // 2] // 1000, lat[n * 99 // 100] // 1000, lat[-1] // 1000,
          sum(1 for x in lat if x > 100_000_000))
'"#
    .replace("SECS", &secs.to_string());
    let out = ctr.exec(&script);
    let dist = |line: Option<&str>| {
        let v: Vec<u64> = line
            .unwrap_or_default()
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(v.len(), 5, "{}", out.stdout);
        Dist {
            reads: v[0],
            p50: v[1],
            p99: v[2],
            max: v[3],
            slow: v[4],
        }
    };
    let mut lines = out.ok().lines();
    (dist(lines.next()), dist(lines.next()))
}

/// 3000 idle threads, and 4 readers of every file in a loop, for SECS seconds.
const SWARM: &str = r#"python3 -c '
import threading, time
threading.stack_size(256 * 1024)
ev = threading.Event()
ts = [threading.Thread(target=ev.wait) for _ in range(3000)]
[t.start() for t in ts]
time.sleep(SECS)
ev.set()
' &
for r in 1 2 3 4; do
  (end=$(($(date +%s) + SECS)); while [ $(date +%s) -lt $end ]; do
    cat /proc/meminfo /proc/stat /proc/loadavg /proc/uptime /proc/cpuinfo /proc/diskstats /proc/swaps >/dev/null
  done) &
done
wait"#;

/// The tests of this file one at a time: each loads both cores of the machine with
/// its hostile tenant and measures its neighbour against the kernel's own file, and
/// a second test's tenant at once is load the bounds do not allow for (a neighbour's
/// p99 of 12.4 ms beside the count flood, under CI).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A daemon, and a calm container (`tag`, 160 MiB) polling beside what the test does.
fn beside_a_neighbour(tag: &str) -> (Daemon, Cgroup, Running) {
    beside_a_neighbour_of(tag, &[])
}

/// [`beside_a_neighbour`], the daemon started with `args`.
fn beside_a_neighbour_of(tag: &str, args: &[&str]) -> (Daemon, Cgroup, Running) {
    require_env();
    if let Err(e) = require_tools(&["python3"], "python3") {
        panic!("{e}");
    }
    let d = Daemon::start(args);
    let calm = Cgroup::with_memory_limit(tag, 160 * MIB);
    let neighbour = Running::start(&calm, &d.mnt);
    (d, calm, neighbour)
}

/// A cgroup `depth` levels below a new top group, with a memory limit at the bottom,
/// removed bottom first (a group with children cannot be), even when the test fails.
struct Deep(Vec<Cgroup>);

impl Deep {
    fn new(tag: &str, depth: usize) -> Deep {
        let mut chain = vec![Cgroup::new(tag, &[])];
        for level in 0..depth {
            let limit = if level + 1 == depth {
                vec![Limit::Memory(201_326_592)]
            } else {
                Vec::new()
            };
            let next = chain.last().unwrap().child(&format!("l{level}"), &limit);
            chain.push(next);
        }
        Deep(chain)
    }

    fn bottom(&self) -> &Cgroup {
        self.0.last().unwrap()
    }
}

impl Drop for Deep {
    fn drop(&mut self) {
        while let Some(c) = self.0.pop() {
            drop(c);
        }
    }
}

#[test]
fn a_hostile_container_does_not_slow_its_neighbours_reads() {
    let _alone = one_at_a_time();
    let (d, _calm, neighbour) = beside_a_neighbour("calm");
    let quiet = neighbour_reads(&neighbour);
    eprintln!(
        "neighbour, quiet (µs): served {:?}, kernel's file {:?}",
        quiet.0, quiet.1
    );

    let mnt = d.mnt.clone();
    let secs = HOSTILE.as_secs();
    // Thousands of tasks 40 groups deep, every file read in a loop by 4 readers.
    let deep = Deep::new("hostile", 40);
    let bottom = deep.bottom();
    std::thread::scope(|s| {
        let mnt1 = mnt.clone();
        let swarm = s.spawn(move || {
            run_timeout(
                bottom,
                &mnt1,
                &SWARM.replace("SECS", &secs.to_string()),
                HOSTILE + DEADLINE,
            )
        });
        // Inits exiting while their readers are mid-request.
        let mnt2 = mnt.clone();
        let dying = s.spawn(move || {
            let cg = Cgroup::with_memory_limit("dying-init", 128 * MIB);
            let end = std::time::Instant::now() + HOSTILE;
            let mut n = 0;
            while std::time::Instant::now() < end {
                let out = run(
                    &cg,
                    &mnt2,
                    "(while :; do cat /proc/meminfo /proc/stat /proc/uptime >/dev/null; done) &\n\
                     sleep 0.05\nexit 0",
                );
                assert!(out.status.success(), "{}", out.stderr);
                n += 1;
            }
            n
        });
        // Groups removed with their readers: the container dies, its group goes.
        let mnt3 = mnt.clone();
        let vanishing = s.spawn(move || {
            let end = std::time::Instant::now() + HOSTILE;
            let mut n = 0;
            while std::time::Instant::now() < end {
                let cg = Cgroup::with_memory_limit(&format!("vanish{n}"), 96 * MIB);
                let ctr = Running::start(&cg, &mnt3);
                let _ = ctr.exec(
                    "(while :; do cat /proc/meminfo /proc/loadavg >/dev/null; done) \
                     >/dev/null 2>&1 &\nsleep 0.05",
                );
                drop(ctr);
                drop(cg);
                n += 1;
            }
            n
        });
        // Let the swarm start its threads, then poll beside it.
        std::thread::sleep(Duration::from_secs(3));
        let attacked = neighbour_reads(&neighbour);
        eprintln!(
            "neighbour, under attack (µs): served {:?}, kernel's file {:?}",
            attacked.0, attacked.1
        );
        assert!(swarm.join().unwrap().status.success());
        let (dead, gone) = (dying.join().unwrap(), vanishing.join().unwrap());
        eprintln!("hostile: {dead} containers died mid-read, {gone} groups removed");
        let (ours, kernel) = attacked;
        assert!(
            ours.reads > 500,
            "the neighbour read only {} times",
            ours.reads
        );
        assert!(
            ours.p99 <= kernel.p99 + 10_000 && ours.slow <= 1 && ours.max <= 1_000_000,
            "neighbour reads under attack (µs): served {ours:?}, kernel's file {kernel:?}"
        );
    });
    drop(deep);
    assert!(!d.log_text().contains("panic"), "{}", d.log_text());
    // The neighbour still sees its own limit.
    assert!(
        neighbour
            .exec("head -n1 /proc/meminfo")
            .ok()
            .contains(&(160 * 1024).to_string())
    );
}

/// A container that makes a pid namespace for each of its 200 readers of `/proc/stat`,
/// each a "new container" to count, below a thousand cgroups of its own, so that
/// every count walks them: the neighbour's reads are not held behind its counts (they
/// were, for seconds, while counts were one per pid namespace and every serving thread
/// waited its turn to count).
#[test]
fn fresh_pid_namespaces_counting_a_thousand_cgroups_do_not_stall_a_neighbour() {
    let _alone = one_at_a_time();
    let (d, _calm, neighbour) = beside_a_neighbour("calm-counts");
    let flood = Cgroup::new("counted", &[]);
    // Dropped before their parent (locals go in reverse order).
    let _children: Vec<Cgroup> = (0..1024)
        .map(|i| flood.child(&format!("c{i}"), &[]))
        .collect();
    let secs = 14;
    let script = FRESH_NAMESPACES.replace("SECS", &secs.to_string());
    // Let the readers start, then poll beside them.
    let (out, ours, kernel) = polled_beside(
        &d,
        &neighbour,
        (&flood, &script, secs),
        Duration::from_secs(4),
        POLL_SECS,
        "the counts",
    );
    assert!(
        out.status.success() && out.stdout.contains("reads"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    eprintln!("the counted container: {}", out.stdout.trim());
    assert!(
        ours.p99 <= kernel.p99 + 50_000 && ours.max <= 1_000_000,
        "neighbour reads beside the counts (µs): served {ours:?}, kernel's file {kernel:?}"
    );
    assert!(!d.log_text().contains("panic"), "{}", d.log_text());
}

/// The end of a Python reader script: wait for `kids` and print the reads their exit
/// codes add up to.
macro_rules! reap_readers_py {
    () => {
        "reads = 0
for k in kids:
    _, st = os.waitpid(k, 0)
    reads += os.waitstatus_to_exitcode(st)
print(\"reads\", reads)
'"
    };
}

/// 200 readers, each the init of a pid namespace of its own, reading `/proc/stat` once
/// a second for SECS seconds; prints how many reads they made.
const FRESH_NAMESPACES: &str = concat!(
    r#"python3 -c '
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWPID = 0x20000000
end = time.time() + SECS
kids = []
for _ in range(200):
    pid = os.fork()
    if pid == 0:
        if libc.unshare(CLONE_NEWPID) != 0:
            os._exit(3)
        init = os.fork()
        if init == 0:
            n = 0
            while time.time() < end:
                with open("/proc/stat", "rb") as f:
                    f.read()
                n += 1
                time.sleep(1)
            os._exit(min(n, 255))
        _, st = os.waitpid(init, 0)
        os._exit(os.waitstatus_to_exitcode(st))
    kids.append(pid)
"#,
    reap_readers_py!()
);

/// A container whose nested pid namespaces have their inits in the 30 cgroups of a
/// chain over 1 024 more, all reading `/proc/loadavg` at the same instant every 6 s:
/// each read needs a count of its own cgroup (the first burst has none; later ones
/// have one older than the 5 s a count is shown while another is made), and each count
/// walks a thousand cgroups. The neighbour's reads are not held: one thread of the
/// container counts and one more waits, and its other readers are shown their last
/// counts or their nearest counted ancestor's. (They were held, for 0.7 s a burst,
/// while every serving thread waited for the counter in turn.)
#[test]
fn a_containers_burst_of_counts_holds_one_serving_thread_not_all() {
    let _alone = one_at_a_time();
    let (d, _calm, neighbour) = beside_a_neighbour("calm-burst");
    let chain = Deep::new("burst", 30);
    // Dropped before the chain (locals go in reverse order).
    let _leaves: Vec<Cgroup> = (0..1024)
        .map(|i| chain.bottom().child(&format!("c{i}"), &[]))
        .collect();
    let levels: Vec<String> = chain.0[1..].iter().map(procs_files_py).collect();
    let secs = 22;
    let script = BURSTS
        .replace("LEVELS", &format!("[{}]", levels.join(", ")))
        .replace("SECS", &secs.to_string());
    // The bursts are 3, 9, 15 and 21 s in: poll over the first two, new cgroups' and
    // old ones'.
    let (out, ours, kernel) = polled_beside(
        &d,
        &neighbour,
        (&chain.0[0], &script, secs),
        Duration::from_secs(1),
        12,
        "the bursts",
    );
    let reads: u64 = out
        .stdout
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        out.status.success() && reads >= 90 * 3,
        "the bursting container read {reads} times:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    // A stall of the daemon's threads held every read near a burst, for 0.7-1.1 s.
    assert_not_held(ours, kernel, "the bursts");
    assert!(!d.log_text().contains("panic"), "{}", d.log_text());
}

/// The `cgroup.procs` files of `c` as a Python list of strings.
fn procs_files_py(c: &Cgroup) -> String {
    let files: Vec<String> = c
        .procs_files()
        .iter()
        .map(|p| format!("{:?}", p.to_string_lossy()))
        .collect();
    format!("[{}]", files.join(", "))
}

/// `script` run in a container of `tenant` for `secs` seconds (its deadline past that),
/// and beside it, from `after` in, the neighbour's reads for `poll` seconds (printed
/// as beside `what`): the tenant's output and the neighbour's two distributions.
fn polled_beside(
    d: &Daemon,
    neighbour: &Running,
    (tenant, script, secs): (&Cgroup, &str, u64),
    after: Duration,
    poll: u32,
    what: &str,
) -> (Output, Dist, Dist) {
    std::thread::scope(|s| {
        let readers =
            s.spawn(|| run_timeout(tenant, &d.mnt, script, Duration::from_secs(secs) + DEADLINE));
        std::thread::sleep(after);
        let (ours, kernel) = neighbour_reads_for(neighbour, poll);
        eprintln!("neighbour beside {what} (µs): served {ours:?}, kernel's file {kernel:?}");
        (readers.join().unwrap(), ours, kernel)
    })
}

/// The neighbour's served reads beside `what` were not held: at the 99th percentile
/// at most 10 ms slower than the kernel's file, and at most one over 100 ms (a wait
/// for a core, as in the tests above), none over 500 ms.
fn assert_not_held(ours: Dist, kernel: Dist, what: &str) {
    assert!(
        ours.p99 <= kernel.p99 + 10_000 && ours.slow <= 1 && ours.max <= 500_000,
        "neighbour reads beside {what} (µs): served {ours:?}, kernel's file {kernel:?}"
    );
}

/// `--enable-cgroup`'s pid lists are rewritten pid by pid into the reader's numbering
/// (tens of milliseconds for thousands of tasks through `/proc`, a few with the ioctl
/// of Linux 6.11, where only the refusals show the bound). A container of 3 000 threads with 8
/// readers of its `tasks` list, one after another without pause, has one list
/// translated at a time and one open waiting (the others refused with `EAGAIN`, said in
/// the log), not every serving thread (then the neighbour's reads waited behind them).
#[test]
fn a_containers_pid_list_translations_hold_one_serving_thread_not_all() {
    let _alone = one_at_a_time();
    let (d, _calm, neighbour) = beside_a_neighbour_of("calm-lists", &["--enable-cgroup"]);
    let tenant = Cgroup::with_memory_limit("lists", 1024 * MIB);
    let list = match Layout::host().unwrap() {
        Layout::V1 => "cgroup/memory/tasks",
        Layout::V2 => "cgroup/cgroup.threads",
    };
    let secs = 14;
    let script = PID_LISTS
        .replace("LIST", list)
        .replace("SECS", &secs.to_string());
    let (out, ours, kernel) = polled_beside(
        &d,
        &neighbour,
        (&tenant, &script, secs),
        Duration::from_secs(4),
        8,
        "the pid list readers",
    );
    let (full, refused) = pair_totals(&out.stdout);
    assert!(
        out.status.success() && full >= 20,
        "the tenant read its whole list {full} times:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_not_held(ours, kernel, "the pid list readers");
    let log = d.log_text();
    assert!(
        refused > 0 && log.contains("(pid_list_busy)"),
        "no open was refused ({refused} EAGAINs seen):\n{log}"
    );
    assert!(!log.contains("panic"), "{log}");
}

/// 3 000 idle threads, then 8 processes reading LIST (below the mount) in a loop for
/// SECS seconds; each prints how many reads listed every thread and how many were
/// refused with `EAGAIN`.
const PID_LISTS: &str = r#"python3 -c '
import os, threading, time
path = os.environ["E2E_MNT"] + "/LIST"
stop = threading.Event()
for _ in range(3000):
    threading.Thread(target=stop.wait, daemon=True).start()
end = time.time() + SECS
kids = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        full = refused = 0
        while time.time() < end:
            try:
                with open(path, "rb") as f:
                    if len(f.read().split()) >= 3000:
                        full += 1
            except OSError as e:
                if e.errno != 11:
                    os.write(2, ("%s\n" % e).encode())
                    os._exit(1)
                refused += 1
                time.sleep(0.001)
        os.write(1, ("%d %d\n" % (full, refused)).encode())
        os._exit(0)
    kids.append(pid)
bad = 0
for k in kids:
    _, st = os.waitpid(k, 0)
    bad += os.waitstatus_to_exitcode(st) != 0
os._exit(bad)
'"#;

/// 3 readers in each of LEVELS (the `cgroup.procs` files of each cgroup), each the init
/// of a pid namespace nested in the container's, reading `/proc/loadavg` together at
/// 3, 9, 15 and 21 s; prints how many reads they made.
const BURSTS: &str = concat!(
    r#"python3 -c '
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWPID = 0x20000000
start = time.time()
end = start + SECS
kids = []
for files in LEVELS:
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            for f in files:
                with open(f, "w") as w:
                    w.write(str(os.getpid()))
            if libc.unshare(CLONE_NEWPID) != 0:
                os._exit(3)
            init = os.fork()
            if init == 0:
                n = 0
                at = start + 3
                while at < end:
                    time.sleep(max(0, at - time.time()))
                    with open("/proc/loadavg", "rb") as f:
                        f.read()
                    n += 1
                    at += 6
                os._exit(n)
            _, st = os.waitpid(init, 0)
            os._exit(os.waitstatus_to_exitcode(st))
        kids.append(pid)
"#,
    reap_readers_py!()
);

/// A container that makes pid namespaces over and over, each read by a process that is
/// not a descendant of the namespace's init (forked by the process that made it, as
/// `docker exec` or `nsenter` readers are), with the init moved to a cgroup of its own: on
/// kernels without `NS_GET_TGID_FROM_PIDNS` (the procfs resolver, forced here) nothing
/// but a search of processes finds such an init. On a host of 8 000 processes the
/// neighbour's reads are not held behind those searches (they were: every serving
/// thread listed and searched all of `/proc` for the tenant, the neighbour's median
/// read took 23 ms and its slowest 100 ms), and every one of the tenant's reads is
/// answered.
#[test]
fn fresh_namespaces_entered_from_outside_do_not_stall_a_neighbour() {
    let _alone = one_at_a_time();
    entered_from_outside_beside_a_neighbour("calm-scan", ENTERED_FROM_OUTSIDE, 200);
}

/// As above, in bursts: 16 namespaces made, 300 processes forked after their inits, and
/// then all 16 read at once, so that only a search of every process finds each init:
/// the container has one such search under way at a time (its other readers are
/// served the host's file), not one in every serving thread (then the neighbour's
/// reads waited for them: 99th percentile 50-90 ms).
#[test]
fn searches_of_every_process_hold_one_serving_thread_not_all() {
    let _alone = one_at_a_time();
    let d = entered_from_outside_beside_a_neighbour("calm-far", BURSTS_ENTERED_FROM_OUTSIDE, 48);
    let log = d.log_text();
    assert!(
        log.contains("(init_scan_busy)"),
        "no reader was turned away from a search under way:\n{log}"
    );
}

/// A tenant running `script` (ENTERED_FROM_OUTSIDE or BURSTS_ENTERED_FROM_OUTSIDE) and
/// the neighbour beside it; at least `least` of the tenant's namespaces are read.
/// Returns the daemon, for its log.
fn entered_from_outside_beside_a_neighbour(tag: &str, script: &str, least: u64) -> Daemon {
    let (d, _calm, neighbour) = beside_a_neighbour_of(tag, &["--init-resolver", "procfs"]);
    let _crowd = IdleProcesses::start(8000);
    // The neighbour's reader enters with `nsenter`, not into its container's cgroup:
    // its first read searches every process, once, before it starts to count.
    neighbour.exec("head -n1 /proc/meminfo").ok();
    let tenant = Cgroup::new(&format!("{tag}-tenant"), &[]);
    // Not below the tenant's group: there the search near the reader finds them.
    let inits = Cgroup::new(&format!("{tag}-inits"), &[]);
    let secs = 14;
    let python = format!("{ENTERED_PY}{script}")
        .replace("INITS", &procs_files_py(&inits))
        .replace("SECS", &secs.to_string());
    let script = format!("python3 -c '{python}'");
    let (out, ours, kernel) = polled_beside(
        &d,
        &neighbour,
        (&tenant, &script, secs),
        Duration::from_secs(3),
        8,
        "the searches",
    );
    let (reads, bad) = pair_totals(&out.stdout);
    eprintln!("the tenant: {reads} namespaces read, {bad} reads failed");
    assert!(
        out.status.success() && reads >= least && bad == 0,
        "the tenant's namespaces: {reads} read, {bad} failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_not_held(ours, kernel, "the searches");
    assert!(!d.log_text().contains("panic"), "{}", d.log_text());
    d
}

/// The sums of the two numbers on each line of `stdout` that holds exactly two (one
/// line per worker of a tenant's script).
fn pair_totals(stdout: &str) -> (u64, u64) {
    let mut sums = (0, 0);
    for line in stdout.lines() {
        let v: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        if let [a, b] = v[..] {
            sums = (sums.0 + a, sums.1 + b);
        }
    }
    sums
}

/// `n` idle processes on the host, so that a search of every process costs what it
/// does on a busy host. They die with their parent, which is killed when this is
/// dropped.
struct IdleProcesses(std::process::Child);

impl IdleProcesses {
    fn start(n: u32) -> IdleProcesses {
        use std::io::BufRead;
        const SCRIPT: &str = r#"
import ctypes, os, signal, sys
libc = ctypes.CDLL(None)
me = os.getpid()
for _ in range(int(sys.argv[1])):
    if os.fork() == 0:
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
        if os.getppid() != me:
            os._exit(0)
        signal.pause()
        os._exit(0)
print("up", flush=True)
sys.stdin.read()
"#;
        let mut child = std::process::Command::new("/usr/bin/python3")
            .args(["-c", SCRIPT, &n.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run /usr/bin/python3");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let crowd = IdleProcesses(child);
        assert_eq!(line.trim(), "up", "{n} idle processes did not start");
        crowd
    }
}

impl Drop for IdleProcesses {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Python defining `entered(inits, before_read)`: it makes a pid namespace whose init
/// moves to the cgroup of `inits` (its `cgroup.procs` files) and waits; calls
/// `before_read()`; then forks a reader into the namespace (its parent, the caller,
/// is outside it), which reads `/proc/meminfo` once and prints its first line if
/// `show`; the init is killed after. Returns 0 when the read began `MemTotal:`. Call
/// it in a child: the caller stays in the namespace's parent with `unshare`.
const ENTERED_PY: &str = r#"
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
def entered(inits, before_read, show=False):
    if libc.unshare(0x20000000) != 0:
        return 3
    r, w = os.pipe()
    init = os.fork()
    if init == 0:
        for f in inits:
            with open(f, "w") as p:
                p.write("0")
        os.write(w, b"x")
        signal.pause()
        os._exit(0)
    os.read(r, 1)
    before_read()
    reader = os.fork()
    if reader == 0:
        with open("/proc/meminfo", "rb") as f:
            text = f.read()
        if show:
            print(text.decode().splitlines()[0], flush=True)
        os._exit(0 if text.startswith(b"MemTotal:") else 1)
    _, st = os.waitpid(reader, 0)
    os.kill(init, 9)
    os.waitpid(init, 0)
    return os.waitstatus_to_exitcode(st)
"#;

/// 4 workers, each making pid namespaces for SECS seconds (see [`ENTERED_PY`]), each
/// read once by a reader that enters it from outside. Each worker writes a line of
/// the namespaces it made and the reads that failed.
const ENTERED_FROM_OUTSIDE: &str = r#"
import os, time
end = time.time() + SECS
def worker():
    reads = bad = 0
    while time.time() < end:
        pid = os.fork()
        if pid == 0:
            os._exit(entered(INITS, lambda: None))
        _, st = os.waitpid(pid, 0)
        reads += 1
        bad += os.waitstatus_to_exitcode(st) != 0
    # One write(2) a line (and no single quote here: the script is quoted in them):
    # print() may write the numbers apart, and four workers writing at once then
    # join the count of one to that of another ("619" "940").
    os.write(1, f"{reads} {bad}\n".encode())
    os._exit(0)
kids = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        worker()
    kids.append(pid)
for k in kids:
    os.waitpid(k, 0)
"#;

/// For SECS seconds, rounds of: 16 pid namespaces made (see [`ENTERED_PY`]); 300
/// processes come and go; then each namespace's maker forks a reader into it at the
/// same instant. Prints the namespaces read and the reads that failed.
const BURSTS_ENTERED_FROM_OUTSIDE: &str = r#"
import os, time
end = time.time() + SECS
def ready_then_wait(ready, go):
    os.write(ready, b"x")
    os.read(go, 1)
reads = bad = 0
while time.time() < end:
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    makers = []
    for _ in range(16):
        pid = os.fork()
        if pid == 0:
            os._exit(entered(INITS, lambda: ready_then_wait(ready_w, go_r)))
        makers.append(pid)
    for _ in makers:
        os.read(ready_r, 1)
    for _ in range(300):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    os.write(go_w, b"x" * len(makers))
    for pid in makers:
        _, st = os.waitpid(pid, 0)
        reads += 1
        bad += os.waitstatus_to_exitcode(st) != 0
    for fd in (go_r, go_w, ready_r, ready_w):
        os.close(fd)
print(reads, bad, flush=True)
"#;
