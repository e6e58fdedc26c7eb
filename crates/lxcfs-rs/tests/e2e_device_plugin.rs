//! End to end: `lxcfs-rs device-plugin`, the real binary, against the kubelet-side
//! harness of the `deviceplugin` crate (no kubelet installs here). The harness serves
//! the kubelet's Registration service on a real `kubelet.sock` and, as the kubelet's
//! device manager does, dials the plugin back within Register, asks for its options
//! and watches its device list; then it calls Allocate as the kubelet does for a pod
//! whose containers request `lxcfs-rs.io/proc`. The CDI device Allocate names is given
//! to Podman (`--device`, resolved with the spec `lxcfs-rs cdi --write` installs, as
//! containerd and CRI-O resolve a device plugin's CDI devices): the container must see
//! its own memory limit. The devices' health follows the node's mount (a real
//! lxcfs-rs killed and started again) and the spec; a kubelet restart (every socket in
//! the directory deleted, kubelet.sock made anew) is followed by a new registration.
//!
//! Needs root, /dev/fuse, podman, runc and busybox-static: fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use deviceplugin::api;
use deviceplugin::harness::{self, Kubelet};
use rustix::process::Signal;
use testkit::runtime::{InstalledSpec, Podman, Rootfs};

const DEVICES: usize = 40;
/// The plugin checks the mount every second (--check-interval 1), each check bounded
/// to 1 s, and looks at the sockets every second: changes show within a few.
const NOTICE: Duration = Duration::from_secs(8);

/// `lxcfs-rs device-plugin` in `dir`, checking `mnt`; killed on drop.
fn start_plugin(dir: &Path, mnt: &Path, extra: &[&str]) -> KilledOnDrop {
    let child = Command::new(lxcfs_rs())
        .arg("device-plugin")
        .arg("--dir")
        .arg(dir)
        .arg("--mountpoint")
        .arg(mnt)
        .args(["--devices", &DEVICES.to_string(), "--check-interval", "1"])
        .args(extra)
        .stdin(Stdio::null())
        .spawn()
        .expect("start lxcfs-rs device-plugin");
    KilledOnDrop(child)
}

fn all(health: &'static str) -> impl Fn(&api::ListAndWatchResponse) -> bool {
    move |l| l.devices.len() == DEVICES && l.devices.iter().all(|d| d.health == health)
}

/// Waits for the plugin to register and checks what it says.
fn registered(k: &mut Kubelet) {
    let (req, options) = k.registration(DEADLINE).unwrap();
    assert_eq!(req.version, "v1beta1");
    assert_eq!(req.endpoint, "lxcfs-rs.sock");
    assert_eq!(req.resource_name, "lxcfs-rs.io/proc");
    let o = req.options.unwrap();
    assert!(!o.pre_start_required && !o.get_preferred_allocation_available);
    assert_eq!(options, o, "GetDevicePluginOptions says what Register said");
}

fn kill_daemon(d: &mut Daemon) {
    let workers = d.workers();
    d.stop_with(Signal::KILL);
    for w in workers {
        let _ = signal(w, Signal::KILL);
        poll(DEADLINE, "the worker to die", || {
            (!is_running(w)).then_some(())
        });
    }
}

#[test]
fn a_container_allocated_the_resource_gets_its_own_limits_and_health_follows_the_mount() {
    require_env();
    if let Err(e) = require_tools(
        &["podman", "runc", "busybox", "tar"],
        "podman runc busybox-static",
    ) {
        panic!("the device plugin's end-to-end test cannot run here: {e}");
    }
    let mut d = Daemon::start(&[]);
    // In /var/run/cdi, where Podman (and containerd, CRI-O) look; one at a time.
    let spec = InstalledSpec::write(&d.mnt);
    let dir = tempfile::tempdir().unwrap();
    let mut kubelet = Kubelet::start(dir.path()).unwrap();
    let _plugin = start_plugin(
        dir.path(),
        &d.mnt,
        &[
            "--cdi-spec-dir",
            spec.path.parent().unwrap().to_str().unwrap(),
        ],
    );
    registered(&mut kubelet);
    let list = kubelet.devices(NOTICE, all("Healthy")).unwrap();
    let ids: Vec<&str> = list.devices.iter().map(|d| d.id.as_str()).collect();

    // A pod of two containers, one unit each, as the kubelet allocates them.
    let mut client = kubelet.client("lxcfs-rs.sock").unwrap();
    assert_eq!(client.options().unwrap(), deviceplugin::plugin::options());
    let r = client
        .allocate(harness::allocate_request(&[&ids[..1], &ids[1..2]]))
        .unwrap();
    assert_eq!(r.container_responses.len(), 2);
    for c in &r.container_responses {
        let names: Vec<&str> = c.cdi_devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["lxcfs-rs.io/proc=default"], "{r:?}");
        assert!(
            c.mounts.is_empty() && c.devices.is_empty() && c.envs.is_empty(),
            "{r:?}"
        );
    }
    assert!(
        client
            .allocate(harness::allocate_request(&[&["not-ours"]]))
            .is_err()
    );
    client.pre_start(&ids[..1]).unwrap();

    // The runtime's part: the CDI device, resolved from the installed spec, in a
    // container limited to 256 MiB.
    let device = r.container_responses[0].cdi_devices[0].name.clone();
    let podman = Podman::new(&Rootfs::busybox());
    let out = podman.run(
        &["--device", &device, "-m", "256m"],
        "grep MemTotal /proc/meminfo; cat /sys/devices/system/cpu/online",
        DEADLINE,
    );
    let text = out.ok();
    assert_eq!(meminfo_value(text, "MemTotal"), 256 * 1024, "{text}");

    // The mount dies (supervisor and worker killed): every device turns Unhealthy, so a
    // kubelet offers none; a new daemon serves again: Healthy.
    kill_daemon(&mut d);
    let t = Instant::now();
    kubelet.devices(NOTICE, all("Unhealthy")).unwrap();
    eprintln!("Unhealthy {:?} after the kill", t.elapsed());
    let _d2 = d.restart(&[]);
    let t = Instant::now();
    kubelet.devices(NOTICE, all("Healthy")).unwrap();
    eprintln!("Healthy {:?} after the restart", t.elapsed());

    // Without a spec naming the device, the runtime could not resolve it: Unhealthy.
    drop(spec);
    kubelet.devices(NOTICE, all("Unhealthy")).unwrap();
}

#[test]
fn the_plugin_waits_for_the_kubelet_and_registers_again_when_it_restarts() {
    let d = Daemon::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    // The plugin first, before the kubelet has even made its directory (a node
    // booting, the plugin's pod up first).
    let dir = tmp.path().join("device-plugins");
    let mut plugin = start_plugin(&dir, &d.mnt, &["--cdi-spec-dir", "none"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!dir.exists(), "the plugin made the kubelet's directory");
    assert!(
        plugin.0.try_wait().unwrap().is_none(),
        "the plugin exited instead of waiting for the kubelet"
    );
    let mut kubelet = Kubelet::start(&dir).unwrap();
    registered(&mut kubelet);
    kubelet.devices(NOTICE, all("Healthy")).unwrap();

    for round in 0..2 {
        // A starting kubelet deletes the plugin's socket with everything else.
        kubelet.restart().unwrap();
        let t = Instant::now();
        registered(&mut kubelet);
        let took = t.elapsed();
        eprintln!("registered again {took:?} after kubelet restart {round}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        kubelet.devices(NOTICE, all("Healthy")).unwrap();
        let r = kubelet
            .client("lxcfs-rs.sock")
            .unwrap()
            .allocate(harness::allocate_request(&[&["lxcfs-rs-0"]]))
            .unwrap();
        assert_eq!(
            r.container_responses[0].cdi_devices[0].name,
            "lxcfs-rs.io/proc=default"
        );
    }
}

#[test]
fn a_bad_resource_name_is_refused_at_start() {
    let out = run_deadline(
        Command::new(lxcfs_rs()).args(["device-plugin", "--resource-name", "kubernetes.io/proc"]),
        DEADLINE,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("Kubernetes' own namespace"),
        "{}",
        out.stderr
    );
}
