//! LXC (Debian's lxc 5.0) runs a busybox container the way a user with the Debian
//! package has it: the package's mount hook (`deploy/lxc/lxc.mount.hook`) enabled by
//! its `00-lxcfs-rs.conf`, which the container's config includes, with lxcfs-rs
//! serving `/var/lib/lxcfs` (in a mount namespace of the test's own: the host's
//! `/usr/share` and `/var/lib/lxcfs` are left alone). The hook binds every file the
//! mount serves, `/proc/pressure/*` and `slabinfo` included (LXC has no /proc
//! allow-list), and with a 256 MiB limit and cpuset 1, or half a CPU of quota against a
//! daemon with and without `--enable-cfs`, the container's tools (the shared
//! `testkit::runtime::tools` script and checks) show its own values; reads go on
//! through a worker kill and a live upgrade. With nothing serving the mountpoint, a
//! dead daemon or LXCFS there, the container still starts, and the hook says why it
//! bound nothing. With Debian's `lxcfs` installed too, both hooks run and every file
//! is the lxcfs-rs mount's. `--mountpoint=DIR` on the hook's line serves another
//! mountpoint.
//!
//! Needs root, /dev/fuse, cgroups, lxc, lxcfs (for its hook) and busybox-static
//! (`.ci/run` installs them): fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use testkit::runtime::{CdiSpec, LXC_CONF, LXC_HOOK, Lxc, ReadLoop, Rootfs, tools};

/// Debian's lxcfs package's hook and snippet.
const LXCFS_HOOK: &str = "/usr/share/lxcfs/lxc.mount.hook";
const LXCFS_CONF: &str = "/usr/share/lxc/config/common.conf.d/00-lxcfs.conf";

fn require_lxc() {
    require_env();
    if let Err(e) = require_tools(
        &["lxc-execute", "lxc-stop", "busybox", "mountpoint"],
        "lxc busybox-static util-linux",
    ) {
        panic!("LXC tests cannot run here: {e}");
    }
}

/// The README's recipe: the package's snippet, included.
fn include_the_package(ct: &mut Lxc) -> &mut Lxc {
    ct.line(&format!("lxc.include = {LXC_CONF}"))
}

/// The files behind the tools, and what only a runtime without a /proc allow-list
/// takes, after the shared tools' script.
fn script() -> String {
    format!(
        "{}{}",
        tools::SCRIPT,
        r#"
echo "== meminfo"; head -1 /proc/meminfo
echo "== online"; cat /sys/devices/system/cpu/online
echo "== processors"; grep -c '^processor' /proc/cpuinfo
echo "== pressure"; cat /proc/pressure/cpu /proc/pressure/memory /proc/pressure/io | grep -c '^some'
echo "== slabinfo"; head -1 /proc/slabinfo
echo "== vmstat"; grep -c '^pgpgin ' /proc/vmstat
echo "== mounts"; grep ' fuse.lxcfs-rs ' /proc/self/mountinfo | cut -d' ' -f5 | sort
echo "== end"
"#
    )
}

/// The destinations of the full device: what the hook must bind (every file the
/// mount serves, and the CPU directory).
fn destinations(mnt: &Path) -> Vec<String> {
    let mut all: Vec<String> = CdiSpec::of(mnt)
        .device("all")
        .into_iter()
        .map(|m| m.container_path)
        .collect();
    all.sort();
    all
}

/// The container's values, limits 256 MiB and cpuset 1, in `text` (script()'s output).
fn assert_the_containers_values(text: &str) {
    tools::check_limits("lxc", text, &tools::Expectation::limited());
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
    assert_eq!(part(text, "vmstat"), "1", "{text}");
}

#[test]
fn lxc_with_the_packages_hook_binds_every_served_file_and_shows_the_containers_values() {
    require_lxc();
    let d = Daemon::start(&[]);
    let all = destinations(&d.mnt);
    assert!(
        all.iter().any(|p| p == "/proc/pressure/cpu"),
        "this host has PSI, so the mount must serve the pressure files: {all:?}"
    );
    let rootfs = tools::rootfs();
    let mut ct = Lxc::new(&rootfs);
    ct.limits(256 * MIB, "1").installed(Some(&d.mnt));
    include_the_package(&mut ct);
    let out = ct.run(&script(), DEADLINE);
    assert!(
        out.status.success(),
        "{out:?}\n--- lxc log\n{}",
        ct.log_text()
    );
    let text = &out.stdout;
    assert_the_containers_values(text);
    // Exactly the served files, each bound once.
    let mounts: Vec<&str> = part(text, "mounts").lines().collect();
    assert_eq!(mounts, all, "{text}");
    let said = ct.hook_output(LXC_HOOK);
    assert!(
        said.contains(&format!(
            "bound {} entries of /var/lib/lxcfs (0 already bound by another hook, 0 failed)",
            all.len()
        )),
        "{said}\n--- lxc log\n{}",
        ct.log_text()
    );
}

/// Half a CPU of quota, against a daemon with or without `--enable-cfs`.
fn half_a_cpu(enable_cfs: bool) {
    require_lxc();
    let d = Daemon::start(if enable_cfs { &["--enable-cfs"] } else { &[] });
    let rootfs = tools::rootfs();
    let mut ct = Lxc::new(&rootfs);
    ct.cpu_quota(50_000, 100_000).installed(Some(&d.mnt));
    include_the_package(&mut ct);
    let out = ct.run(&script(), DEADLINE);
    assert!(
        out.status.success(),
        "{out:?}\n--- lxc log\n{}",
        ct.log_text()
    );
    let text = &out.stdout;
    let e = tools::Expectation::half_cpu(enable_cfs);
    tools::check_limits("lxc", text, &e);
    assert_eq!(part(text, "online"), e.online, "{text}");
    assert_eq!(part(text, "processors"), e.cpus.to_string(), "{text}");
    assert_eq!(
        meminfo_value(part(text, "meminfo"), "MemTotal"),
        host_mem_total_kb(),
        "{text}"
    );
}

#[test]
fn lxc_with_half_a_cpu_and_enable_cfs_shows_one_cpu() {
    half_a_cpu(true);
}

#[test]
fn lxc_with_half_a_cpu_without_enable_cfs_shows_the_cpuset() {
    half_a_cpu(false);
}

#[test]
fn the_hook_serves_another_mountpoint_given_on_its_line() {
    require_lxc();
    let d = Daemon::start(&[]);
    let rootfs = tools::rootfs();
    let mut ct = Lxc::new(&rootfs);
    // Nothing at /var/lib/lxcfs: the binds can only come from the given mountpoint.
    ct.limits(256 * MIB, "1").installed(None).line(&format!(
        "lxc.hook.mount = {LXC_HOOK} --mountpoint={}",
        d.mnt.display()
    ));
    let out = ct.run(&script(), DEADLINE);
    assert!(
        out.status.success(),
        "{out:?}\n--- lxc log\n{}",
        ct.log_text()
    );
    assert_the_containers_values(&out.stdout);
}

#[test]
fn lxc_starts_with_the_hosts_files_when_nothing_serves_the_mountpoint() {
    require_lxc();
    let rootfs = Rootfs::busybox();
    let mut ct = Lxc::new(&rootfs);
    ct.installed(None);
    include_the_package(&mut ct);
    let out = ct.run(
        "head -1 /proc/meminfo; grep -c ' fuse.lxcfs-rs ' /proc/self/mountinfo || true",
        DEADLINE,
    );
    assert!(
        out.status.success(),
        "the hook failed the container: {out:?}\n--- lxc log\n{}",
        ct.log_text()
    );
    assert_eq!(
        meminfo_value(&out.stdout, "MemTotal"),
        host_mem_total_kb(),
        "{out:?}"
    );
    assert!(out.stdout.ends_with("0\n"), "{out:?}");
    let said = ct.hook_output(LXC_HOOK);
    assert!(
        said.contains("nothing is mounted on /var/lib/lxcfs"),
        "{said}\n--- lxc log\n{}",
        ct.log_text()
    );
}

#[test]
fn lxc_starts_with_the_hosts_files_when_the_daemon_is_dead() {
    require_lxc();
    let mut d = Daemon::start(&[]);
    // Supervisor and worker gone: the mount stays, answering ENOTCONN.
    let workers = d.workers();
    d.stop_with(rustix::process::Signal::KILL);
    for w in workers {
        let _ = signal(w, rustix::process::Signal::KILL);
        poll(DEADLINE, "the worker to die", || {
            (!is_running(w)).then_some(())
        });
    }
    let rootfs = Rootfs::busybox();
    let mut ct = Lxc::new(&rootfs);
    ct.installed(Some(&d.mnt));
    include_the_package(&mut ct);
    let out = ct.run("head -1 /proc/meminfo", DEADLINE);
    assert!(
        out.status.success(),
        "the hook failed the container: {out:?}\n--- lxc log\n{}",
        ct.log_text()
    );
    assert_eq!(
        meminfo_value(&out.stdout, "MemTotal"),
        host_mem_total_kb(),
        "{out:?}"
    );
    let said = ct.hook_output(LXC_HOOK);
    assert!(
        said.contains("/var/lib/lxcfs does not answer"),
        "{said}\n--- lxc log\n{}",
        ct.log_text()
    );
}

#[test]
fn the_packages_hook_leaves_a_mountpoint_lxcfs_serves_to_lxcfss_hook() {
    require_lxc();
    let l = Lxcfs::start();
    let rootfs = Rootfs::busybox();
    let mut ct = Lxc::new(&rootfs);
    ct.installed(Some(&l.mnt));
    include_the_package(&mut ct);
    let out = ct.run(
        "grep -c ' fuse.lxcfs' /proc/self/mountinfo || true",
        DEADLINE,
    );
    assert!(
        out.status.success(),
        "the hook failed the container: {out:?}\n--- lxc log\n{}",
        ct.log_text()
    );
    assert_eq!(out.stdout, "0\n", "{out:?}");
    let said = ct.hook_output(LXC_HOOK);
    assert!(
        said.contains("/var/lib/lxcfs is served by fuse.lxcfs, not lxcfs-rs"),
        "{said}\n--- lxc log\n{}",
        ct.log_text()
    );
}

#[test]
fn lxc_with_debian_lxcfs_installed_too_sees_the_files_once() {
    require_lxc();
    for f in [LXCFS_HOOK, LXCFS_CONF] {
        assert!(
            Path::new(f).is_file(),
            "{f} is missing: this test runs LXCFS's hook beside ours (install lxcfs)"
        );
    }
    let d = Daemon::start(&[]);
    let all = destinations(&d.mnt);
    let rootfs = tools::rootfs();
    let mut ct = Lxc::new(&rootfs);
    // What a distribution template's config does: common.conf includes the whole
    // directory, so both packages' hooks run, in the order LXC reads the directory.
    ct.limits(256 * MIB, "1")
        .installed(Some(&d.mnt))
        .line("lxc.include = /usr/share/lxc/config/common.conf.d/");
    let out = ct.run(&script(), DEADLINE);
    assert!(
        out.status.success(),
        "{out:?}\n--- lxc log\n{}",
        ct.log_text()
    );
    let text = &out.stdout;
    assert_the_containers_values(text);
    let log = ct.log_text();
    assert!(
        log.contains(&format!("Executing script \"{LXCFS_HOOK}\"")),
        "LXCFS's hook did not run:\n{log}"
    );
    // Ours binds what LXCFS's did not; when LXCFS's ran first (it binds
    // proc/pressure as one directory) nothing at all.
    let said = ct.hook_output(LXC_HOOK);
    assert!(
        said.contains("0 failed") && said.contains("bound "),
        "{said}\n--- lxc log\n{log}"
    );
    // Every destination is served by lxcfs-rs, whichever hook bound it.
    let mut mounts: Vec<&str> = part(text, "mounts").lines().collect();
    mounts.dedup();
    for dest in &all {
        assert!(
            mounts
                .iter()
                .any(|m| dest == m || dest.starts_with(&format!("{m}/"))),
            "{dest} is not bound: {text}"
        );
    }
}

#[test]
fn reads_in_an_lxc_container_survive_a_worker_kill_and_an_upgrade() {
    require_lxc();
    let d = Daemon::start(&[]);
    let rootfs = Rootfs::busybox();
    let lp = ReadLoop::new(&CdiSpec::of(&d.mnt).device("all"), 256 * 1024);
    let mut ct = Lxc::new(&rootfs);
    ct.limits(256 * MIB, "1")
        .installed(Some(&d.mnt))
        .out_dir(lp.dir());
    include_the_package(&mut ct);
    let child = ct.spawn(&lp.script);
    lp.through_kill_and_upgrade("lxc", &d, child);
}
