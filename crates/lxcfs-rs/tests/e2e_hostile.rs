//! End to end: what a container (or the host around the daemon) can do to the daemon
//! without stopping it from serving everyone: a log that cannot be written, and the
//! system calls a reader may make on a served file besides open/read/close.
//!
//! Needs root, /dev/fuse and writable cgroup v1 hierarchies: fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::process::Stdio;

use common::*;
use rustix::process::Signal;

/// SIGKILL the daemon's worker and wait until a new one serves: each round makes the
/// supervisor and the new worker log several lines.
fn kill_worker_and_wait(d: &Daemon) {
    let old = d.workers();
    assert!(!old.is_empty(), "no worker to kill");
    for &w in &old {
        let _ = signal(w, Signal::KILL);
    }
    poll(DEADLINE, "a new worker", || {
        let now = d.workers();
        (!now.is_empty() && now.iter().all(|w| !old.contains(w))).then_some(())
    });
}

/// After the log broke: the supervisor lives, a container still gets its own values,
/// and the host reader too.
fn assert_still_serving(d: &mut Daemon) {
    let cg = Cgroup::with_memory_limit("logless", 192 * MIB);
    let out = run(&cg, &d.mnt, "head -n1 /proc/meminfo");
    assert_eq!(
        meminfo_get(&out.stdout, "MemTotal"),
        Some(192 * 1024),
        "a container's meminfo after the log broke: {:?} {:?}",
        out.stdout,
        out.stderr
    );
    let host = read_deadline(&d.path("proc/uptime"), DEADLINE).unwrap();
    assert!(!host.is_empty());
    assert!(d.alive(), "the supervisor exited after its log broke");
}

#[test]
fn a_log_reader_that_goes_away_does_not_stop_the_serving() {
    // CLOEXEC: the daemon must not inherit (and so keep alive) the reading end.
    let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let mut d = Daemon::start_stderr(&[], Stdio::from(writer));
    // The reader of the log goes away (`| tee` killed, a journal stream restarting).
    drop(reader);
    for _ in 0..3 {
        kill_worker_and_wait(&d);
    }
    assert_still_serving(&mut d);
    // Once the log is gone, the next exit is still clean.
    assert!(d.stop().success());
}

#[test]
fn a_full_disk_for_the_log_does_not_stop_the_serving() {
    // /dev/full: every write fails with ENOSPC, as on a full disk.
    let full = File::options().write(true).open("/dev/full").unwrap();
    let mut d = Daemon::start_stderr(&[], Stdio::from(full));
    for _ in 0..3 {
        kill_worker_and_wait(&d);
    }
    assert_still_serving(&mut d);
    assert!(d.stop().success());
}
