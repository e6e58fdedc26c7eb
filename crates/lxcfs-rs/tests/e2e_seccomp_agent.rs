//! sysinfo(2) per container through `lxcfs-rs seccomp-agent`, with Debian's runc 1.1.5
//! and the default seccomp profile installed on this machine (containers-common's) as
//! `lxcfs-rs seccomp-profile --oci` turns it into a config.json's `linux.seccomp`:
//! busybox `free` and `uptime`, glibc's `getconf _PHYS_PAGES` and Python's ctypes (both
//! from the host's /usr bound read-only) see the container; neighbours see their own,
//! concurrently; a killed agent never leaves a call waiting; a flood of calls from one
//! container does not slow another's file reads.
//!
//! Needs root, /dev/fuse, cgroups, runc, busybox-static, podman's containers-common
//! (the base profile) and python3: fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use testkit::runtime::{Bundle, CdiSpec, Rootfs};

const SYSINFO_PY: &str = include_str!("seccomp/sysinfo.py");

fn require() {
    require_env();
    if let Err(e) = require_tools(
        &["runc", "busybox", "python3"],
        "runc busybox-static python3",
    ) {
        panic!("seccomp agent tests cannot run here: {e}");
    }
    assert!(
        Path::new("/usr/share/containers/seccomp.json").exists(),
        "no /usr/share/containers/seccomp.json, the base profile (install containers-common / podman)"
    );
}

/// Started under systemd's soft limit of 1 024 descriptors, the agent raises it to the
/// hard one: it holds one per container it answers for, and past the limit a
/// container's listener would wait in the socket, unread, with its calls.
#[test]
fn the_agent_raises_its_open_file_limit_to_the_hard_one() {
    require_env();
    require_tools(&["prlimit"], "util-linux").unwrap();
    let agent = Agent::start_with_open_files(1024, 8192, &[]);
    let limit = testkit::proc::open_files_limit(agent.pid).unwrap();
    assert_eq!(limit, ("8192".into(), "8192".into()));
}

/// A busybox rootfs with the sysinfo helper in /bin.
fn rootfs() -> Rootfs {
    let r = Rootfs::busybox();
    std::fs::write(r.path.join("bin/sysinfo.py"), SYSINFO_PY).unwrap();
    r
}

/// A container of `rootfs` running `script` with the default device's binds, the
/// host's /usr, `limit` bytes of memory and the agent's profile.
fn bundle(rootfs: &Rootfs, d: &Daemon, agent: &Agent, limit: u64, script: &str) -> Bundle {
    let spec = CdiSpec::of(&d.mnt);
    let mut b = Bundle::new(rootfs, script);
    b.memory_limit(limit).cdi(&spec.device("default")).bind(
        Path::new("/usr"),
        "/usr",
        &["rbind", "ro"],
    );
    b.config["linux"]["seccomp"] = agent.oci_profile();
    b
}

/// `name=value` lines of `sysinfo.py show`.
fn fields(text: &str) -> HashMap<String, i64> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| Some((k.trim().to_string(), v.trim().parse().ok()?)))
        .collect()
}

/// `key=N` in a line of the helper's output.
fn value(text: &str, key: &str) -> f64 {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {text}"))
        .parse()
        .unwrap()
}

const SHOW_SCRIPT: &str = r#"
echo "== busybox free"; free
echo "== busybox uptime"; uptime
echo "== proc uptime"; cat /proc/uptime
echo "== phys pages"; /usr/bin/getconf _PHYS_PAGES
echo "== page size"; /usr/bin/getconf PAGESIZE
echo "== python phys"; /usr/bin/python3 -c 'import os; print(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))'
echo "== sysinfo"; /usr/bin/python3 /bin/sysinfo.py show
echo "== meminfo"; head -2 /proc/meminfo
echo "== loadavg"; cat /proc/loadavg
echo "== end"
"#;

#[test]
fn a_256_mib_container_sees_its_limit_and_age_through_sysinfo() {
    require();
    let d = Daemon::start(&[]);
    let agent = Agent::start(&[]);
    let rootfs = rootfs();
    let b = bundle(&rootfs, &d, &agent, 256 * MIB, SHOW_SCRIPT);
    let out = b.run(DEADLINE);
    let text = out.ok();
    let part = |name| script_part(text, name);

    // busybox free: sysinfo's totalram, the container's limit.
    assert_eq!(free_total(part("busybox free")), 256 * 1024, "{text}");
    // busybox uptime: the container's age (seconds), not the host's (hours).
    assert!(
        part("busybox uptime").contains("up 0 min"),
        "busybox uptime should show the container's age: {text}"
    );
    // glibc: _PHYS_PAGES × page size is the limit; Python's os.sysconf agrees.
    let pages: u64 = part("phys pages").trim().parse().unwrap();
    let page: u64 = part("page size").trim().parse().unwrap();
    assert_eq!(pages * page, 256 * MIB, "{text}");
    assert_eq!(
        part("python phys").trim().parse::<u64>().unwrap(),
        256 * MIB,
        "{text}"
    );
    // Every field against the files the container reads.
    let s = fields(part("sysinfo"));
    assert_eq!((s["rc"], s["mem_unit"]), (0, 1), "{text}");
    let meminfo = part("meminfo");
    assert_eq!(
        s["totalram"] as u64,
        meminfo_value(meminfo, "MemTotal") * 1024,
        "{text}"
    );
    // Usage moves between the two reads: close, not equal.
    let free_file = meminfo_value(meminfo, "MemFree") * 1024;
    assert!(
        (s["freeram"] as u64).abs_diff(free_file) < 32 * MIB,
        "freeram {} vs MemFree {free_file}: {text}",
        s["freeram"]
    );
    assert_eq!(s["bufferram"], 0, "{text}");
    assert!(s["freeram"] as u64 <= 256 * MIB, "{text}");
    // The container's tasks: sh and python, a handful, not the host's hundreds.
    assert!(
        (1..20).contains(&s["procs"]),
        "procs {}: {text}",
        s["procs"]
    );
    // Uptime: seconds, like /proc/uptime's (rounded up by the kernel's rule).
    let up: f64 = part("proc uptime")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (s["uptime"] as f64 - up).abs() <= 2.0,
        "sysinfo uptime {} vs /proc/uptime {up}: {text}",
        s["uptime"]
    );
    assert!(up < DEADLINE.as_secs_f64(), "{text}");
    // Loads: /proc/loadavg's (a fresh container: 0), in 1/65536.
    let load1: f64 = part("loadavg")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (s["load0"] as f64 / 65536.0 - load1).abs() < 0.05,
        "load {} vs {load1}: {text}",
        s["load0"]
    );
    // The host's own fields stay the host's (no highmem on 64-bit).
    assert_eq!((s["totalhigh"], s["freehigh"]), (0, 0), "{text}");
    assert!(
        agent.log_text().contains("answering sysinfo for container"),
        "{}",
        agent.log_text()
    );
}

/// A container process running as another user than root: its memory is written all
/// the same (the agent opens it under ptrace rules as root).
#[test]
fn a_non_root_caller_is_answered_too() {
    require();
    let d = Daemon::start(&[]);
    let agent = Agent::start(&[]);
    let rootfs = rootfs();
    let mut b = bundle(
        &rootfs,
        &d,
        &agent,
        256 * MIB,
        "free | grep Mem:; /usr/bin/id -u",
    );
    b.config["process"]["user"] = serde_json::json!({ "uid": 1000, "gid": 1000 });
    let text = b.run(DEADLINE).ok().to_string();
    assert_eq!(free_total(&text), 256 * 1024, "{text}");
    assert!(text.lines().any(|l| l.trim() == "1000"), "{text}");
    assert_serving_threads_confined(agent.pid);
}

/// Every thread of the agent but its main one (which waits for signals and runs the
/// live upgrade's execve) keeps only CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and
/// CAP_SYS_PTRACE, with no_new_privs and the system call filter; the threads that
/// answer containers and take runtimes' hand-overs are among them.
fn assert_serving_threads_confined(agent: u32) {
    // CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE
    let kept = (1u64 << 1) | (1u64 << 2) | (1u64 << 19);
    let mut names = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{agent}/task")).unwrap() {
        let task = task.unwrap();
        if task.file_name().to_str() != Some(&agent.to_string()) {
            names.push(assert_thread_confined(&task.path(), kept));
        }
    }
    for expected in ["intake", "answer-0"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
}

#[test]
fn neighbours_with_other_limits_see_their_own_concurrently() {
    require();
    let d = Daemon::start(&[]);
    let agent = Agent::start(&[]);
    let rootfs = rootfs();
    // 100 calls each through busybox free, at the same time.
    let script = "i=0; while [ $i -lt 100 ]; do free | grep Mem:; i=$((i+1)); done";
    let limits = [256 * MIB, 384 * MIB];
    let bundles: Vec<Bundle> = limits
        .iter()
        .map(|&l| bundle(&rootfs, &d, &agent, l, script))
        .collect();
    let mut children: Vec<_> = bundles.iter().map(Bundle::spawn).collect();
    for (child, limit) in children.iter_mut().zip(limits) {
        assert!(
            wait_deadline(child, DEADLINE * 2).is_some_and(|s| s.success()),
            "a container did not finish"
        );
        let mut text = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut text).unwrap();
        let totals: Vec<u64> = text.lines().map(free_total).collect();
        assert_eq!(totals.len(), 100, "{text}");
        assert!(
            totals.iter().all(|&t| t == limit / 1024),
            "a container with {} MiB saw another total: {text}",
            limit / MIB
        );
    }
}

#[test]
fn a_killed_agent_never_leaves_a_call_waiting() {
    require();
    let d = Daemon::start(&[]);
    let mut agent = Agent::start(&[]);
    let rootfs = rootfs();
    let out_dir = tempfile::tempdir().unwrap();
    let progress = out_dir.path().join("progress");
    let mut b = bundle(
        &rootfs,
        &d,
        &agent,
        256 * MIB,
        "/usr/bin/python3 /bin/sysinfo.py loop 6 0 /out/progress",
    );
    b.bind(out_dir.path(), "/out", &["bind", "rw"]);
    let mut child = b.spawn();
    // Kill it mid-loop, once calls are being answered.
    poll(DEADLINE, "answered calls", || {
        let p = std::fs::read_to_string(&progress).ok()?;
        let ok: u64 = p.split_whitespace().next()?.parse().ok()?;
        (ok >= 400).then_some(())
    });
    agent.kill();
    let killed = Instant::now();
    let status = wait_deadline(&mut child, DEADLINE);
    assert!(
        status.is_some_and(|s| s.success()),
        "the container did not finish after the agent was killed"
    );
    // The loop runs 6 s in all: it went on right away, it did not wait for anything.
    assert!(killed.elapsed() < Duration::from_secs(10));
    let mut text = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut text).unwrap();
    // Answered calls before, ENOSYS (38) from the kernel after, nothing else.
    assert!(value(&text, "ok") >= 400.0, "{text}");
    assert!(value(&text, "errno_38") > 0.0, "{text}");
    let others: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.starts_with("errno_") && !w.starts_with("errno_38="))
        .collect();
    assert!(others.is_empty(), "{text}");

    // An agent started again serves the containers started after it.
    let agent = Agent::start(&[]);
    let b = bundle(&rootfs, &d, &agent, 256 * MIB, "free | grep Mem:");
    let text = b.run(DEADLINE).ok().to_string();
    assert_eq!(free_total(&text), 256 * 1024, "{text}");
}

/// A live upgrade (SIGUSR1: the agent executes the binary on disk in its own process,
/// handing it every descriptor) loses no call of a container calling sysinfo in a loop
/// through it, and serves new containers after it.
#[test]
fn a_live_upgrade_keeps_serving_the_containers() {
    require();
    let d = Daemon::start(&[]);
    let agent = Agent::start(&[]);
    let rootfs = rootfs();
    let out_dir = tempfile::tempdir().unwrap();
    let progress = out_dir.path().join("progress");
    let mut b = bundle(
        &rootfs,
        &d,
        &agent,
        256 * MIB,
        "/usr/bin/python3 /bin/sysinfo.py loop 6 2000 /out/progress",
    );
    b.bind(out_dir.path(), "/out", &["bind", "rw"]);
    let mut child = b.spawn();
    let answered = |at_least: u64| {
        poll(DEADLINE, "answered calls", || {
            let p = std::fs::read_to_string(&progress).ok()?;
            let ok: u64 = p.split_whitespace().next()?.parse().ok()?;
            (ok >= at_least).then_some(ok)
        })
    };
    let before = answered(400);
    signal(agent.pid, rustix::process::Signal::USR1).unwrap();
    poll(DEADLINE, "the upgraded agent", || {
        agent
            .log_text()
            .contains("live upgrade: serving on with 1 containers' descriptors")
            .then_some(())
    });
    // The same container goes on being answered by the new program.
    answered(before + 400);
    assert!(
        wait_deadline(&mut child, DEADLINE).is_some_and(|s| s.success()),
        "the container failed"
    );
    let mut text = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut text).unwrap();
    assert!(
        !text.contains("errno_"),
        "calls failed across the upgrade: {text}"
    );
    assert!(is_running(agent.pid), "{}", agent.log_text());
    // And new containers are served by it.
    let b = bundle(&rootfs, &d, &agent, 256 * MIB, "free | grep Mem:");
    let text = b.run(DEADLINE).ok().to_string();
    assert_eq!(free_total(&text), 256 * 1024, "{text}");
}

/// Socket activation, as the package's `lxcfs-rs-seccomp-agent.socket` runs it: a
/// container is started while only the socket exists (the agent crashed and is being
/// restarted, or has not started yet) and is served by the agent the connection
/// starts; a live upgrade keeps the socket systemd's; a stop leaves it in place.
#[test]
fn a_socket_activated_agent_serves_the_container_that_started_it() {
    require();
    require_tools(&["systemd-socket-activate"], "systemd").unwrap();
    let d = Daemon::start(&[]);
    let mut agent = Agent::start_activated(&[]);
    assert!(
        !agent.log_text().contains("seccomp agent: answering"),
        "the agent runs before any connection:\n{}",
        agent.log_text()
    );
    let rootfs = rootfs();
    let b = bundle(&rootfs, &d, &agent, 256 * MIB, "free | grep Mem:");
    let text = b.run(DEADLINE).ok().to_string();
    assert_eq!(free_total(&text), 256 * 1024, "{text}");
    let log = agent.log_text();
    assert!(log.contains("socket activated"), "{log}");
    assert!(log.contains("answering sysinfo for container"), "{log}");
    signal(agent.pid, rustix::process::Signal::USR1).unwrap();
    poll(DEADLINE, "the upgraded agent", || {
        agent
            .log_text()
            .contains("live upgrade: serving on with")
            .then_some(())
    });
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", agent.pid)).unwrap();
    assert!(
        cmdline
            .split(|&b| b == 0)
            .any(|a| a == b"--socket-activated"),
        "{}",
        String::from_utf8_lossy(&cmdline)
    );
    let text = b.run(DEADLINE).ok().to_string();
    assert_eq!(free_total(&text), 256 * 1024, "{text}");
    agent.stop();
    assert!(
        agent.socket.exists(),
        "the agent removed systemd's socket:\n{}",
        agent.log_text()
    );
}

/// 10 000 sysinfo calls per second from one container while another reads its
/// /proc/meminfo: the reader's rate and latency alone, next to the same loop of plain
/// calls (the profile with sysinfo allowed: the caller's own CPU), and next to the
/// loop answered by the agent. The daemon serving the files is another process than
/// the agent, so the flood can only cost the reader CPU time on a shared machine, never
/// a wait behind the agent.
#[test]
fn a_sysinfo_flood_does_not_slow_a_neighbours_file_reads() {
    require();
    let d = Daemon::start(&[]);
    let agent = Agent::start(&[]);
    let rootfs = rootfs();
    let reader = || {
        bundle(
            &rootfs,
            &d,
            &agent,
            256 * MIB,
            "/usr/bin/python3 /bin/sysinfo.py read /proc/meminfo 3",
        )
        .run(DEADLINE)
        .ok()
        .to_string()
    };
    // The reader during a 6 s loop of 10 000 calls/s, answered by the agent or not.
    let during_flood = |answered: bool| {
        let out_dir = tempfile::tempdir().unwrap();
        let progress = out_dir.path().join("progress");
        let mut flood = bundle(
            &rootfs,
            &d,
            &agent,
            256 * MIB,
            "/usr/bin/python3 /bin/sysinfo.py loop 6 10000 /out/progress",
        );
        flood.bind(out_dir.path(), "/out", &["bind", "rw"]);
        if !answered {
            let seccomp = &mut flood.config["linux"]["seccomp"];
            seccomp.as_object_mut().unwrap().remove("listenerPath");
            for rule in seccomp["syscalls"].as_array_mut().unwrap() {
                if rule["names"] == serde_json::json!(["sysinfo"]) {
                    rule["action"] = serde_json::json!("SCMP_ACT_ALLOW");
                }
            }
        }
        let mut flooding = flood.spawn();
        poll(DEADLINE, "the flood to start", || {
            std::fs::read_to_string(&progress).ok().map(|_| ())
        });
        let during = reader();
        assert!(
            wait_deadline(&mut flooding, DEADLINE).is_some_and(|s| s.success()),
            "the flooding container failed"
        );
        let mut flood_text = String::new();
        std::io::Read::read_to_string(flooding.stdout.as_mut().unwrap(), &mut flood_text).unwrap();
        (during, flood_text)
    };
    let alone = reader();
    let (plain, plain_flood) = during_flood(false);
    let (answered, answered_flood) = during_flood(true);
    eprintln!("reader alone:                      {}", alone.trim());
    eprintln!("reader next to 10k plain calls/s:  {}", plain.trim());
    eprintln!("reader next to 10k answered/s:     {}", answered.trim());
    eprintln!("plain flood:    {}", plain_flood.trim());
    eprintln!("answered flood: {}", answered_flood.trim());
    // Both floods ran and every call returned 0; the plain one saw the host's memory,
    // the answered one the container's (checked by the other tests).
    for f in [&plain_flood, &answered_flood] {
        assert!(value(f, "ok") > 0.0, "{f}");
        assert!(!f.contains("errno_"), "{f}");
    }
    // Loose bounds for a noisy 2-core machine (the numbers are printed above;
    // docs/performance.md has measured ones): the reader keeps reading, at a rate of
    // the same order as next to the plain loop.
    let rate = |t: &str| value(t, "per_s");
    assert!(
        rate(&answered) >= rate(&plain) / 4.0,
        "reads fell from {} to {} per second next to the answered flood",
        rate(&plain),
        rate(&answered)
    );
}

/// Podman 4.3 (runc) with `--security-opt seccomp=` the generated Docker/Podman-format
/// profile: Podman passes `listenerPath` on to the OCI spec and runc hands the
/// container over to the agent.
#[test]
fn podman_with_the_generated_profile_sees_its_limit() {
    require();
    if let Err(e) = require_tools(&["podman", "tar"], "podman") {
        panic!("the Podman test cannot run here: {e}");
    }
    let d = Daemon::start(&[]);
    let agent = Agent::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("lxcfs-rs-seccomp.json");
    std::fs::write(&profile, agent.profile()).unwrap();
    let rootfs = rootfs();
    let podman = testkit::runtime::Podman::new(&rootfs);
    let opt = format!("seccomp={}", profile.display());
    // busybox free subtracts /proc/meminfo's cache from sysinfo's total: the
    // container's file with the container's total.
    let meminfo = format!("{}:/proc/meminfo:ro", d.path("proc/meminfo").display());
    let out = podman.run(
        &["--security-opt", &opt, "-m", "256m", "-v", &meminfo],
        "free | grep Mem:; uptime",
        DEADLINE,
    );
    let text = out.ok();
    assert_eq!(free_total(text), 256 * 1024, "{text}");
    assert!(text.contains("up 0 min"), "{text}");
}

/// Docker 20.10 (Debian's docker.io, its own dockerd) does not carry a profile's
/// `listenerPath` into the OCI spec, so runc refuses the notify rule and the container
/// does not start: the generated profile is for Podman, CRI-O and runc/crun directly,
/// not this Docker (README says so). This test notices when that changes.
#[test]
fn docker_20_10_drops_the_listener_path_and_runc_refuses_the_profile() {
    require();
    if let Err(e) = require_tools(&["dockerd", "tar"], "docker.io") {
        panic!("the Docker test cannot run here: {e}");
    }
    let agent = Agent::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("lxcfs-rs-seccomp.json");
    std::fs::write(&profile, agent.profile()).unwrap();
    let rootfs = rootfs();
    let docker = testkit::runtime::Dockerd::start(&rootfs);
    let opt = format!("seccomp={}", profile.display());
    let out = docker.run(&["--security-opt", &opt], "free", DEADLINE);
    assert!(
        !out.status.success() && out.stderr.contains("listenerPath is not set"),
        "Docker's handling of listenerPath changed (update README and this test): {} {}",
        out.stdout,
        out.stderr
    );
}
