//! What the CPU end-to-end test crates (`e2e_cpu_view`, `e2e_cpu_busy`) share on top of
//! the harness in `common`: the check that this host can run them, a daemon, a container
//! with the daemon's CPU directory bound over its own, and a parsed /proc/stat.
#![allow(dead_code)]

use std::fs;
use std::sync::OnceLock;

use crate::common::*;
use procfile::CpuSet;

/// Tools these tests run inside containers, beyond the harness's own list.
pub const CPU_TOOLS: [&str; 8] = [
    "nproc", "getconf", "python3", "lscpu", "top", "uptime", "taskset", "ls",
];

/// First line of every container script here: the daemon's CPU directory over the
/// container's (the harness binds only `online`).
pub const BIND_SYS_CPU: &str = "mount --bind \"$E2E_MNT/sys/devices/system/cpu\" \
     /sys/devices/system/cpu || { echo 'cannot bind sys/devices/system/cpu' >&2; exit 97; }\n";

pub fn require_cpu_env() {
    require_env();
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let r = CHECK.get_or_init(|| {
        require_tools(
            &CPU_TOOLS,
            "coreutils, libc-bin, python3, util-linux, procps",
        )?;
        let online = fs::read_to_string("/sys/devices/system/cpu/online")
            .map_err(|e| format!("read /sys/devices/system/cpu/online: {e}"))?;
        let online_set = CpuSet::parse(&online).ok_or_else(|| format!("online: {online:?}"))?;
        let cpus = testkit::cgroup::root_cpus().map_err(|e| format!("the root cpuset: {e}"))?;
        for c in [0, 1] {
            if !online_set.contains(c) || !cpus.contains(c) {
                return Err(format!(
                    "CPUs 0 and 1 must be online and in the root cpuset (online {}, cpuset \
                     has {} CPUs)",
                    online.trim(),
                    cpus.len()
                ));
            }
        }
        Ok(())
    });
    if let Err(why) = r {
        panic!("CPU end-to-end tests cannot run here: {why}");
    }
}

pub fn daemon(args: &[&str]) -> Daemon {
    require_cpu_env();
    Daemon::start(args)
}

/// Run `script` in a new container of `cg` with the CPU directory bound too.
pub fn run_cpu(cg: &Cgroup, d: &Daemon, script: &str, env: &[(&str, &str)]) -> Output {
    run_env(cg, &d.mnt, &format!("{BIND_SYS_CPU}{script}"), env)
}

#[allow(unused_imports)]
pub use testkit::procstat::{Stat, assert_monotonic};

pub fn cpu_dirs(ls: &[String]) -> Vec<String> {
    ls.iter()
        .filter(|n| {
            n.strip_prefix("cpu")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .cloned()
        .collect()
}
