//! Podman (Debian's 4.3) runs a busybox image with the CDI device the spec
//! `lxcfs-rs cdi --write` installs. With runc: `--device lxcfs-rs.io/proc=default` with
//! `-m 256m --cpuset-cpus 1`, and with `--cpus 0.5` against a daemon with and without
//! `--enable-cfs`, the container's tools (the shared `testkit::runtime::tools` script
//! and checks) show its values; `=all` fails on the pressure files;
//! reads go on through a worker kill and a live upgrade. With crun (`--runtime crun`,
//! the cgroup2 mount hidden from it on a hybrid host: `testkit::runtime::crun_command`):
//! `=all`, pressure files and slabinfo included, is taken.
//!
//! Needs root, /dev/fuse, cgroups, podman, runc, crun and busybox-static (`.ci/run`
//! installs them): fails, saying why, without. The image is the busybox rootfs imported
//! into a private store; nothing is pulled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Mutex;

use common::*;
use testkit::runtime::{CdiSpec, InstalledSpec, Oci, Podman, ReadLoop, Rootfs, tools};

/// Podman 4.3 reads specs only from /etc/cdi and /var/run/cdi, so the tests of this
/// binary take turns with the one spec file there.
static SPEC_DIR: Mutex<()> = Mutex::new(());

fn require_podman() {
    require_env();
    if let Err(e) = require_tools(
        &["podman", "runc", "crun", "busybox", "tar"],
        "podman runc crun busybox-static",
    ) {
        panic!("Podman tests cannot run here: {e}");
    }
}

#[test]
fn podman_with_the_cdi_default_device_shows_the_containers_memory_and_cpus() {
    require_podman();
    let _turn = SPEC_DIR.lock().unwrap_or_else(|e| e.into_inner());
    let d = Daemon::start(&[]);
    let _spec = InstalledSpec::write(&d.mnt);
    let rootfs = tools::rootfs();
    let podman = Podman::new(&rootfs);
    let out = podman.run(
        &[
            "--device",
            "lxcfs-rs.io/proc=default",
            "-m",
            "256m",
            "--cpuset-cpus",
            "1",
        ],
        &tools::script_with_files(),
        DEADLINE,
    );
    let text = out.ok();
    tools::check_limits("podman", text, &tools::Expectation::limited());
    assert_eq!(
        meminfo_value(part(text, "meminfo"), "MemTotal"),
        256 * 1024,
        "{text}"
    );
    assert_eq!(part(text, "online"), "1", "{text}");
    assert_eq!(part(text, "processors"), "1", "{text}");

    // The full device carries the pressure files and vmstat, which runc refuses (the
    // first one it meets fails the container).
    let out = podman.run(&["--device", "lxcfs-rs.io/proc=all"], "true", DEADLINE);
    assert!(
        !out.status.success(),
        "runc took the pressure files and vmstat: {out:?}"
    );
    assert!(
        (out.stderr.contains("/proc/pressure/") || out.stderr.contains("/proc/vmstat"))
            && out
                .stderr
                .contains("cannot be mounted because it is inside /proc"),
        "{}",
        out.stderr
    );
}

/// `--cpus 0.5`, against a daemon with or without `--enable-cfs`.
fn half_a_cpu(enable_cfs: bool) {
    require_podman();
    let _turn = SPEC_DIR.lock().unwrap_or_else(|e| e.into_inner());
    let d = Daemon::start(if enable_cfs { &["--enable-cfs"] } else { &[] });
    let _spec = InstalledSpec::write(&d.mnt);
    let rootfs = tools::rootfs();
    let podman = Podman::new(&rootfs);
    let out = podman.run(
        &["--device", "lxcfs-rs.io/proc=default", "--cpus", "0.5"],
        &tools::script_with_files(),
        DEADLINE,
    );
    let text = out.ok();
    let e = tools::Expectation::half_cpu(enable_cfs);
    tools::check_limits("podman", text, &e);
    assert_eq!(part(text, "online"), e.online, "{text}");
    assert_eq!(part(text, "processors"), e.cpus.to_string(), "{text}");
}

#[test]
fn podman_with_half_a_cpu_and_enable_cfs_shows_one_cpu() {
    half_a_cpu(true);
}

#[test]
fn podman_with_half_a_cpu_without_enable_cfs_shows_the_cpuset() {
    half_a_cpu(false);
}

#[test]
fn reads_in_a_podman_container_survive_a_worker_kill_and_an_upgrade() {
    require_podman();
    let _turn = SPEC_DIR.lock().unwrap_or_else(|e| e.into_inner());
    let d = Daemon::start(&[]);
    let _spec = InstalledSpec::write(&d.mnt);
    let rootfs = Rootfs::busybox();
    let podman = Podman::new(&rootfs);
    let lp = ReadLoop::new(&CdiSpec::of(&d.mnt).device("default"), 256 * 1024);
    let volume = lp.volume();
    let child = podman.spawn(
        &[
            "--device",
            "lxcfs-rs.io/proc=default",
            "-m",
            "256m",
            "-v",
            &volume,
        ],
        &lp.script,
    );
    lp.through_kill_and_upgrade("podman", &d, child);
}

#[test]
fn podman_with_crun_takes_the_full_device_and_shows_the_containers_values() {
    require_podman();
    let _turn = SPEC_DIR.lock().unwrap_or_else(|e| e.into_inner());
    let d = Daemon::start(&[]);
    let _spec = InstalledSpec::write(&d.mnt);
    let rootfs = tools::rootfs();
    let podman = Podman::with(Oci::Crun, &rootfs);
    let out = podman.run(
        &[
            "--device",
            "lxcfs-rs.io/proc=all",
            "-m",
            "256m",
            "--cpuset-cpus",
            "1",
        ],
        &format!(
            "{}\necho '== pressure'; cat /proc/pressure/cpu /proc/pressure/io \
             /proc/pressure/memory | grep -c '^some'\necho '== slabinfo'; head -1 /proc/slabinfo\n\
             echo '== end'\n",
            tools::script_with_files()
        ),
        DEADLINE,
    );
    let text = out.ok();
    tools::check_limits("podman (crun)", text, &tools::Expectation::limited());
    assert_eq!(
        meminfo_value(part(text, "meminfo"), "MemTotal"),
        256 * 1024,
        "{text}"
    );
    assert_eq!(part(text, "online"), "1", "{text}");
    assert_eq!(part(text, "processors"), "1", "{text}");
    assert_eq!(part(text, "pressure"), "3", "{text}");
    assert!(
        part(text, "slabinfo").starts_with("slabinfo - version"),
        "{text}"
    );
}
