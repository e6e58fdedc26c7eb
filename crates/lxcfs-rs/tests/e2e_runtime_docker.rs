//! Docker (Debian's docker.io 20.10, runc underneath; no CDI before Docker 25) runs a
//! busybox image with the README's `-v` flags — the CDI default device's binds — and
//! `-m 256m --cpuset-cpus 1`, or `--cpus 0.5` against a daemon with and without
//! `--enable-cfs`, and the container's tools (the shared `testkit::runtime::tools`
//! script and checks) show its own values; a `-v` for a pressure file fails the container;
//! reads go on through a worker kill and a live upgrade.
//!
//! The test starts a dockerd of its own (private data and socket, no iptables, no
//! bridge, no network for containers). Needs root, /dev/fuse, cgroups, docker.io and
//! busybox-static (`.ci/run` installs them): fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use testkit::runtime::{CdiSpec, Dockerd, ReadLoop, Rootfs, tools};

/// The destinations README's Docker recipe binds, in its order.
const README_BINDS: [&str; 8] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/sys/devices/system/cpu",
];

fn require_docker() {
    require_env();
    if let Err(e) = require_tools(&["busybox", "tar"], "busybox-static") {
        panic!("Docker tests cannot run here: {e}");
    }
}

/// `-v MNT/X:X:ro` for each destination.
fn volumes(mnt: &Path, dests: &[&str]) -> Vec<String> {
    dests
        .iter()
        .flat_map(|d| ["-v".to_string(), format!("{}{d}:{d}:ro", mnt.display())])
        .collect()
}

#[test]
fn docker_with_the_readme_binds_shows_the_containers_memory_and_cpus() {
    require_docker();
    let d = Daemon::start(&[]);
    // The README's list is the CDI default device.
    let spec = CdiSpec::of(&d.mnt);
    let default: Vec<String> = spec
        .device("default")
        .into_iter()
        .map(|m| m.container_path)
        .collect();
    assert_eq!(default, README_BINDS, "{}", spec.text);

    let rootfs = tools::rootfs();
    let docker = Dockerd::start(&rootfs);
    let mut flags = volumes(&d.mnt, &README_BINDS);
    flags.extend(["-m", "256m", "--cpuset-cpus", "1"].map(String::from));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let out = docker.run(&flags, &tools::script_with_files(), DEADLINE);
    assert!(
        out.status.success(),
        "{out:?}\n--- dockerd\n{}",
        docker.log_text()
    );
    let text = &out.stdout;
    tools::check_limits("docker", text, &tools::Expectation::limited());
    assert_eq!(
        meminfo_value(part(text, "meminfo"), "MemTotal"),
        256 * 1024,
        "{text}"
    );
    assert_eq!(part(text, "online"), "1", "{text}");
    assert_eq!(part(text, "processors"), "1", "{text}");

    // Each pressure file as a -v: runc refuses it, the container does not start.
    let mut flags = volumes(&d.mnt, &README_BINDS);
    flags.extend(volumes(&d.mnt, &["/proc/pressure/cpu"]));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let out = docker.run(&flags, "true", DEADLINE);
    assert!(
        !out.status.success(),
        "Docker's runc took /proc/pressure/cpu"
    );
    assert!(
        out.stderr
            .contains("cannot be mounted because it is inside /proc"),
        "{}",
        out.stderr
    );
}

/// `--cpus 0.5`, against a daemon with or without `--enable-cfs`.
fn half_a_cpu(enable_cfs: bool) {
    require_docker();
    let d = Daemon::start(if enable_cfs { &["--enable-cfs"] } else { &[] });
    let rootfs = tools::rootfs();
    let docker = Dockerd::start(&rootfs);
    let mut flags = volumes(&d.mnt, &README_BINDS);
    flags.extend(["--cpus", "0.5"].map(String::from));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let out = docker.run(&flags, &tools::script_with_files(), DEADLINE);
    assert!(
        out.status.success(),
        "{out:?}\n--- dockerd\n{}",
        docker.log_text()
    );
    let text = &out.stdout;
    let e = tools::Expectation::half_cpu(enable_cfs);
    tools::check_limits("docker", text, &e);
    assert_eq!(part(text, "online"), e.online, "{text}");
    assert_eq!(part(text, "processors"), e.cpus.to_string(), "{text}");
}

#[test]
fn docker_with_half_a_cpu_and_enable_cfs_shows_one_cpu() {
    half_a_cpu(true);
}

#[test]
fn docker_with_half_a_cpu_without_enable_cfs_shows_the_cpuset() {
    half_a_cpu(false);
}

#[test]
fn reads_in_a_docker_container_survive_a_worker_kill_and_an_upgrade() {
    require_docker();
    let d = Daemon::start(&[]);
    let rootfs = Rootfs::busybox();
    let docker = Dockerd::start(&rootfs);
    let lp = ReadLoop::new(&CdiSpec::of(&d.mnt).device("default"), 256 * 1024);
    let mut flags = volumes(&d.mnt, &README_BINDS);
    flags.extend(["-m".into(), "256m".into(), "-v".into(), lp.volume()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let child = docker.spawn(&flags, &lp.script);
    lp.through_kill_and_upgrade("docker", &d, child);
}
