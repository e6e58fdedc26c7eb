//! End to end: `lxcfs-rs nri`, the real binary, against the runtime-side harness of the
//! `nri` crate (no NRI-capable runtime installs here: Debian's containerd is 1.6). The
//! harness listens on a unix socket as containerd and CRI-O do and speaks the same wire
//! protocol (the connection multiplexer's frames, ttRPC, NRI's messages): it takes the
//! plugin's registration, configures and synchronizes it, and sends CreateContainer for
//! pods that opted in and pods that did not, while the node's mount serves (a real
//! lxcfs-rs on a temporary mountpoint), when nothing is mounted, and when the mount is
//! dead. The binds it returns are then given to runc, which must accept them all, and
//! the container must see its own limits through them.
//!
//! Needs root, /dev/fuse, runc and busybox-static: fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use nri::api;
use nri::harness::{self, Runtime};
use nri::plugin::OPT_IN_LABEL;
use rustix::process::Signal;
use testkit::runtime::{Bundle, Rootfs};

/// The destinations every runtime accepts, in the order the plugin lists them.
const DEFAULT_DESTINATIONS: [&str; 8] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/sys/devices/system/cpu",
];

/// `lxcfs-rs nri` connecting to `socket`, binding from `mnt`; killed on drop.
fn start_plugin(socket: &Path, mnt: &Path, extra: &[&str]) -> KilledOnDrop {
    let child = Command::new(lxcfs_rs())
        .arg("nri")
        .arg("--socket")
        .arg(socket)
        .arg("--mountpoint")
        .arg(mnt)
        .args(extra)
        .arg("--debug")
        .stdin(Stdio::null())
        .spawn()
        .expect("start lxcfs-rs nri");
    KilledOnDrop(child)
}

fn opted_in(name: &str) -> api::PodSandbox {
    harness::pod("default", name, "runc", &[(OPT_IN_LABEL, "true")])
}

fn create(rt: &Runtime, p: &harness::Plugin, pod: &api::PodSandbox) -> Vec<api::Mount> {
    let started = std::time::Instant::now();
    let r = rt
        .create_container(p, pod.clone(), harness::container(pod, "app"))
        .unwrap();
    assert!(
        started.elapsed() < harness::REQUEST_TIMEOUT,
        "the plugin must answer inside the runtime's request timeout"
    );
    assert!(r.update.is_empty(), "no updates to other containers: {r:?}");
    r.adjust.mounts.clone()
}

fn destinations(mounts: &[api::Mount]) -> Vec<&str> {
    mounts.iter().map(|m| m.destination.as_str()).collect()
}

/// Starts the harness and the plugin and takes the plugin through registration,
/// configuration and synchronization, checking each answer.
fn connect(dir: &Path, mnt: &Path, extra: &[&str]) -> (Runtime, KilledOnDrop, harness::Plugin) {
    let socket = dir.join("nri.sock");
    let rt = Runtime::listen(&socket).unwrap();
    let plugin = start_plugin(&socket, mnt, extra);
    let p = rt.accept(DEADLINE).unwrap();
    assert_eq!(p.registration.plugin_name, "lxcfs-rs");
    assert_eq!(p.registration.plugin_idx, "40");
    let cfg = rt.configure(&p, "containerd", "2.1.4").unwrap();
    assert_eq!(cfg.events, 1 << 3, "subscribed to CreateContainer alone");
    let running = opted_in("running");
    let s = rt
        .synchronize(
            &p,
            vec![running.clone()],
            vec![harness::container(&running, "app")],
            false,
        )
        .unwrap();
    assert!(s.update.is_empty() && !s.more, "{s:?}");
    (rt, plugin, p)
}

#[test]
fn opted_in_pods_get_exactly_the_served_runc_safe_binds_while_the_mount_serves() {
    let mut d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (rt, _plugin, p) = connect(dir.path(), &d.mnt, &[]);

    let mounts = create(&rt, &p, &opted_in("web"));
    assert_eq!(destinations(&mounts), DEFAULT_DESTINATIONS, "{mounts:?}");
    for m in &mounts {
        assert_eq!(m.source, format!("{}{}", d.mnt.display(), m.destination));
        assert!(
            d.mnt.join(&m.destination[1..]).exists(),
            "{} is served",
            m.source
        );
        assert_eq!(m.type_, "bind");
        assert_eq!(m.options, ["bind", "ro"]);
    }

    // A pod without the label, or with another value, is left alone.
    let other = harness::pod("default", "db", "runc", &[("app", "db")]);
    assert!(create(&rt, &p, &other).is_empty());
    let off = harness::pod("default", "off", "runc", &[(OPT_IN_LABEL, "false")]);
    assert!(create(&rt, &p, &off).is_empty());

    // A handler named as accepting every destination is not this plugin's: runc's pods
    // never get the pressure files.
    assert!(
        !destinations(&create(&rt, &p, &opted_in("again")))
            .iter()
            .any(|d| d.contains("pressure"))
    );

    // The mount dies (supervisor and workers killed): the next pod starts without the
    // files, and the answer still comes in time.
    let workers = d.workers();
    d.stop_with(Signal::KILL);
    for w in workers {
        let _ = signal(w, Signal::KILL);
        poll(DEADLINE, "the worker to die", || {
            (!is_running(w)).then_some(())
        });
    }
    assert!(create(&rt, &p, &opted_in("after-death")).is_empty());
    rt.close(p);
}

#[test]
fn no_binds_when_nothing_serves_the_mountpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("lxcfs");
    std::fs::create_dir(&mnt).unwrap();
    let (rt, _plugin, p) = connect(dir.path(), &mnt, &[]);
    assert!(create(&rt, &p, &opted_in("web")).is_empty());
    rt.close(p);
}

#[test]
fn pods_of_a_named_namespace_get_the_binds_unless_labelled_out() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (rt, _plugin, p) = connect(dir.path(), &d.mnt, &["--namespace", "team"]);
    let plain = harness::pod("team", "web", "runc", &[]);
    assert_eq!(destinations(&create(&rt, &p, &plain)), DEFAULT_DESTINATIONS);
    let out = harness::pod("team", "db", "runc", &[(OPT_IN_LABEL, "false")]);
    assert!(create(&rt, &p, &out).is_empty());
    let elsewhere = harness::pod("other", "web", "runc", &[]);
    assert!(create(&rt, &p, &elsewhere).is_empty());
    rt.close(p);
}

#[test]
fn handlers_named_as_accepting_everything_get_every_served_file() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (rt, _plugin, p) = connect(dir.path(), &d.mnt, &["--all-files-handler", "crun"]);
    let crun = harness::pod("default", "fast", "crun", &[(OPT_IN_LABEL, "true")]);
    let mounts = create(&rt, &p, &crun);
    let mut expected: Vec<String> = DEFAULT_DESTINATIONS[..7]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for extra in [
        "proc/slabinfo",
        "proc/pressure/cpu",
        "proc/pressure/io",
        "proc/pressure/memory",
        "proc/vmstat",
    ] {
        if d.mnt.join(extra).exists() {
            expected.push(format!("/{extra}"));
        }
    }
    expected.push("/sys/devices/system/cpu".into());
    assert_eq!(destinations(&mounts), expected);
    // runc's pods on the same node still get the safe set.
    assert_eq!(
        destinations(&create(&rt, &p, &opted_in("web"))),
        DEFAULT_DESTINATIONS
    );
    rt.close(p);
}

#[test]
fn the_plugin_registers_again_when_the_runtime_restarts() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (rt, _plugin, p) = connect(dir.path(), &d.mnt, &[]);
    rt.close(p);
    let p = rt.accept(DEADLINE).unwrap();
    rt.configure(&p, "cri-o", "1.30.2").unwrap();
    assert_eq!(
        destinations(&create(&rt, &p, &opted_in("web"))),
        DEFAULT_DESTINATIONS
    );
    rt.close(p);
}

#[test]
fn runc_accepts_the_binds_and_the_container_sees_its_limits() {
    if let Err(e) = require_tools(&["runc", "busybox", "tar"], "runc busybox-static") {
        panic!("runc tests cannot run here: {e}");
    }
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (rt, _plugin, p) = connect(dir.path(), &d.mnt, &[]);
    let mounts = create(&rt, &p, &opted_in("web"));
    rt.close(p);

    let rootfs = Rootfs::busybox();
    let script = "grep MemTotal /proc/meminfo; cat /sys/devices/system/cpu/online; grep -c ^processor /proc/cpuinfo";
    let mut b = Bundle::new(&rootfs, script);
    b.memory_limit(256 * MIB).cpuset("0");
    // As the runtime applies the adjustment: each mount into the OCI spec as given.
    for m in &mounts {
        let options: Vec<&str> = m.options.iter().map(String::as_str).collect();
        assert_eq!(m.type_, "bind");
        b.bind(Path::new(&m.source), &m.destination, &options);
    }
    let out = b.run(DEADLINE);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0].split_whitespace().nth(1),
        Some((256 * 1024).to_string().as_str()),
        "MemTotal is the container's limit: {text}"
    );
    assert_eq!(lines[1], "0", "{text}");
    assert_eq!(lines[2], "1", "{text}");
}
