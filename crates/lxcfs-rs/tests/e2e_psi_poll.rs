//! End to end: `--enable-psi-poll`. A real poller (Python's `select.poll`) writes a PSI
//! trigger to `proc/pressure/memory` from inside a container and waits for `POLLPRI`:
//! it gets one within the window while its container churns page cache through a small
//! memory limit (v1 `memory.limit_in_bytes` on this hybrid host, v2 `memory.high` in
//! the pure-v2 VM), and its idle neighbour, polling at the same time, gets none.
//! Malformed triggers fail with the kernel's EINVAL, a second trigger on a handle with
//! EBUSY, the container's seventeenth with ENOSPC, and one past what all containers
//! may hold (half the worker's open-file limit) with ENOSPC too; without the flag the
//! files are read-only and poll answers at once.
//!
//! On a hybrid host a container's PSI is its cgroup2 group's, so the test puts each
//! container's init in a cgroup2 group of its own too (runtimes do).
//!
//! Needs root, /dev/fuse, writable cgroups with PSI, and python3: fails, saying why,
//! without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;

/// Writes argv[2] (+ NUL) as a trigger to argv[1] and polls it for POLLPRI for argv[3]
/// ms: prints `event <revents> <seconds>` or `none`, or `errno <n>` if the write fails.
const POLLER: &str = r#"
import os, select, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    os.write(fd, sys.argv[2].encode() + b"\0")
except OSError as e:
    print("errno", e.errno)
    sys.exit(0)
print("armed", flush=True)
p = select.poll()
p.register(fd, select.POLLPRI)
t = time.monotonic()
ev = p.poll(int(sys.argv[3]))
if ev:
    print("event", ev[0][1], round(time.monotonic() - t, 2))
else:
    print("none")
"#;

/// 10 ms of memory stall within 2 s: a window an unprivileged writer may use too.
const TRIGGER: &str = "some 10000 2000000";
const FILE_MIB: u64 = 48;
const LIMIT: u64 = 16 << 20;

/// A cgroup2 group on a hybrid host (on a pure v2 host the container's own group is
/// used): removed on drop, after the container's processes are gone.
struct Unified(Option<PathBuf>);

impl Unified {
    fn for_group(cg: &Cgroup) -> Unified {
        if cg.layout == Layout::V2 {
            return Unified(None);
        }
        let dir = PathBuf::from(CGROUP_ROOT).join("unified").join(&cg.rel);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (no cgroup2 hierarchy?)", dir.display()));
        Unified(Some(dir))
    }

    /// Shell that moves the container's init (pid 1 of its namespace) into it.
    fn join(&self) -> String {
        match &self.0 {
            Some(d) => format!("echo 1 > '{}/cgroup.procs'\n", d.display()),
            None => String::new(),
        }
    }
}

impl Drop for Unified {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            for _ in 0..200 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn poller(trigger: &str, timeout_ms: u32) -> String {
    format!(
        "python3 -c '{}' \"$E2E_MNT/proc/pressure/memory\" '{trigger}' {timeout_ms}\n",
        POLLER.replace('\'', "'\\''")
    )
}

/// A file on disk bigger than the limit, out of the page cache.
struct BigFile(PathBuf);

impl BigFile {
    fn new() -> BigFile {
        let p = PathBuf::from("/var/tmp").join(unique("psi-churn"));
        let chunk = vec![7u8; 1 << 20];
        let mut data = Vec::with_capacity((FILE_MIB << 20) as usize);
        for _ in 0..FILE_MIB {
            data.extend_from_slice(&chunk);
        }
        std::fs::write(&p, data).unwrap();
        BigFile(p)
    }
}

impl Drop for BigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn memory_limited(tag: &str) -> Cgroup {
    let cg = Cgroup::new(tag, &[]);
    match cg.layout {
        Layout::V1 => cg.write("memory", "memory.limit_in_bytes", &LIMIT.to_string()),
        Layout::V2 => cg.write("memory", "memory.high", &LIMIT.to_string()),
    }
    .unwrap();
    cg
}

#[test]
fn a_container_under_memory_pressure_is_woken_and_its_idle_neighbour_is_not() {
    let d = Daemon::start(&["--enable-psi-poll"]);
    let file = BigFile::new();
    let (ua, ub);
    let a = memory_limited("psi-hog");
    let b = memory_limited("psi-idle");
    (ua, ub) = (Unified::for_group(&a), Unified::for_group(&b));
    // The churn: every pass drops the file's pages, so each read charges the group
    // again and reclaims (memory stall).
    let hog = format!(
        "{join}( while :; do python3 -c 'import os,sys; f=os.open(sys.argv[1],os.O_RDONLY); \
         os.posix_fadvise(f,0,0,os.POSIX_FADV_DONTNEED)' '{f}'; cat '{f}' >/dev/null; done ) &\n\
         H=$!\n{poll}kill $H\n",
        join = ua.join(),
        f = file.0.display(),
        poll = poller(TRIGGER, 15_000),
    );
    let idle = format!("{}{}", ub.join(), poller(TRIGGER, 8_000));
    let mnt = d.mnt.clone();
    let neighbour = std::thread::spawn(move || {
        let out = run_timeout(&b, &mnt, &idle, Duration::from_secs(60));
        let text = out.ok().to_string();
        drop(b);
        text
    });
    let out = run_timeout(&a, &d.mnt, &hog, Duration::from_secs(60));
    let hog_text = out.ok().to_string();
    let idle_text = neighbour.join().unwrap();
    println!("hog: {hog_text}idle: {idle_text}");
    let event = hog_text
        .lines()
        .find(|l| l.starts_with("event"))
        .unwrap_or_else(|| panic!("no event under pressure: {hog_text}"));
    let revents: i32 = event.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(revents & libc::POLLPRI as i32 != 0, "{event}");
    assert!(
        idle_text.lines().any(|l| l == "none"),
        "the idle neighbour was woken: {idle_text}"
    );
    drop((ua, ub));
}

#[test]
fn triggers_are_checked_and_bounded() {
    let d = Daemon::start(&["--enable-psi-poll"]);
    let a = memory_limited("psi-bad");
    let ua = Unified::for_group(&a);
    let script = format!(
        "{join}python3 -c '
import errno, os, sys
p = sys.argv[1] + \"/proc/pressure/memory\"
def write(fd, b):
    try:
        os.write(fd, b)
        return 0
    except OSError as e:
        return e.errno
for bad in [b\"bogus\\n\", b\"some 0 2000000\\n\", b\"some 1 100\\n\", b\"some 150000 2000000\"]:
    fd = os.open(p, os.O_RDWR)
    print(\"bad\", write(fd, bad))
    os.close(fd)
fd = os.open(p, os.O_RDWR)
print(\"first\", write(fd, b\"some 150000 2000000\\0\"))
print(\"second\", write(fd, b\"some 150000 2000000\\0\"))
held = [fd]
for i in range(16):
    f = os.open(p, os.O_RDWR)
    held.append(f)
    r = write(f, b\"full 150000 2000000\\n\")
    if r:
        print(\"limit\", i + 1, r)
        break
for f in held:
    os.close(f)
f = os.open(p, os.O_RDWR)
print(\"after close\", write(f, b\"some 150000 2000000\\n\"))
try:
    os.open(sys.argv[1] + \"/proc/meminfo\", os.O_RDWR)
except OSError as e:
    print(\"meminfo\", e.errno)
' \"$E2E_MNT\"\n",
        join = ua.join()
    );
    let text = run(&a, &d.mnt, &script).ok().to_string();
    let bad: Vec<&str> = text.lines().filter(|l| l.starts_with("bad ")).collect();
    assert_eq!(bad.len(), 4, "{text}");
    for l in bad {
        assert_eq!(l, format!("bad {}", libc::EINVAL), "{text}");
    }
    assert!(text.contains("first 0\n"), "{text}");
    assert!(
        text.contains(&format!("second {}\n", libc::EBUSY)),
        "{text}"
    );
    // One trigger held by `first`, fifteen more fit, the seventeenth does not.
    assert!(
        text.contains(&format!("limit 16 {}\n", libc::ENOSPC)),
        "{text}"
    );
    assert!(text.contains("after close 0\n"), "{text}");
    assert!(
        text.contains(&format!("meminfo {}\n", libc::EACCES)),
        "{text}"
    );
    drop(ua);
}

/// Replace `d`'s worker with one started under this limit on open descriptors (soft,
/// hard): a worker's limit is its supervisor's, so it is set there first. The new
/// worker's pid.
fn worker_under_open_file_limit(d: &Daemon, soft: u64, hard: u64) -> u32 {
    let limit = rustix::process::Rlimit {
        current: Some(soft),
        maximum: Some(hard),
    };
    let sup = rustix::process::Pid::from_raw(d.pid as i32).unwrap();
    rustix::process::prlimit(Some(sup), rustix::process::Resource::Nofile, limit).unwrap();
    // An upgrade asked before the first worker serves is ignored.
    poll(DEADLINE, "the first worker serving", || {
        d.log_text().contains("is serving").then_some(())
    });
    d.upgrade();
    d.workers()[0]
}

/// Registers as many as 16 triggers on argv[1]'s `proc/pressure/memory`, one a
/// descriptor, writes `<registered> <errno of the first failure, or 0>` to argv[2], and
/// holds them until killed.
const HOLDER: &str = r#"
import os, sys, time
p = sys.argv[1] + "/proc/pressure/memory"
held, ok, err = [], 0, 0
for i in range(16):
    try:
        f = os.open(p, os.O_RDWR)
        held.append(f)
        os.write(f, b"some 150000 2000000\n")
        ok += 1
    except OSError as e:
        err = e.errno
        break
with open(sys.argv[2] + ".tmp", "w") as out:
    out.write("%d %d\n" % (ok, err))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(600)
"#;

/// `n` containers running python `script` with the mount and `<out>/<i>` as its
/// arguments: they share one group (and, on a hybrid host, one cgroup2 group for their
/// PSI); each is a pid namespace of its own.
fn containers_running(
    n: usize,
    script: &str,
    cg: &Cgroup,
    unified: &Unified,
    d: &Daemon,
    out: &std::path::Path,
) -> Vec<std::process::Child> {
    let mut groups = cg.procs_files();
    groups.extend(unified.0.iter().map(|d| d.join("cgroup.procs")));
    let join: String = groups
        .iter()
        .map(|f| format!("echo $$ > '{}'\n", f.display()))
        .collect();
    (1..=n)
        .map(|i| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "{join}exec unshare -p -f --kill-child python3 -c \"$SCRIPT\" '{}' '{}/{i}'",
                    d.mnt.display(),
                    out.display()
                ))
                .env("SCRIPT", script)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect()
}

/// Each trigger holds one of the worker's descriptors. Under a limit of 256 of them,
/// 15 containers asking 16 triggers each (240, within every container's own bound)
/// would leave the worker none to open a neighbour's cgroup files with, and every
/// container's reads would fail (`EIO`). Containers together get half the limit, 128;
/// the next write fails with `ENOSPC`, said in the log, and a neighbour's `meminfo`
/// is still its own.
#[test]
fn triggers_of_all_containers_leave_descriptors_for_every_read() {
    const HOLDERS: usize = 15;
    let d = Daemon::start(&["--enable-psi-poll"]);
    let worker = worker_under_open_file_limit(&d, 256, 256);
    let open_fds = || {
        std::fs::read_dir(format!("/proc/{worker}/fd"))
            .unwrap()
            .count()
    };
    let before = open_fds();
    let a = Cgroup::new("psi-hoard", &[]);
    let ua = Unified::for_group(&a);
    let out = tempfile::tempdir().unwrap();
    let mut holders = containers_running(HOLDERS, HOLDER, &a, &ua, &d, out.path());
    let counts: Vec<(usize, i32)> = poll(DEADLINE, "every holder's count", || {
        let texts: Vec<String> = (1..=HOLDERS)
            .map(|i| std::fs::read_to_string(out.path().join(i.to_string())))
            .collect::<Result<_, _>>()
            .ok()?;
        Some(
            texts
                .iter()
                .map(|t| {
                    let mut w = t.split_whitespace().map(|v| v.parse::<i64>().unwrap());
                    (w.next().unwrap() as usize, w.next().unwrap() as i32)
                })
                .collect(),
        )
    });
    let registered: usize = counts.iter().map(|c| c.0).sum();
    assert_eq!(registered, 128, "triggers registered in all: {counts:?}");
    assert!(
        counts
            .iter()
            .all(|&(n, e)| n == 16 && e == 0 || n < 16 && e == libc::ENOSPC),
        "each holder: 16, or fewer and ENOSPC: {counts:?}"
    );
    let neighbour = Cgroup::with_memory_limit("psi-neighbour", 192 * MIB);
    let read = run(&neighbour, &d.mnt, "head -n1 /proc/meminfo");
    assert_eq!(
        meminfo_get(&read.stdout, "MemTotal"),
        Some(192 * 1024),
        "the neighbour's meminfo while the triggers are held: {read:?}"
    );
    // The triggers' 128 and a few a read may have open meanwhile.
    let fds = open_fds();
    assert!(
        fds <= before + 128 + 8,
        "the worker holds {fds} descriptors, {before} before the triggers"
    );
    let log = d.log_text();
    assert!(log.contains("PSI triggers: containers hold 128"), "{log}");
    assert!(!log.contains("Too many open files"), "{log}");
    for h in &mut holders {
        let _ = h.kill();
        let _ = h.wait();
    }
    drop(a);
    drop(ua);
}

/// A worker started under systemd's soft limit of 1 024 descriptors raises it to the
/// hard one (at most 2^20) itself, so that the half containers' triggers may take is
/// not 512.
#[test]
fn a_worker_raises_its_open_file_limit_to_the_hard_one() {
    let d = Daemon::start(&["--enable-psi-poll"]);
    let worker = worker_under_open_file_limit(&d, 1024, 8192);
    let limit = testkit::proc::open_files_limit(worker).unwrap();
    assert_eq!(limit, ("8192".into(), "8192".into()));
}

#[test]
fn without_the_flag_pressure_files_are_read_only_and_poll_answers_at_once() {
    let d = Daemon::start(&[]);
    let a = Cgroup::new("psi-off", &[]);
    let script = "python3 -c '
import os, select, sys, time
p = sys.argv[1] + \"/proc/pressure/memory\"
try:
    os.open(p, os.O_RDWR)
except OSError as e:
    print(\"open\", e.errno)
fd = os.open(p, os.O_RDONLY)
q = select.poll()
q.register(fd, select.POLLPRI)
t = time.monotonic()
print(\"ready\", len(q.poll(5000)), time.monotonic() - t < 1)
' \"$E2E_MNT\"\n";
    let text = run(&a, &d.mnt, script).ok().to_string();
    assert!(text.contains(&format!("open {}\n", libc::EROFS)), "{text}");
    assert!(text.contains("ready 1 True"), "{text}");
}

#[test]
fn a_waiting_poller_is_woken_when_its_worker_is_replaced() {
    poller_woken_when(|d| d.upgrade());
}

/// A worker killed while a poller waits for its trigger cannot wake it; the supervisor
/// does, from the handles the worker kept in the shared state.
#[test]
fn a_waiting_poller_is_woken_when_its_worker_is_killed() {
    poller_woken_when(|d| {
        let w = d.workers();
        assert_eq!(w.len(), 1, "{w:?}");
        signal(w[0], rustix::process::Signal::KILL).unwrap();
        poll(DEADLINE, "the woken pollers in the log", || {
            d.log_text()
                .contains("woke 1 PSI trigger pollers")
                .then_some(())
        });
    });
}

/// A poller waits on a trigger with a 30 s timeout while `replace` replaces the worker:
/// it must be woken within seconds, and told its trigger is gone.
fn poller_woken_when(replace: impl FnOnce(&Daemon)) {
    let d = Daemon::start(&["--enable-psi-poll"]);
    let a = memory_limited("psi-upgrade");
    let ua = Unified::for_group(&a);
    let script = format!("{}{}", ua.join(), poller(TRIGGER, 30_000));
    let mnt = d.mnt.clone();
    let waiter = std::thread::spawn(move || {
        let out = run_timeout(&a, &mnt, &script, Duration::from_secs(60));
        (out.ok().to_string(), a)
    });
    // Armed and waiting by then (a container starts in well under a second).
    std::thread::sleep(Duration::from_secs(3));
    replace(&d);
    let (text, a) = waiter.join().unwrap();
    drop(a);
    let event = text
        .lines()
        .find(|l| l.starts_with("event"))
        .unwrap_or_else(|| panic!("the poller was not woken: {text}"));
    let v: Vec<&str> = event.split_whitespace().collect();
    let revents: i32 = v[1].parse().unwrap();
    let secs: f64 = v[2].parse().unwrap();
    // Answered by the new worker as a handle without a trigger, long before the
    // poller's own timeout.
    assert!(revents & libc::POLLERR as i32 != 0, "{event}");
    println!("{event}");
    assert!((1.0..20.0).contains(&secs), "{event}");
    drop(ua);
}

/// Registers 16 triggers on argv[1]'s `proc/pressure/memory`, writes `armed` to
/// argv[2] once a thread polls each of them (60 s at most), and when all have
/// returned `<woken with POLLERR> <slowest, in seconds>` to argv[2].done.
const WAITERS: &str = r#"
import os, select, sys, threading, time
p = sys.argv[1] + "/proc/pressure/memory"
fds = []
for i in range(16):
    f = os.open(p, os.O_RDWR)
    os.write(f, b"some 150000 2000000\n")
    fds.append(f)
woken, slowest = [], [0.0]
def wait(fd):
    q = select.poll()
    q.register(fd, select.POLLPRI)
    t = time.monotonic()
    ev = q.poll(60000)
    if ev and ev[0][1] & select.POLLERR:
        woken.append(fd)
    slowest[0] = max(slowest[0], time.monotonic() - t)
ts = [threading.Thread(target=wait, args=(f,)) for f in fds]
[t.start() for t in ts]
time.sleep(1)
with open(sys.argv[2] + ".tmp", "w") as out:
    out.write("armed\n")
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
[t.join() for t in ts]
with open(sys.argv[2] + ".tmp", "w") as out:
    out.write("%d %.1f\n" % (len(woken), slowest[0]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2] + ".done")
"#;

/// More pollers than the first page of the shared state holds slots for (256) wait on
/// their triggers, 16 in each of 20 containers, one thread each, when the worker is
/// SIGKILLed: the supervisor wakes every one (they had each been kept), and the next
/// worker tells each its trigger is gone, long before its own timeout.
#[test]
fn every_poller_of_many_containers_is_woken_when_its_worker_is_killed() {
    const CONTAINERS: usize = 20;
    require_tools(&["python3"], "apt-get install python3").unwrap();
    let d = Daemon::start(&["--enable-psi-poll"]);
    poll(DEADLINE, "the first worker serving", || {
        d.log_text().contains("is serving").then_some(())
    });
    let a = Cgroup::new("psi-many", &[]);
    let ua = Unified::for_group(&a);
    let out = tempfile::tempdir().unwrap();
    let mut waiters = containers_running(CONTAINERS, WAITERS, &a, &ua, &d, out.path());
    poll(DEADLINE, "every container's pollers armed", || {
        (1..=CONTAINERS)
            .all(|i| out.path().join(i.to_string()).exists())
            .then_some(())
    });
    let w = d.workers();
    assert_eq!(w.len(), 1, "{w:?}");
    signal(w[0], rustix::process::Signal::KILL).unwrap();
    let results: Vec<(usize, f64)> = poll(
        Duration::from_secs(40),
        "every container's pollers back",
        || {
            (1..=CONTAINERS)
                .map(|i| std::fs::read_to_string(out.path().join(format!("{i}.done"))).ok())
                .collect::<Option<Vec<String>>>()
        },
    )
    .iter()
    .map(|t| {
        let mut v = t.split_whitespace();
        (
            v.next().unwrap().parse().unwrap(),
            v.next().unwrap().parse().unwrap(),
        )
    })
    .collect();
    for h in &mut waiters {
        let _ = h.kill();
        let _ = h.wait();
    }
    let woken: usize = results.iter().map(|r| r.0).sum();
    assert_eq!(
        woken,
        16 * CONTAINERS,
        "pollers woken with POLLERR, per container: {results:?}\n{}",
        d.log_text()
    );
    assert!(results.iter().all(|r| r.1 < 30.0), "{results:?}");
    // Woken by the supervisor, more than the first page's 256 slots: a poll still on
    // its way when the worker died is answered by the next worker instead.
    let log = d.log_text();
    let woke: usize = log
        .split("woke ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pollers woken by the supervisor:\n{log}"));
    assert!(woke > 256 && woke <= 16 * CONTAINERS, "{log}");
    drop(a);
    drop(ua);
}
