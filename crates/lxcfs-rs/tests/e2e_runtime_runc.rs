//! runc (Debian's 1.1.5) runs busybox containers with the binds of the CDI spec's
//! default device, made from `runc spec` as a user would: it accepts them, refuses the
//! pressure files and vmstat under /proc (which is why the default device leaves them
//! out), and with `-m 256m --cpuset-cpus 1` or half a CPU of quota the container's tools
//! (the shared `testkit::runtime::tools` script and checks) show its limits. Reads
//! survive a worker kill and a live upgrade.
//!
//! Needs root, /dev/fuse, cgroups, runc and busybox-static (`.ci/run` installs them):
//! fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use testkit::runtime::{Bundle, CdiMount, CdiSpec, ReadLoop, Rootfs, tools};

fn require_runc() {
    require_env();
    if let Err(e) = require_tools(&["runc", "busybox", "tar"], "runc busybox-static") {
        panic!("runc tests cannot run here: {e}");
    }
}

/// The files behind the tools, and busybox free, after the shared tools' script.
fn script() -> String {
    format!(
        "{}{}",
        tools::SCRIPT,
        r#"
echo "== meminfo"; head -3 /proc/meminfo
echo "== online"; cat /sys/devices/system/cpu/online
echo "== cpudirs"; ls /sys/devices/system/cpu | grep -c '^cpu[0-9]'
echo "== processors"; grep -c '^processor' /proc/cpuinfo
echo "== statcpus"; grep -c '^cpu[0-9]' /proc/stat
echo "== busybox free"; free
echo "== end"
"#
    )
}

#[test]
fn runc_with_the_default_device_shows_the_containers_memory_and_cpus() {
    require_runc();
    let d = Daemon::start(&[]);
    let spec = CdiSpec::of(&d.mnt);
    let rootfs = tools::rootfs();
    let mut b = Bundle::new(&rootfs, &script());
    b.memory_limit(256 * MIB)
        .cpuset("1")
        .cdi(&spec.device("default"));
    let out = b.run(DEADLINE);
    let text = out.ok();
    tools::check_limits("runc", text, &tools::Expectation::limited());

    assert_eq!(
        meminfo_value(part(text, "meminfo"), "MemTotal"),
        256 * 1024,
        "{text}"
    );
    // One CPU (host id 1) in every file.
    assert_eq!(part(text, "online"), "1", "{text}");
    assert_eq!(part(text, "cpudirs"), "1", "{text}");
    assert_eq!(part(text, "processors"), "1", "{text}");
    assert_eq!(part(text, "statcpus"), "1", "{text}");
    // busybox free calls sysinfo(2), which no file can change: the host's total.
    assert_eq!(
        free_total(part(text, "busybox free")),
        host_mem_total_kb(),
        "busybox free should show the host (sysinfo): {text}"
    );
}

/// `--cpus 0.5`, against a daemon with or without `--enable-cfs`.
fn half_a_cpu(enable_cfs: bool) {
    require_runc();
    let d = Daemon::start(if enable_cfs { &["--enable-cfs"] } else { &[] });
    let spec = CdiSpec::of(&d.mnt);
    let rootfs = tools::rootfs();
    let mut b = Bundle::new(&rootfs, &script());
    b.cpu_quota(50_000, 100_000).cdi(&spec.device("default"));
    let text = b.run(DEADLINE).ok().to_string();
    let e = tools::Expectation::half_cpu(enable_cfs);
    tools::check_limits("runc", &text, &e);
    // In every file.
    assert_eq!(part(&text, "online"), e.online, "{text}");
    for p in ["cpudirs", "processors", "statcpus"] {
        assert_eq!(part(&text, p), e.cpus.to_string(), "{p}: {text}");
    }
}

#[test]
fn runc_with_a_half_cpu_quota_and_enable_cfs_shows_one_cpu() {
    half_a_cpu(true);
}

#[test]
fn runc_with_a_half_cpu_quota_without_enable_cfs_shows_the_cpuset() {
    half_a_cpu(false);
}

/// Under /proc and not on runc's allow-list.
fn runc_refuses(m: &CdiMount) -> bool {
    m.container_path.starts_with("/proc/pressure/") || m.container_path == "/proc/vmstat"
}

#[test]
fn runc_refuses_each_pressure_file_and_vmstat_and_takes_every_other_bind_of_the_full_device() {
    require_runc();
    let d = Daemon::start(&[]);
    let spec = CdiSpec::of(&d.mnt);
    let all = spec.device("all");
    let default = spec.device("default");
    let pressure: Vec<&CdiMount> = all.iter().filter(|m| runc_refuses(m)).collect();
    assert_eq!(
        pressure.len(),
        4,
        "this host has PSI, so the full device must carry /proc/pressure/{{cpu,io,memory}}, \
         and /proc/vmstat: {}",
        spec.text
    );
    let rootfs = Rootfs::busybox();
    for p in &pressure {
        let mut b = Bundle::new(&rootfs, "cat /proc/meminfo >/dev/null");
        b.cdi(&default).cdi(std::slice::from_ref(*p));
        let out = b.run(DEADLINE);
        assert!(!out.status.success(), "runc took {}", p.container_path);
        assert!(
            // runc logs the message JSON-quoted: `to rootfs at \"/proc/pressure/cpu\"`.
            out.stderr
                .contains(&format!("to rootfs at \\\"{}\\\"", p.container_path))
                && out
                    .stderr
                    .contains("cannot be mounted because it is inside /proc"),
            "runc refused {} for another reason: {}",
            p.container_path,
            out.stderr
        );
    }
    // Everything else of the full device (the default's binds and slabinfo) is taken.
    let rest: Vec<CdiMount> = all.iter().filter(|m| !runc_refuses(m)).cloned().collect();
    assert!(
        rest.iter().any(|m| m.container_path == "/proc/slabinfo"),
        "{}",
        spec.text
    );
    let mut b = Bundle::new(&rootfs, "head -1 /proc/slabinfo; head -1 /proc/meminfo");
    b.memory_limit(256 * MIB).cdi(&rest);
    let text = b.run(DEADLINE).ok().to_string();
    assert!(text.starts_with("slabinfo - version"), "{text}");
    assert_eq!(meminfo_value(&text, "MemTotal"), 256 * 1024, "{text}");
}

#[test]
fn reads_in_a_runc_container_survive_a_worker_kill_and_an_upgrade() {
    require_runc();
    let d = Daemon::start(&[]);
    let default = CdiSpec::of(&d.mnt).device("default");
    let rootfs = Rootfs::busybox();
    let lp = ReadLoop::new(&default, 256 * 1024);
    let mut b = Bundle::new(&rootfs, &lp.script);
    b.memory_limit(256 * MIB)
        .cdi(&default)
        .bind(lp.dir(), "/out", &["rbind", "rw"]);
    lp.through_kill_and_upgrade("runc", &d, b.spawn());
}
