//! End to end: the systemd notify protocol, as `Type=notify` relies on it. The test
//! plays systemd: it binds the datagram socket, passes it in `NOTIFY_SOCKET`, and reads
//! what the daemon says while it starts, live-upgrades (SIGUSR1) and stops.
//!
//! Needs root and /dev/fuse: fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{
    DEADLINE, force_unmount, is_running, lxcfs_rs, read_deadline, require_env, worker_pids,
};
use rustix::process::Signal;

/// One datagram: its `KEY=value` lines in order.
type Message = Vec<(String, String)>;

fn get<'a>(m: &'a Message, key: &str) -> Option<&'a str> {
    m.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The service manager's end: a socket in a temp dir, and the daemons started with it.
struct Manager {
    dir: tempfile::TempDir,
    socket: UnixDatagram,
    children: Vec<Child>,
}

impl Manager {
    fn new() -> Manager {
        require_env();
        let dir = tempfile::Builder::new()
            .prefix(&common::unique("notify"))
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        let socket = UnixDatagram::bind(dir.path().join("notify.sock")).unwrap();
        Manager {
            dir,
            socket,
            children: Vec::new(),
        }
    }

    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// Start a daemon as systemd would: NOTIFY_SOCKET set, no waiting for the mount
    /// (READY=1 is what says it is there).
    fn start(&mut self, extra: &[&str]) -> u32 {
        let log = std::fs::File::create(self.dir.path().join("log")).unwrap();
        let child = Command::new(lxcfs_rs())
            .env("NOTIFY_SOCKET", self.dir.path().join("notify.sock"))
            .env_remove("RUST_LOG")
            .arg("-p")
            .arg(self.dir.path().join("lxcfs-rs.pid"))
            .args(extra)
            .arg(self.mnt())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// The next datagram, or a failure showing the daemon's log.
    fn next(&self) -> Message {
        self.socket.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = self.socket.recv(&mut buf).unwrap_or_else(|e| {
            panic!(
                "no notify message within {DEADLINE:?} ({e}); daemon log:\n{}",
                self.log()
            )
        });
        String::from_utf8(buf[..n].to_vec())
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Nothing more was said within a short while.
    fn assert_quiet(&self) {
        self.socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = vec![0u8; 4096];
        if let Ok(n) = self.socket.recv(&mut buf) {
            panic!(
                "unexpected notify message: {:?}",
                String::from_utf8_lossy(&buf[..n])
            );
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Wait for daemon `pid` (one of ours) to exit; its exit status code.
    fn wait_exit(&mut self, pid: u32) -> Option<i32> {
        let child = self.children.iter_mut().find(|c| c.id() == pid).unwrap();
        let st = common::wait_deadline(child, DEADLINE)
            .unwrap_or_else(|| panic!("lxcfs-rs {pid} did not exit"));
        st.code()
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        for c in &mut self.children {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = common::signal(c.id(), Signal::TERM);
                if common::wait_deadline(c, Duration::from_secs(10)).is_none() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
        // A worker left serving (--keep-serving-on-exit) ends with its connection.
        force_unmount(&self.mnt());
        if std::thread::panicking() {
            eprintln!("--- lxcfs-rs log ---\n{}--- end ---", self.log());
        }
    }
}

fn monotonic_usec() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u128 * 1_000_000 + t.tv_nsec as u128 / 1000
}

/// A read of the mount, right now: it must succeed with the container's (here: our
/// own) meminfo. An empty mountpoint directory has no `proc/meminfo`.
fn read_now(mnt: &Path) {
    let text = read_deadline(&mnt.join("proc/meminfo"), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("reading the mount right after READY=1 failed: {e}"));
    assert!(text.starts_with("MemTotal:"), "meminfo: {text:?}");
}

/// The worker's FUSE threads run (fuser names them `fuser-N`): it serves. Checked the
/// moment READY=1 arrives, before any read (a read would only wait for the worker), so
/// a READY=1 sent before the worker serves fails here.
fn assert_serving_threads(worker: u32) {
    let names: Vec<String> = std::fs::read_dir(format!("/proc/{worker}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|c| c.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        names.iter().any(|n| n == "fuser-0"),
        "READY=1 named worker {worker}, whose threads are {names:?}: not serving yet"
    );
}

fn worker_in(status: &str) -> u32 {
    status
        .split_once("(worker ")
        .and_then(|(_, r)| r.split_once(','))
        .and_then(|(w, _)| w.parse().ok())
        .unwrap_or_else(|| panic!("no worker pid in STATUS={status:?}"))
}

#[test]
fn ready_only_when_serving_then_reloading_ready_on_sigusr1_and_stopping_on_sigterm() {
    let mut m = Manager::new();
    let mnt = m.mnt();
    let pid = m.start(&[]);

    // Start: the first message is READY=1, and the mount serves the moment it arrives.
    let ready = m.next();
    assert_eq!(get(&ready, "READY"), Some("1"), "first message: {ready:?}");
    let status = get(&ready, "STATUS").expect("STATUS= with READY=1");
    let first = worker_in(status);
    assert_serving_threads(first);
    read_now(&mnt);
    assert!(
        status.starts_with(&format!("serving {} (worker ", mnt.display())),
        "{status}"
    );
    assert_eq!(worker_pids(pid), vec![first]);
    // Workers do not speak for the service.
    let environ = std::fs::read(format!("/proc/{first}/environ")).unwrap();
    assert!(
        !environ
            .split(|&b| b == 0)
            .any(|v| v.starts_with(b"NOTIFY_SOCKET=")),
        "the worker inherited NOTIFY_SOCKET"
    );
    m.assert_quiet();

    // Live upgrade: RELOADING=1 with the time it began, then READY=1 once the new
    // worker serves (and the mount still answers).
    let before = monotonic_usec();
    common::signal(pid, Signal::USR1).unwrap();
    let reloading = m.next();
    let after = monotonic_usec();
    assert_eq!(get(&reloading, "RELOADING"), Some("1"), "{reloading:?}");
    let usec: u128 = get(&reloading, "MONOTONIC_USEC")
        .expect("MONOTONIC_USEC= with RELOADING=1")
        .parse()
        .unwrap();
    assert!(
        (before..=after).contains(&usec),
        "MONOTONIC_USEC={usec} not between {before} and {after}"
    );
    let ready = m.next();
    assert_eq!(
        get(&ready, "READY"),
        Some("1"),
        "after RELOADING: {ready:?}"
    );
    let second = worker_in(get(&ready, "STATUS").expect("STATUS="));
    assert_serving_threads(second);
    read_now(&mnt);
    assert_ne!(second, first, "READY=1 before the new worker served");
    assert!(is_running(second));
    common::poll(DEADLINE, "the old worker to exit", || {
        (!is_running(first)).then_some(())
    });
    m.assert_quiet();

    // Stop: STOPPING=1, then the daemon unmounts and exits.
    common::signal(pid, Signal::TERM).unwrap();
    let stopping = m.next();
    assert_eq!(get(&stopping, "STOPPING"), Some("1"), "{stopping:?}");
    assert_eq!(m.wait_exit(pid), Some(0), "log:\n{}", m.log());
    assert!(!common::is_mounted(&mnt), "still mounted after SIGTERM");
    m.assert_quiet();
}

/// What the packaged unit does on `systemctl restart`: the supervisor stops with
/// --keep-serving-on-exit, its worker serves on, and the next one adopts it. Reads
/// succeed throughout.
#[test]
fn keep_serving_on_exit_lets_a_restart_adopt_the_mount() {
    let mut m = Manager::new();
    let mnt = m.mnt();
    let pid = m.start(&["--keep-serving-on-exit"]);
    let ready = m.next();
    assert_eq!(get(&ready, "READY"), Some("1"), "{ready:?}");
    let worker = worker_in(get(&ready, "STATUS").unwrap());

    common::signal(pid, Signal::TERM).unwrap();
    let stopping = m.next();
    assert_eq!(get(&stopping, "STOPPING"), Some("1"), "{stopping:?}");
    let status = get(&stopping, "STATUS").unwrap();
    assert!(status.contains("keeps serving"), "{status}");
    assert_eq!(m.wait_exit(pid), Some(0), "log:\n{}", m.log());
    assert!(is_running(worker), "the worker went with its supervisor");
    read_now(&mnt);

    let next = m.start(&["--keep-serving-on-exit"]);
    let ready = m.next();
    assert_eq!(get(&ready, "READY"), Some("1"), "{ready:?}");
    read_now(&mnt);
    let adopted_by = worker_in(get(&ready, "STATUS").unwrap());
    assert_eq!(worker_pids(next), vec![adopted_by]);
    common::poll(DEADLINE, "the orphaned worker to be stopped", || {
        (!is_running(worker)).then_some(())
    });
    read_now(&mnt);
}
