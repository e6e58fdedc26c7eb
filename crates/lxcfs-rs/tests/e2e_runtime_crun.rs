//! crun (Debian's 1.8.1) runs busybox bundles made from `crun spec` with every bind of
//! the CDI spec's full device: it has no /proc allow-list, so it takes the pressure
//! files and slabinfo that runc refuses, and with `-m 256m --cpuset-cpus 1` or half a
//! CPU of quota the container's tools (the shared `testkit::runtime::tools` script and
//! checks) show its limits.
//!
//! crun 1.8 refuses a hybrid cgroup host whose cgroup2 hierarchy has a controller
//! ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"; on the
//! test machine `hugetlb`, the one no v1 hierarchy took), whatever its cgroup manager
//! (`--cgroup-manager=cgroupfs` and `disabled` fail alike). There the tests run it with
//! the cgroup2 mount hidden from it (`testkit::runtime::crun_command`), so it sees a
//! v1-only host; on a pure v2 or v1 host it runs as is (the pure-v2 VM of
//! `scripts/cgroup2-vm-test` runs this binary too).
//!
//! Needs root, /dev/fuse, cgroups, crun and busybox-static (`.ci/run` installs them):
//! fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use testkit::runtime::{Bundle, CdiSpec, Oci, tools};

fn require_crun() {
    require_env();
    if let Err(e) = require_tools(&["crun", "busybox", "unshare"], "crun busybox-static") {
        panic!("crun tests cannot run here: {e}");
    }
}

/// The files behind the tools, and what only crun takes, after the shared tools' script.
fn script() -> String {
    format!(
        "{}{}",
        tools::SCRIPT,
        r#"
echo "== meminfo"; head -1 /proc/meminfo
echo "== online"; cat /sys/devices/system/cpu/online
echo "== processors"; grep -c '^processor' /proc/cpuinfo
echo "== statcpus"; grep -c '^cpu[0-9]' /proc/stat
echo "== pressure"; cat /proc/pressure/* 2>/dev/null | grep -c '^some'
echo "== slabinfo"; head -1 /proc/slabinfo
echo "== mounts"; grep -c ' fuse.lxcfs-rs ' /proc/self/mountinfo
echo "== end"
"#
    )
}

#[test]
fn crun_takes_every_bind_of_the_full_device_and_shows_the_containers_limits() {
    require_crun();
    let d = Daemon::start(&[]);
    let all = CdiSpec::of(&d.mnt).device("all");
    let pressure = all
        .iter()
        .filter(|m| m.container_path.starts_with("/proc/pressure/"))
        .count();
    let psi = Path::new("/proc/pressure/cpu").exists();
    assert_eq!(
        pressure,
        if psi { 3 } else { 0 },
        "the full device carries the pressure files where the host has PSI: {all:?}"
    );
    assert!(
        all.iter().any(|m| m.container_path == "/proc/slabinfo"),
        "{all:?}"
    );
    let rootfs = tools::rootfs();
    let mut b = Bundle::with(Oci::Crun, &rootfs, &script());
    b.memory_limit(256 * MIB).cpuset("1").cdi(&all);
    let text = b.run(DEADLINE).ok().to_string();
    tools::check_limits("crun", &text, &tools::Expectation::limited());
    assert_eq!(
        meminfo_value(part(&text, "meminfo"), "MemTotal"),
        256 * 1024,
        "{text}"
    );
    assert_eq!(part(&text, "online"), "1", "{text}");
    assert_eq!(part(&text, "processors"), "1", "{text}");
    assert_eq!(part(&text, "statcpus"), "1", "{text}");
    assert_eq!(part(&text, "pressure"), pressure.to_string(), "{text}");
    assert!(
        part(&text, "slabinfo").starts_with("slabinfo - version"),
        "{text}"
    );
    // Every bind of the device is a mount of the FUSE filesystem in the container.
    assert_eq!(part(&text, "mounts"), all.len().to_string(), "{text}");
}

/// `--cpus 0.5`, against a daemon with or without `--enable-cfs`.
fn half_a_cpu(enable_cfs: bool) {
    require_crun();
    let d = Daemon::start(if enable_cfs { &["--enable-cfs"] } else { &[] });
    let all = CdiSpec::of(&d.mnt).device("all");
    let rootfs = tools::rootfs();
    let mut b = Bundle::with(Oci::Crun, &rootfs, &script());
    b.cpu_quota(50_000, 100_000).cdi(&all);
    let text = b.run(DEADLINE).ok().to_string();
    let e = tools::Expectation::half_cpu(enable_cfs);
    tools::check_limits("crun", &text, &e);
    assert_eq!(part(&text, "online"), e.online, "{text}");
    assert_eq!(part(&text, "processors"), e.cpus.to_string(), "{text}");
    assert_eq!(part(&text, "statcpus"), e.cpus.to_string(), "{text}");
}

#[test]
fn crun_with_a_half_cpu_quota_and_enable_cfs_shows_one_cpu() {
    half_a_cpu(true);
}

#[test]
fn crun_with_a_half_cpu_quota_without_enable_cfs_shows_the_cpuset() {
    half_a_cpu(false);
}
