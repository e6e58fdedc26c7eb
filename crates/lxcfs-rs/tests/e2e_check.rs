//! End to end: `lxcfs-rs check` against a live mount, a dead one, an empty directory,
//! and a container made as a runtime makes one, with what this host makes exact.
//!
//! Needs root, /dev/fuse and cgroup v1 hierarchies: fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use rustix::process::Signal;
use serde_json::Value;

fn check(args: &[&str]) -> (i32, Value) {
    let out = run_deadline(
        Command::new(lxcfs_rs())
            .arg("check")
            .arg("--json")
            .args(args),
        DEADLINE,
    );
    let json = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --json printed no JSON ({e}):\n{}\n{}",
            out.stdout, out.stderr
        )
    });
    (out.status.code().expect("check exited"), json)
}

fn source<'a>(report: &'a Value, file: &str) -> (&'a str, &'a str) {
    let f = report["container"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == file)
        .unwrap_or_else(|| panic!("no {file} in {report:#}"));
    (
        f["source"].as_str().unwrap(),
        f["why"].as_str().unwrap_or(""),
    )
}

#[test]
fn a_live_mount_is_reported_with_its_supervisor_workers_and_version() {
    let d = Daemon::start(&[]);
    let mnt = d.mnt.to_str().unwrap();
    let (code, r) = check(&[mnt]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["ok"], true);
    let m = &r["mount"];
    assert_eq!(m["state"], "lxcfs-rs", "{m:#}");
    assert_eq!(m["path"], mnt);
    assert_eq!(m["requested"], true);
    assert_eq!(m["daemon"]["name"], "lxcfs-rs");
    assert_eq!(m["daemon"]["pid"], d.pid);
    let workers: Vec<u64> = d.workers().into_iter().map(u64::from).collect();
    assert_eq!(m["daemon"]["workers"], serde_json::json!(workers));
    assert_eq!(m["daemon"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(m["daemon"]["binary_replaced"], false);
    // This host (TESTING.md): hybrid cgroups, v1 controllers, PSI, kernel 6.18.
    let layout = r["host"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "cgroup layout")
        .unwrap();
    let hybrid = mounts().iter().any(|m| m.fstype == "cgroup2")
        && mounts().iter().any(|m| m.fstype == "cgroup");
    assert_eq!(
        layout["found"].as_str().unwrap().starts_with("hybrid"),
        hybrid,
        "{layout:#}"
    );

    // The human form says the same.
    let out = run_deadline(Command::new(lxcfs_rs()).args(["check", mnt]), DEADLINE);
    let text = out.ok();
    let want = format!(
        "served by lxcfs-rs {} (supervisor {}, worker {})",
        env!("CARGO_PKG_VERSION"),
        d.pid,
        workers[0]
    );
    assert!(text.contains(&want), "want {want:?} in:\n{text}");
    assert!(text.ends_with("result: ok (exit status 0)\n"), "{text}");
}

#[test]
fn an_unserved_or_dead_mountpoint_fails_the_check_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(
        (code, &r["mount"]["state"]),
        (1, &Value::from("not-mounted")),
        "{r:#}"
    );

    let mut d = Daemon::start(&[]);
    let workers = d.workers();
    // Both processes gone: the connection dies and the mount answers ENOTCONN.
    d.stop_with(Signal::KILL);
    for w in workers {
        let _ = signal(w, Signal::KILL);
        poll(DEADLINE, "the worker to die", || {
            (!is_running(w)).then_some(())
        });
    }
    let (code, r) = check(&[d.mnt.to_str().unwrap()]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["mount"]["state"], "dead", "{r:#}");
}

#[test]
fn a_containers_files_are_its_own_where_its_cgroups_say_so() {
    let d = Daemon::start(&[]);
    let cg = Cgroup::new("check", &[Limit::Memory(256 * MIB), Limit::cpus("0")]);
    let c = Running::start(&cg, &d.mnt);
    let (code, r) = check(&["--pid", &c.init.to_string(), d.mnt.to_str().unwrap()]);
    assert_eq!(code, 0, "{r:#}");
    let k = &r["container"];
    assert_eq!(k["host_reader"], false, "{k:#}");
    assert_eq!(k["init"], c.init);
    assert_eq!(k["init_command"], "sleep");
    let ns = std::fs::read_link(format!("/proc/{}/ns/pid", c.init)).unwrap();
    assert_eq!(
        format!("pid:[{}]", k["pid_namespace"]),
        ns.to_string_lossy(),
        "{k:#}"
    );
    let memory = k["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["controller"] == "memory")
        .unwrap();
    assert_eq!(memory["path"], cg.dir("memory").to_str().unwrap());

    // Limits in memory, cpuset, cpu, blkio and its own init: rendered for it.
    for f in [
        "proc/meminfo",
        "proc/swaps",
        "proc/cpuinfo",
        "proc/stat",
        "proc/uptime",
        "proc/loadavg",
        "proc/diskstats",
        "sys/devices/system/cpu/online",
    ] {
        assert_eq!(source(&r, f), ("container", ""), "{f}");
    }
    // Pressure comes from its cgroup2 group: its own only if it has one below the root.
    let v2 = std::fs::read_to_string(format!("/proc/{}/cgroup", c.init)).unwrap();
    let v2_root = v2.lines().any(|l| l == "0::/");
    let (src, why) = source(&r, "proc/pressure/cpu");
    if v2_root {
        assert_eq!(src, "host");
        assert!(why.contains("root"), "{why}");
    } else {
        assert_eq!(src, "container", "{why}");
    }
    // slabinfo: the group's memory.kmem.slabinfo where the kernel fills one.
    let slab =
        std::fs::read_to_string(cg.dir("memory").join("memory.kmem.slabinfo")).unwrap_or_default();
    let (src, why) = source(&r, "proc/slabinfo");
    assert_eq!(
        src,
        if slab.trim().is_empty() {
            "host"
        } else {
            "container"
        },
        "{why}"
    );

    // What check says is what the container reads: its meminfo has the limit.
    let inside = c.exec("cat /proc/meminfo");
    assert_eq!(meminfo_value(inside.ok(), "MemTotal"), 256 * 1024);
}

#[test]
fn a_host_process_is_served_its_own_cgroups_and_a_missing_pid_fails() {
    let (code, r) = check(&["--pid", &std::process::id().to_string()]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["container"]["host_reader"], true);
    assert_eq!(r["container"]["init"], Value::Null);
    let (src, why) = source(&r, "proc/uptime");
    assert_eq!(src, "host");
    assert!(
        why.contains("host's pid namespace") || why.contains("roots"),
        "{why}"
    );

    let (code, r) = check(&["--pid", "2147483646"]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["container"]["error"], "no such process");
}
