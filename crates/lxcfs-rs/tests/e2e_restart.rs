//! Never break a container's files: worker crashes, live upgrade, crash loops.
//!
//! A container reads continuously while its serving worker is SIGKILLed or replaced;
//! every read must succeed with the container's own values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use rustix::process::Signal;

/// A container script: `n` reads of meminfo's first line in `readers` parallel loops,
/// each checked for the 256 MiB limit; `ok=… bad=…` at the end. It touches `mark` once
/// the loops run, so the test knows when to start breaking things.
fn reading_script(n: usize, readers: usize, mark: &Path) -> String {
    format!(
        r#"
loop() {{
    ok=0; bad=0; i=0
    while [ $i -lt {n} ]; do
        if v=$(head -1 /proc/meminfo 2>&1); then
            case "$v" in *262144*) ok=$((ok+1));; *) bad=$((bad+1)); echo "BAD: $v";; esac
        else
            bad=$((bad+1)); echo "ERR: $v"
        fi
        i=$((i+1))
    done
    echo "ok=$ok bad=$bad"
}}
r=0
while [ $r -lt {readers} ]; do loop & r=$((r+1)); done
touch {mark}
wait
"#,
        mark = mark.display()
    )
}

fn totals(out: &str) -> (usize, usize) {
    let mut ok = 0;
    let mut bad = 0;
    for l in out.lines() {
        if let Some(rest) = l.strip_prefix("ok=") {
            let (o, b) = rest.split_once(" bad=").unwrap();
            ok += o.parse::<usize>().unwrap();
            bad += b.parse::<usize>().unwrap();
        }
    }
    (ok, bad)
}

fn wait_for(path: &Path) {
    poll(DEADLINE, "the container's readers to start", || {
        path.exists().then_some(())
    });
}

/// Kill the current worker and wait until another one serves in its place.
fn kill_worker(d: &Daemon) {
    let before = d.workers();
    assert_eq!(before.len(), 1, "workers: {before:?}\n{}", d.log_text());
    signal(before[0], Signal::KILL).unwrap();
    poll(DEADLINE, "a new worker", || {
        let now = d.workers();
        (now.len() == 1 && now[0] != before[0] && !is_running(before[0])).then_some(())
    });
}

fn mark(tag: &str) -> PathBuf {
    std::env::temp_dir().join(unique(tag))
}

#[test]
fn reads_survive_two_worker_kills_and_an_upgrade() {
    let d = Daemon::start(&[]);
    let cg = Cgroup::with_memory_limit("restart", 256 * MIB);
    let m = mark("restart-mark");
    let script = reading_script(300, 1, &m);
    let mnt = d.mnt.clone();
    let reader = std::thread::spawn(move || run(&cg, &mnt, &script));
    wait_for(&m);
    std::thread::sleep(Duration::from_millis(300));
    kill_worker(&d);
    std::thread::sleep(Duration::from_millis(300));
    kill_worker(&d);
    std::thread::sleep(Duration::from_millis(300));
    d.upgrade();
    let out = reader.join().unwrap();
    let _ = std::fs::remove_file(&m);
    let (ok, bad) = totals(out.ok());
    assert_eq!(
        (ok, bad),
        (300, 0),
        "{}\n--- daemon\n{}",
        out.ok(),
        d.log_text()
    );
    let log = d.log_text();
    assert!(log.contains("SIGKILL"), "{log}");
    assert!(log.contains("SIGUSR1"), "{log}");
}

#[test]
fn a_burst_of_concurrent_readers_survives_worker_kills() {
    let d = Daemon::start(&[]);
    let cg = Cgroup::with_memory_limit("burst", 256 * MIB);
    let m = mark("burst-mark");
    let script = reading_script(150, 6, &m);
    let mnt = d.mnt.clone();
    let reader = std::thread::spawn(move || run(&cg, &mnt, &script));
    wait_for(&m);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(250));
        kill_worker(&d);
    }
    let out = reader.join().unwrap();
    let _ = std::fs::remove_file(&m);
    let (ok, bad) = totals(out.ok());
    assert_eq!(
        (ok, bad),
        (900, 0),
        "{}\n--- daemon\n{}",
        out.ok(),
        d.log_text()
    );
}

/// A worker that crashes on every request of some file (a bug in virtualizing it):
/// after two crashes the next worker serves the host's files, so no read waits longer
/// than a second; a virtualizing worker is tried again after 10 s, and the poisoned
/// request puts the safe one back just as fast. The supervisor says each step, never
/// spins, and SIGTERM still works.
#[test]
fn a_worker_crashing_on_every_request_never_stalls_readers() {
    let mut d = Daemon::start_env(&[], &[("LXCFS_RS_FAULT", "abort-on=loadavg")]);
    // Other files are virtualized as usual.
    let cg = Cgroup::with_memory_limit("poison", 128 * MIB);
    let out = run(&cg, &d.mnt, "head -n1 /proc/meminfo");
    assert_eq!(meminfo_get(&out.stdout, "MemTotal"), Some(128 * 1024));
    let cpu_before = cpu_ticks(d.pid);
    let timed_read = |what: &str| {
        let t = Instant::now();
        let text = read_deadline(&d.path("proc/loadavg"), DEADLINE)
            .unwrap_or_else(|e| panic!("{what}: {e}\n{}", d.log_text()));
        let took = t.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "{what}: a read waited {took:?} on crashing workers\n{}",
            d.log_text()
        );
        assert_eq!(text.split_whitespace().count(), 5, "{what}: {text:?}");
    };
    timed_read("the first read of the poisoned file");
    let log = d.log_text();
    assert!(log.contains("SIGABRT"), "{log}");
    assert!(
        log.contains("serving every reader the host's own files"),
        "{log}"
    );
    // In safe mode every reader gets the host's files, containers included.
    let out = run(&cg, &d.mnt, "head -n1 /proc/meminfo");
    assert_eq!(
        meminfo_get(&out.stdout, "MemTotal"),
        Some(host_mem_total_kb()),
        "safe mode serves the host's meminfo"
    );
    // The retry after 10 s: a virtualizing worker starts and serves...
    poll(DEADLINE, "a virtualizing worker tried again", || {
        d.log_text()
            .contains("trying a virtualizing worker again")
            .then_some(())
    });
    poll(DEADLINE, "the retried worker serving", || {
        let out = run(&cg, &d.mnt, "head -n1 /proc/meminfo");
        (meminfo_get(&out.stdout, "MemTotal") == Some(128 * 1024)).then_some(())
    });
    // ...until the poisoned request comes again. The safe worker on its way out may
    // still answer it (it reads the device until it has exited), so read until the
    // retry has crashed and the next safe worker is in: every read within a second.
    poll(
        DEADLINE,
        "a safe worker again after the retry's crash",
        || {
            timed_read("the poisoned file read again");
            (d.log_text().matches("(safe mode)").count() >= 2).then_some(())
        },
    );
    let log = d.log_text();
    let starts = log.matches("started worker").count();
    assert!(
        (5..=8).contains(&starts),
        "{starts} worker starts, expected 1 + 2 crashed + safe + retry + safe\n{log}"
    );
    let cpu = cpu_ticks(d.pid) - cpu_before;
    assert!(cpu < 100, "the supervisor used {cpu} ticks of CPU");
    let t = Instant::now();
    let st = d.stop();
    assert_eq!(st.code(), Some(0), "{}", d.log_text());
    assert!(t.elapsed() < Duration::from_secs(10));
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = s.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Supervisor and worker both die (what LXCFS users meet on every crash): the
/// container's files are dead; after a new daemon starts, `lxcfs-rs --remount` binds
/// them again inside the running container, which reads its own values again.
#[test]
fn remount_revives_a_running_containers_files_after_both_processes_died() {
    let mut d = Daemon::start(&[]);
    let cg = Cgroup::with_memory_limit("remount", 256 * MIB);
    let ctr = Running::start(&cg, &d.mnt);
    let first = ctr.exec("head -1 /proc/meminfo");
    assert!(first.ok().contains("262144"), "{}", first.ok());

    let workers = d.workers();
    d.stop_with(rustix::process::Signal::KILL);
    for &w in &workers {
        let _ = signal(w, Signal::KILL);
    }
    poll(DEADLINE, "the workers to die", || {
        workers.iter().all(|&w| !is_running(w)).then_some(())
    });
    let dead = ctr.exec("head -1 /proc/meminfo; echo rc=$?");
    assert!(
        dead.stdout.contains("Transport endpoint is not connected")
            || dead.stderr.contains("Transport endpoint is not connected")
            || dead.stderr.contains("Software caused connection abort"),
        "expected a dead file: {} {}",
        dead.stdout,
        dead.stderr
    );

    let d2 = d.restart(&[]);
    let out = run_deadline(
        std::process::Command::new(lxcfs_rs())
            .arg("--remount")
            .arg(&d2.mnt),
        DEADLINE,
    );
    assert!(
        out.status.success(),
        "--remount failed: {} {}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("rebound"), "{}", out.stdout);
    let again = ctr.exec("head -1 /proc/meminfo");
    assert!(again.ok().contains("262144"), "{}", again.ok());
}

/// As before Linux 6.9 (no `FUSE_NOTIFY_RESEND`), forced on any kernel in debug builds.
const NO_RESEND: (&str, &str) = ("LXCFS_RS_NO_RESEND", "1");

/// Without resend, a request the killed worker had taken is answered by the next one
/// from the in-flight table: a container's reader caught inside it gets its own values
/// within a second of the kill, and a reader of another container is not held up.
#[test]
fn without_resend_a_request_of_a_killed_worker_is_answered_by_the_next() {
    let d = Daemon::start_env(&[], &[("LXCFS_RS_FAULT", "stall-first=meminfo"), NO_RESEND]);
    let cg = Cgroup::with_memory_limit("replay", 256 * MIB);
    let mnt = d.mnt.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let out = run(&cg, &mnt, "head -1 /proc/meminfo");
        let _ = tx.send(Instant::now());
        out
    });
    poll(
        DEADLINE,
        "the first worker stuck in the reader's request",
        || {
            d.log_text()
                .contains("fault injection: stalling while rendering")
                .then_some(())
        },
    );
    // Another container's reads go on beside the stuck request.
    let other = Cgroup::with_memory_limit("replay-other", 128 * MIB);
    let out = run(&other, &d.mnt, "cat /proc/uptime");
    assert_eq!(out.ok().split_whitespace().count(), 2, "{out:?}");
    let killed = Instant::now();
    kill_worker(&d);
    let answered = rx
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("the reader still waits\n{}", d.log_text()));
    let out = reader.join().unwrap();
    assert_eq!(
        meminfo_get(&out.stdout, "MemTotal"),
        Some(256 * 1024),
        "{out:?}\n{}",
        d.log_text()
    );
    let took = answered.saturating_duration_since(killed);
    assert!(
        took < Duration::from_secs(1),
        "answered {took:?} after the kill\n{}",
        d.log_text()
    );
    let log = d.log_text();
    assert!(log.contains("LXCFS_RS_NO_RESEND set"), "{log}");
    assert!(log.contains("left by dead worker"), "{log}");
}

/// Without resend, a request that kills every worker that renders it (a poisoned file):
/// the next worker answers it again and dies too, the safe worker after it answers it
/// with the host's file within a second, and a neighbour container reading throughout
/// gets every read answered, its own values or (in safe mode) the host's.
#[test]
fn without_resend_a_poisoned_request_is_answered_after_the_crash_loop() {
    let d = Daemon::start_env(&[], &[("LXCFS_RS_FAULT", "abort-on=loadavg"), NO_RESEND]);
    let cg = Cgroup::with_memory_limit("replay-poison", 256 * MIB);
    let m = mark("replay-poison-mark");
    let host_kb = host_mem_total_kb();
    let script = format!(
        r#"
ok=0; bad=0; i=0
touch {mark}
while [ $i -lt 300 ]; do
    v=$(head -1 /proc/meminfo 2>&1)
    case "$v" in *" 262144 kB"|*" {host_kb} kB") ok=$((ok+1));; *) bad=$((bad+1)); echo "BAD: $v";; esac
    i=$((i+1))
done
echo "ok=$ok bad=$bad"
"#,
        mark = m.display()
    );
    let mnt = d.mnt.clone();
    let neighbour = std::thread::spawn(move || run(&cg, &mnt, &script));
    wait_for(&m);
    let t = Instant::now();
    let text = read_deadline(&d.path("proc/loadavg"), DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    let took = t.elapsed();
    assert_eq!(text.split_whitespace().count(), 5, "{text:?}");
    assert!(
        took < Duration::from_secs(1),
        "the poisoned read waited {took:?}\n{}",
        d.log_text()
    );
    let out = neighbour.join().unwrap();
    let _ = std::fs::remove_file(&m);
    assert_eq!(
        totals(out.ok()),
        (300, 0),
        "{}\n--- daemon\n{}",
        out.ok(),
        d.log_text()
    );
    let log = d.log_text();
    assert!(log.contains("SIGABRT"), "{log}");
    assert!(log.contains("left by dead worker"), "{log}");
    assert!(log.contains("(safe mode)"), "{log}");
}

/// Readers in tight loops while workers are SIGKILLed, without resend: whatever each
/// kill catches in flight is answered by the next worker; no read is lost or fails.
#[test]
fn without_resend_a_burst_of_readers_survives_worker_kills() {
    let d = Daemon::start_env(&[], &[NO_RESEND]);
    let cg = Cgroup::with_memory_limit("replay-burst", 256 * MIB);
    let m = mark("replay-burst-mark");
    let script = reading_script(150, 6, &m);
    let mnt = d.mnt.clone();
    let reader = std::thread::spawn(move || run(&cg, &mnt, &script));
    wait_for(&m);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(250));
        kill_worker(&d);
    }
    let out = reader.join().unwrap();
    let _ = std::fs::remove_file(&m);
    assert_eq!(
        totals(out.ok()),
        (900, 0),
        "{}\n--- daemon\n{}",
        out.ok(),
        d.log_text()
    );
}
