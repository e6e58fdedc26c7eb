//! runc (Debian's 1.1.5) runs busybox containers with the binds of the CDI spec's
//! default device, made from `runc spec` as a user would: it accepts them, refuses the
//! pressure files and vmstat under /proc (which is why the default device leaves them
//! out), and
//! the container's tools (busybox's, and procps free and lscpu from the host's /usr bound
//! read-only) show its limits. Reads survive a worker kill and a live upgrade.
//!
//! Needs root, /dev/fuse, cgroups, runc and busybox-static (`.ci/run` installs them):
//! fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use testkit::runtime::{Bundle, CdiMount, CdiSpec, ReadLoop, Rootfs};

fn require_runc() {
    require_env();
    if let Err(e) = require_tools(&["runc", "busybox", "tar"], "runc busybox-static") {
        panic!("runc tests cannot run here: {e}");
    }
}

/// The text between `== name` and the next `== ` line of a script's output.
fn part<'a>(out: &'a str, name: &str) -> &'a str {
    script_part(out, name)
}

/// `Mem: 1234K used, 5678K free, ...` (busybox top's second line): used + free, in KiB.
fn top_mem_total_kib(top: &str) -> u64 {
    let line = top
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .unwrap_or_else(|| panic!("no Mem: line in top's output:\n{top}"));
    let num = |label: &str| -> u64 {
        let i = line.find(label).unwrap_or_else(|| panic!("{line}"));
        let word = line[..i].split_whitespace().last().unwrap();
        word.trim_end_matches('K').parse().unwrap()
    };
    num(" used") + num(" free")
}

/// lscpu's `CPU(s):` and `On-line CPU(s) list:` values.
fn lscpu(out: &str) -> (&str, &str) {
    let value = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {key} in lscpu's output:\n{out}"))
    };
    (value("CPU(s):"), value("On-line CPU(s) list:"))
}

const TOOLS_SCRIPT: &str = r#"
echo "== meminfo"; head -3 /proc/meminfo
echo "== nproc"; nproc
echo "== online"; cat /sys/devices/system/cpu/online
echo "== cpudirs"; ls /sys/devices/system/cpu | grep -c '^cpu[0-9]'
echo "== processors"; grep -c '^processor' /proc/cpuinfo
echo "== statcpus"; grep -c '^cpu[0-9]' /proc/stat
echo "== uptime"; cat /proc/uptime
echo "== swaps"; cat /proc/swaps
echo "== top"; top -bn1 | head -3
echo "== busybox free"; free
echo "== procps free"; /usr/bin/free -k
echo "== lscpu"; /usr/bin/lscpu | grep -E '^(CPU\(s\)|On-line CPU\(s\) list):'
echo "== end"
"#;

#[test]
fn runc_with_the_default_device_shows_the_containers_memory_and_cpus() {
    require_runc();
    let d = Daemon::start(&[]);
    let spec = CdiSpec::of(&d.mnt);
    let rootfs = Rootfs::busybox();
    let mut b = Bundle::new(&rootfs, TOOLS_SCRIPT);
    b.memory_limit(256 * MIB)
        .cpuset("1")
        .cdi(&spec.device("default"))
        // procps free (dynamically linked) from the host, read-only.
        .bind(Path::new("/usr"), "/usr", &["rbind", "ro"]);
    let out = b.run(DEADLINE);
    let text = out.ok();

    let meminfo = part(text, "meminfo");
    assert_eq!(meminfo_value(meminfo, "MemTotal"), 256 * 1024, "{text}");
    // One CPU (host id 1) in every file, and sched_getaffinity agrees.
    assert_eq!(part(text, "nproc").trim(), "1", "{text}");
    assert_eq!(part(text, "online").trim(), "1", "{text}");
    assert_eq!(part(text, "cpudirs").trim(), "1", "{text}");
    assert_eq!(part(text, "processors").trim(), "1", "{text}");
    assert_eq!(part(text, "statcpus").trim(), "1", "{text}");
    // The container's age, not the host's.
    let up: f64 = part(text, "uptime")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(up < DEADLINE.as_secs_f64(), "uptime {up}: {text}");
    // No swap limit set: the container may use the host's swap (none here or some),
    // never more than the host has; the header is the kernel's.
    let swaps = part(text, "swaps");
    assert!(swaps.starts_with("Filename"), "{text}");
    let host_swaps = std::fs::read_to_string("/proc/swaps").unwrap();
    assert!(
        swaps.lines().count() <= host_swaps.lines().count(),
        "{swaps}\nhost:\n{host_swaps}"
    );
    // busybox top reads /proc/meminfo: used + free is the limit.
    assert_eq!(top_mem_total_kib(part(text, "top")), 256 * 1024, "{text}");
    // busybox free calls sysinfo(2), which no file can change: the host's total.
    let bb_free = part(text, "busybox free");
    assert_eq!(
        free_total(bb_free),
        host_mem_total_kb(),
        "busybox free should show the host (sysinfo): {text}"
    );
    // procps free (4.0, Debian 12) reads /proc/meminfo: the container's.
    assert_eq!(free_total(part(text, "procps free")), 256 * 1024, "{text}");
    // util-linux lscpu reads the CPU directory: one CPU, host id 1.
    assert_eq!(lscpu(part(text, "lscpu")), ("1", "1"), "{text}");
}

#[test]
fn runc_with_a_half_cpu_quota_and_enable_cfs_shows_one_cpu() {
    require_runc();
    let d = Daemon::start(&["--enable-cfs"]);
    let spec = CdiSpec::of(&d.mnt);
    let rootfs = Rootfs::busybox();
    let mut b = Bundle::new(&rootfs, TOOLS_SCRIPT);
    b.cpu_quota(50_000, 100_000)
        .cdi(&spec.device("default"))
        .bind(Path::new("/usr"), "/usr", &["rbind", "ro"]);
    let text = b.run(DEADLINE).ok().to_string();
    // ⌈0.5⌉ = 1 CPU, renumbered 0, in every file.
    assert_eq!(part(&text, "online").trim(), "0", "{text}");
    assert_eq!(part(&text, "cpudirs").trim(), "1", "{text}");
    assert_eq!(part(&text, "processors").trim(), "1", "{text}");
    assert_eq!(part(&text, "statcpus").trim(), "1", "{text}");
    assert_eq!(lscpu(part(&text, "lscpu")), ("1", "0"), "{text}");
    // busybox nproc asks sched_getaffinity, which a quota does not change.
    let host_cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(part(&text, "nproc").trim(), host_cpus.to_string(), "{text}");
    // No memory limit: the host's total, through the file too.
    assert_eq!(
        meminfo_value(part(&text, "meminfo"), "MemTotal"),
        host_mem_total_kb(),
        "{text}"
    );
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
