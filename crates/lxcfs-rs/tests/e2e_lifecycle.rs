//! End to end: starting, refusing to start, stopping, and recovering from a crash.
//!
//! Needs root and /dev/fuse: fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use rustix::process::Signal;

/// Run the daemon expecting it to refuse: it must exit by itself. Whatever it mounts
/// anyway is unmounted again, even when the run times out.
fn refused(args: &[&str], mnt: &Path, pidfile: &Path) -> Output {
    require_env();
    struct Cleanup<'a>(&'a Path, HashSet<u64>);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            if fuse_mounts_at(self.0)
                .iter()
                .any(|m| !self.1.contains(&m.id))
            {
                let _ = rustix::mount::unmount(self.0, rustix::mount::UnmountFlags::DETACH);
            }
        }
    }
    let _cleanup = Cleanup(mnt, fuse_mounts_at(mnt).iter().map(|m| m.id).collect());
    run_deadline(
        Command::new(lxcfs_rs())
            .arg("-p")
            .arg(pidfile)
            .args(args)
            .arg(mnt)
            .env_remove("RUST_LOG"),
        DEADLINE,
    )
}

/// Exit code 1 and exactly one line on stderr mentioning `needle`.
fn assert_one_line_error(out: &Output, needle: &str) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit status {}; stderr:\n{}",
        out.status,
        out.stderr
    );
    let lines = out.stderr_lines();
    assert_eq!(
        lines.len(),
        1,
        "want one line on stderr, got:\n{}",
        out.stderr
    );
    assert!(
        lines[0].contains(needle),
        "the error should mention {needle:?}: {}",
        lines[0]
    );
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&unique("lc"))
        .tempdir()
        .unwrap()
}

#[test]
fn sigterm_unmounts_removes_the_pidfile_and_exits_0() {
    let mut d = Daemon::start(&[]);
    let pid = fs::read_to_string(&d.pidfile).unwrap();
    assert_eq!(pid.trim(), d.pid.to_string(), "pidfile content");
    let st = d.stop();
    assert_eq!(st.code(), Some(0), "exit status {st}:\n{}", d.log_text());
    assert!(!is_mounted(&d.mnt), "still mounted after SIGTERM");
    assert!(!d.pidfile.exists(), "pidfile left behind");
    let log = d.log_text();
    assert!(!log.contains("panic"), "log:\n{log}");
}

/// Stopping the daemon while containers still have its files bind-mounted (a restart or
/// an upgrade on a busy host): it must exit promptly, not wait for every container to go;
/// the containers' files then fail (ENOTCONN) instead of hanging.
#[test]
fn sigterm_exits_while_a_container_still_uses_the_files() {
    let mut d = Daemon::start(&[]);
    let cg = Cgroup::with_memory_limit("busy", 256 * MIB);
    let c = Running::start(&cg, &d.mnt);
    let out = c.exec("head -n1 /proc/meminfo");
    assert_eq!(meminfo_value(out.ok(), "MemTotal"), 256 * 1024);

    let st = d.stop_within(Signal::TERM, Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "exit status {st}:\n{}", d.log_text());
    assert!(!is_mounted(&d.mnt), "still mounted after SIGTERM");
    assert!(!d.pidfile.exists(), "pidfile left behind");
    let out = c.exec("cat /proc/meminfo");
    assert!(
        !out.status.success(),
        "a container read after the daemon exited succeeded: {}",
        out.stdout
    );
}

#[test]
fn sigint_also_unmounts_and_exits_0() {
    let mut d = Daemon::start(&[]);
    let st = d.stop_with(Signal::INT);
    assert_eq!(st.code(), Some(0), "exit status {st}:\n{}", d.log_text());
    assert!(!is_mounted(&d.mnt));
    assert!(!d.pidfile.exists());
}

#[test]
fn a_second_daemon_on_a_live_mountpoint_is_refused() {
    let mut d = Daemon::start(&[]);
    let other = tempdir();
    let out = refused(&[], &d.mnt, &other.path().join("second.pid"));
    assert_one_line_error(&out, &d.mnt.to_string_lossy());
    assert_eq!(
        fuse_mounts_at(&d.mnt).len(),
        1,
        "mounts stacked at the mountpoint"
    );
    assert!(d.alive(), "the first daemon died");
    let text = read_deadline(&d.path("proc/meminfo"), DEADLINE).unwrap();
    assert!(
        text.starts_with("MemTotal:"),
        "the first daemon stopped serving"
    );
    assert!(
        !other.path().join("second.pid").exists(),
        "refused daemon left a pidfile"
    );
}

#[test]
fn missing_or_non_directory_mountpoints_are_refused() {
    let dir = tempdir();
    let pidfile = dir.path().join("x.pid");

    let missing = dir.path().join("does-not-exist");
    let out = refused(&[], &missing, &pidfile);
    assert_one_line_error(&out, "does-not-exist");
    assert!(!missing.exists());

    let file = dir.path().join("a-file");
    fs::write(&file, "").unwrap();
    let out = refused(&[], &file, &pidfile);
    assert_one_line_error(&out, "a-file");
    assert!(
        out.stderr.contains("not a directory"),
        "stderr: {}",
        out.stderr
    );
    assert!(!pidfile.exists(), "refused daemon left a pidfile");
}

#[test]
fn a_second_daemon_with_the_same_pidfile_is_refused() {
    let mut d = Daemon::start(&[]);
    let other = tempdir();
    let out = refused(&[], other.path(), &d.pidfile);
    assert_one_line_error(&out, "pidfile");
    assert!(
        !is_mounted(other.path()),
        "the refused daemon mounted anyway"
    );
    assert!(d.alive());
    assert_eq!(
        fs::read_to_string(&d.pidfile).unwrap().trim(),
        d.pid.to_string(),
        "the refused daemon changed the running daemon's pidfile"
    );
}

/// SIGKILL the whole daemon (supervisor and worker: what LXCFS users meet when it
/// crashes), check that its mount is left dead, start a new daemon on the same
/// mountpoint with the same (stale, unlocked) pidfile: it must clear the dead mount and
/// serve. `stat_root_first`: someone stat'ed the mountpoint while the first daemon ran
/// (`ls -l`, a runtime checking its bind source…), so the kernel holds the root's
/// attributes (TTL 1 h) and stat(2) on the dead mount answers from that cache instead of
/// ENOTCONN.
fn restart_after_sigkill(stat_root_first: bool) {
    let mut d = Daemon::start(&[]);
    if stat_root_first {
        assert!(fs::metadata(&d.mnt).unwrap().is_dir());
    }
    let workers = worker_pids(d.pid);
    assert!(!workers.is_empty(), "no worker under supervisor {}", d.pid);
    let st = d.stop_with(Signal::KILL);
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    for &w in &workers {
        let _ = signal(w, Signal::KILL);
    }
    let deadline = std::time::Instant::now() + DEADLINE;
    while workers.iter().any(|&p| is_running(p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "workers survived SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The mount outlives its daemon: a dead FUSE connection.
    assert!(is_mounted(&d.mnt), "no mount left after SIGKILL");
    let e = read_deadline(&d.path("proc/meminfo"), DEADLINE)
        .err()
        .map(|e| e.raw_os_error());
    // ENOTCONN, or ECONNABORTED for a connection aborted with abort-error semantics.
    assert!(
        matches!(e, Some(Some(libc::ENOTCONN | libc::ECONNABORTED))),
        "read from a dead mount: {e:?}"
    );
    if !stat_root_first {
        let e = fs::metadata(&d.mnt).expect_err("stat of a dead FUSE mount succeeded");
        assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "stat: {e}");
    }

    let mut d2 = d.restart(&[]);
    assert_eq!(
        fuse_mounts_at(&d.mnt).len(),
        1,
        "the dead mount was not removed: {:?}",
        fuse_mounts_at(&d.mnt)
    );
    let text = read_deadline(&d2.path("proc/meminfo"), DEADLINE).unwrap();
    assert!(text.starts_with("MemTotal:"), "{text}");
    assert_eq!(
        fs::read_to_string(&d2.pidfile).unwrap().trim(),
        d2.pid.to_string()
    );

    let st = d2.stop();
    assert_eq!(st.code(), Some(0), "{}", d2.log_text());
    assert!(!is_mounted(&d.mnt), "{:?}", fuse_mounts_at(&d.mnt));
    assert!(!d.pidfile.exists());
}

#[test]
fn after_sigkill_the_stale_mount_is_cleaned_up_by_the_next_daemon() {
    restart_after_sigkill(false);
}

#[test]
fn after_sigkill_a_stale_mount_that_was_stated_is_cleaned_up_too() {
    restart_after_sigkill(true);
}

/// The supervisor alone is SIGKILLed: its worker keeps serving (the mount stays
/// alive, files keep working), and the next daemon adopts that worker's connection
/// instead of refusing or remounting, then replaces the orphan with its own worker.
#[test]
fn after_the_supervisor_dies_its_worker_serves_and_the_next_daemon_adopts_it() {
    let mut d = Daemon::start(&[]);
    let orphans = worker_pids(d.pid);
    assert_eq!(orphans.len(), 1, "workers of {}: {orphans:?}", d.pid);
    let st = d.stop_with(Signal::KILL);
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    let text = read_deadline(&d.path("proc/meminfo"), DEADLINE).unwrap();
    assert!(
        text.starts_with("MemTotal:"),
        "orphaned worker stopped serving: {text}"
    );

    let mut d2 = d.restart(&[]);
    assert_eq!(
        fuse_mounts_at(&d.mnt).len(),
        1,
        "{:?}",
        fuse_mounts_at(&d.mnt)
    );
    let deadline = std::time::Instant::now() + DEADLINE;
    while orphans.iter().any(|&p| is_running(p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the orphan was not replaced\n{}",
            d2.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        d2.log_text().contains("adopting its connection"),
        "{}",
        d2.log_text()
    );
    let text = read_deadline(&d2.path("proc/meminfo"), DEADLINE).unwrap();
    assert!(text.starts_with("MemTotal:"), "{text}");
    let st = d2.stop();
    assert_eq!(st.code(), Some(0), "{}", d2.log_text());
    assert!(!is_mounted(&d.mnt));
}

#[test]
fn the_served_files_are_those_runtimes_bind() {
    let d = Daemon::start(&[]);
    for f in PROC_FILES {
        assert!(d.path("proc").join(f).is_file(), "proc/{f}");
    }
    assert!(d.path("sys/devices/system/cpu/online").is_file());
}
