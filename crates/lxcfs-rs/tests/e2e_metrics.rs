//! What operators see: the metrics socket counts what containers read, exactly, in an
//! exposition a real Prometheus parser accepts (pid-namespace resolutions by method,
//! errors by errno, host files by reason included); the counts survive a worker SIGKILL
//! and a SIGUSR1 upgrade; `lxcfs-rs status` summarizes a live daemon, with its busiest
//! containers, and says in one line that nothing serves a dead mountpoint;
//! `--log-format json` logs JSON from the supervisor and its workers; a container that
//! fails ten thousand times is logged once, with its cgroup, and a crowd of failing
//! containers gets no more lines than the log budget; whether a FUSE thread polls is
//! a gauge; a reader that entered its pid namespace from outside is shown its init's
//! cgroup by the procfs resolver, found near it or by searching every process, and the
//! resolution is counted under the method that found it.
//!
//! The parser is Python's `prometheus_client.parser` from Debian's
//! `python3-prometheus-client` (`.ci/run` installs it), run by the system interpreter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rustix::process::Signal;

const MIB: u64 = 1024 * 1024;

/// The daemon's metrics socket: its pidfile's path with `.sock`.
fn socket(d: &Daemon) -> PathBuf {
    d.pidfile.with_extension("sock")
}

fn get(sock: &Path, path: &str) -> (u16, String) {
    let mut s = std::os::unix::net::UnixStream::connect(sock)
        .unwrap_or_else(|e| panic!("connect {}: {e}", sock.display()));
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP response");
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_string())
}

type Samples = Vec<(String, BTreeMap<String, String>, f64)>;

/// The exposition parsed by `prometheus_client.parser`, as (name, labels, value).
fn parse(text: &str) -> Samples {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client.parser refused the exposition (apt-get install \
         python3-prometheus-client):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<(String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).expect("the parser's JSON");
    assert!(v.len() > 100, "too few samples: {}", v.len());
    v
}

fn scrape(d: &Daemon) -> Samples {
    let (code, body) = get(&socket(d), "/metrics");
    assert_eq!(code, 200, "{body}");
    parse(&body)
}

/// The sum of the samples named `name` whose labels include `labels`.
fn value(s: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .sum()
}

fn delta(a: &Samples, b: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(b, name, labels) - value(a, name, labels)
}

fn reads(file: &str, n: usize) -> String {
    format!(
        "i=0; while [ $i -lt {n} ]; do cat /proc/{file} >/dev/null || echo FAIL; i=$((i+1)); done\n"
    )
}

#[test]
fn two_containers_reads_are_counted_exactly_and_the_exposition_parses() {
    let d = Daemon::start(&[]);
    let a = Cgroup::with_memory_limit("metrics-a", 256 * MIB);
    let b = Cgroup::with_memory_limit("metrics-b", 512 * MIB);
    let ca = Running::start(&a, &d.mnt);
    let cb = Running::start(&b, &d.mnt);
    let before = scrape(&d);

    let out = ca.exec(&(reads("meminfo", 7) + &reads("stat", 3)));
    assert!(!out.ok().contains("FAIL"));
    let out = cb.exec(&(reads("meminfo", 5) + &reads("uptime", 4)));
    assert!(!out.ok().contains("FAIL"));
    // Errors by errno, from the host: O_DIRECT is refused (EINVAL), as is a root-only
    // file to another user (EACCES).
    for _ in 0..3 {
        use std::os::unix::fs::OpenOptionsExt;
        let e = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(d.path("proc/meminfo"))
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }
    for _ in 0..2 {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
            .arg(d.path("proc/slabinfo"))
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{out:?}"
        );
    }
    // A latency is recorded just after its reply: wait for the last one.
    let after = poll(DEADLINE, "the latencies of every open", || {
        let s = scrape(&d);
        let open = [("file", "proc/uptime"), ("op", "open")];
        (delta(&before, &s, "lxcfs_request_duration_seconds_count", &open) >= 4.0).then_some(s)
    });

    for (file, n) in [
        ("proc/meminfo", 12.0),
        ("proc/stat", 3.0),
        ("proc/uptime", 4.0),
    ] {
        let f = [("file", file)];
        assert_eq!(
            delta(&before, &after, "lxcfs_opens_total", &f),
            n,
            "{file} opens"
        );
        // Every open renders once: virtualized, or shared within 100 ms.
        assert_eq!(
            delta(&before, &after, "lxcfs_renders_total", &f),
            n,
            "{file} renders"
        );
        assert_eq!(
            delta(
                &before,
                &after,
                "lxcfs_renders_total",
                &[("file", file), ("outcome", "host_fallback")]
            ),
            0.0,
            "{file}: the containers' cgroups are readable"
        );
        // The histogram times refused opens too.
        let refused = if file == "proc/meminfo" { 3.0 } else { 0.0 };
        let open = [("file", file), ("op", "open")];
        assert_eq!(
            delta(
                &before,
                &after,
                "lxcfs_request_duration_seconds_count",
                &open
            ),
            n + refused,
            "{file} histogram count"
        );
        assert_eq!(
            delta(
                &before,
                &after,
                "lxcfs_request_duration_seconds_bucket",
                &[("file", file), ("op", "open"), ("le", "+Inf")]
            ),
            n + refused,
            "{file} +Inf bucket"
        );
        if file != "proc/meminfo" {
            assert_eq!(
                delta(&before, &after, "lxcfs_request_errors_total", &f),
                0.0
            );
        }
    }
    let errors = |file: &str, errno: &str| {
        let l = [("file", file), ("op", "open"), ("errno", errno)];
        delta(&before, &after, "lxcfs_request_errors_total", &l)
    };
    assert_eq!(errors("proc/meminfo", "EINVAL"), 3.0);
    assert_eq!(errors("proc/slabinfo", "EACCES"), 2.0);
    assert_eq!(
        delta(
            &before,
            &after,
            "lxcfs_request_errors_total",
            &[("file", "proc/meminfo")]
        ),
        3.0,
        "no other error"
    );
    // Each container's init was found once: by the kernel's ioctl where it has
    // NS_GET_TGID_FROM_PIDNS, else by walking /proc (the VM's 6.1). Later renderings
    // take it from the cache, re-checked after a second as cached_init.
    let fresh = ["ioctl", "procfs_parents", "procfs_near", "procfs_scan"];
    let resolved = |metric: &str, method: &str, le: Option<&str>| {
        let mut labels = vec![("method", method)];
        labels.extend(le.map(|le| ("le", le)));
        delta(&before, &after, metric, &labels)
    };
    let count = "lxcfs_pidns_resolution_duration_seconds_count";
    let total: f64 = fresh.iter().map(|m| resolved(count, m, None)).sum();
    assert_eq!(total, 2.0, "one resolution per container");
    assert_eq!(resolved(count, "failed", None), 0.0);
    let bucket = "lxcfs_pidns_resolution_duration_seconds_bucket";
    let observed: f64 = fresh
        .iter()
        .map(|m| resolved(bucket, m, Some("+Inf")))
        .sum();
    assert_eq!(observed, 2.0, "each resolution in the latency histogram");
    assert_eq!(
        delta(
            &before,
            &after,
            "lxcfs_opens_total",
            &[("file", "proc/cpuinfo")]
        ),
        0.0,
        "a file nobody read"
    );
    // meminfo was read 12 times in two containers: at most one fresh rendering per
    // container's burst is not guaranteed, but some opens share one.
    assert!(
        value(
            &after,
            "lxcfs_render_cache_hits_total",
            &[("file", "proc/meminfo")]
        ) > 0.0,
        "no cache hit in 12 back-to-back opens"
    );
    // Both containers are tracked (the worker refreshes the gauge every 100 ms).
    poll(DEADLINE, "two containers tracked", || {
        (value(&scrape(&d), "lxcfs_containers_tracked", &[]) >= 2.0).then_some(())
    });
    assert_eq!(value(&after, "lxcfs_worker_generation", &[]), 1.0);
    assert_eq!(
        value(&after, "lxcfs_worker_starts_total", &[("cause", "first")]),
        1.0
    );
    assert!(
        value(
            &after,
            "process_resident_memory_bytes",
            &[("process", "worker")]
        ) > 0.0
    );
    assert!(
        value(
            &after,
            "process_cpu_seconds_total",
            &[("process", "supervisor")]
        ) >= 0.0
    );
    assert_eq!(get(&socket(&d), "/healthz").0, 200);
    assert_eq!(get(&socket(&d), "/readyz").0, 200);
}

/// Reads `proc/meminfo` from the host `n` times (the test runs in the daemon's pid
/// namespace: its own cgroup's view).
/// Whether a polling FUSE thread relays requests is visible: it does from the start
/// (the load measures otherwise only after hundreds of requests), and never with
/// `--fuse-poll-us=0`.
#[test]
fn the_relay_gauge_says_whether_a_fuse_thread_polls() {
    let relay = |d: &Daemon| value(&scrape(d), "lxcfs_fuse_relay_polling", &[]);
    let d = Daemon::start(&[]);
    poll(DEADLINE, "the worker reports its relay", || {
        (relay(&d) == 1.0).then_some(())
    });
    drop(d);
    let d = Daemon::start(&["--fuse-poll-us=0"]);
    // The worker refreshes its gauges every 100 ms; give it several.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(relay(&d), 0.0, "no relay with --fuse-poll-us=0");
}

/// How the files are read is visible once a worker serves: by the daemon with mappings
/// refused by default, by the kernel with `--fuse-passthrough` (on a kernel without
/// FUSE passthrough, by the daemon either way).
#[test]
fn the_reads_gauge_says_who_reads_and_whether_mmap_is_refused() {
    let mode = |d: &Daemon| {
        let text = scrape(d);
        let on: Vec<String> = ["passthrough", "daemon_mmap_refused", "daemon", "unsettled"]
            .into_iter()
            .filter(|m| value(&text, "lxcfs_fuse_reads", &[("mode", m)]) == 1.0)
            .map(str::to_string)
            .collect();
        assert!(on.len() <= 1, "more than one mode: {on:?}\n{text:?}");
        on.into_iter().next().unwrap_or_default()
    };
    let (passthrough, unmappable) = (kernel_at_least(6, 9), kernel_at_least(6, 12));
    for (args, want) in [
        (
            &[][..],
            if unmappable {
                "daemon_mmap_refused"
            } else {
                "daemon"
            },
        ),
        (
            &["--fuse-passthrough"][..],
            if passthrough { "passthrough" } else { "daemon" },
        ),
    ] {
        let d = Daemon::start(args);
        poll(
            DEADLINE,
            "the supervisor to report how files are read",
            || (mode(&d) == want).then_some(()),
        );
        let out = std::process::Command::new(lxcfs_rs())
            .arg("status")
            .arg(&d.mnt)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = match want {
            "daemon_mmap_refused" => "reads: served by the daemon; mmap refused\n",
            "passthrough" => "reads: the kernel's, from a backing memfd",
            _ => "reads: served by the daemon (private mappings go through the page cache",
        };
        assert!(text.contains(line), "{args:?}: status says\n{text}");
    }
}

fn host_reads(d: &Daemon, n: usize) {
    for _ in 0..n {
        std::fs::read(d.path("proc/meminfo")).unwrap();
    }
}

fn meminfo_opens(d: &Daemon) -> f64 {
    value(&scrape(d), "lxcfs_opens_total", &[("file", "proc/meminfo")])
}

#[test]
fn counters_survive_a_worker_sigkill_and_an_upgrade() {
    let d = Daemon::start(&[]);
    host_reads(&d, 5);
    let first = meminfo_opens(&d);
    assert!(first >= 5.0);

    let w = d.workers();
    assert_eq!(w.len(), 1);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(w[0] as i32).unwrap(),
        Signal::KILL,
    )
    .unwrap();
    poll(DEADLINE, "a second worker serving", || {
        let s = scrape(&d);
        (value(&s, "lxcfs_worker_generation", &[]) == 2.0
            && d.workers().len() == 1
            && std::fs::read(d.path("proc/uptime")).is_ok())
        .then_some(())
    });
    host_reads(&d, 5);
    assert_eq!(
        meminfo_opens(&d),
        first + 5.0,
        "counted on after the SIGKILL"
    );
    let s = scrape(&d);
    assert_eq!(
        value(&s, "lxcfs_worker_starts_total", &[("cause", "killed")]),
        1.0
    );

    // SIGUSR1 is ignored while no worker is known to serve.
    let second = d.workers()[0];
    poll(
        DEADLINE,
        "the supervisor seeing the new worker serve",
        || {
            d.log_text()
                .contains(&format!("worker {second} is serving"))
                .then_some(())
        },
    );
    d.signal(Signal::USR1);
    poll(DEADLINE, "the upgraded worker serving", || {
        let s = scrape(&d);
        let w = d.workers();
        (value(&s, "lxcfs_worker_generation", &[]) == 3.0
            && w.len() == 1
            && std::fs::read(d.path("proc/uptime")).is_ok())
        .then_some(())
    });
    // Reads while the old worker retires may meet it: a request it read and had
    // counted but not answered when it exited is resent to the new worker and counted
    // again. This counts reads after it is gone.
    poll(DEADLINE, "the old worker gone", || {
        d.log_text().contains("old worker exited").then_some(())
    });
    host_reads(&d, 5);
    assert_eq!(meminfo_opens(&d), first + 10.0, "counted on after SIGUSR1");
    let s = scrape(&d);
    assert_eq!(
        value(&s, "lxcfs_worker_starts_total", &[("cause", "upgrade")]),
        1.0
    );
    // The three workers' opens are all in the histogram too (each latency is recorded
    // just after its reply).
    poll(DEADLINE, "every open's latency", || {
        let open = [("file", "proc/meminfo"), ("op", "open")];
        (value(&scrape(&d), "lxcfs_request_duration_seconds_count", &open) == first + 10.0)
            .then_some(())
    });
}

fn status(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(lxcfs_rs())
        .arg("status")
        .args(args)
        .output()
        .expect("run lxcfs-rs status");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn status_summarizes_a_live_daemon_and_refuses_a_dead_mountpoint_in_one_line() {
    // A free port for --metrics-addr.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut d = Daemon::start(&["--metrics-addr", &addr]);
    host_reads(&d, 3);
    let mnt = d.mnt.to_str().unwrap().to_string();

    let (code, out, err) = status(&[&mnt, "--sample", "0.2"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!("lxcfs-rs {} up ", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(
        out.contains("worker generation 1, 0 restarts; FUSE threads: "),
        "{out}"
    );

    let (code, out, _) = status(&[&mnt, "--json", "--sample", "0.2"]);
    assert_eq!(code, 0);
    let j: serde_json::Value = serde_json::from_str(&out).expect("status --json is JSON");
    assert_eq!(j["worker_generation"], 1);
    assert!(j["opens_total"].as_u64().unwrap() >= 3, "{j}");

    let (code, out, _) = status(&[&mnt, "--metrics"]);
    assert_eq!(code, 0);
    parse(&out);

    // Over TCP too, with readiness.
    let http = |path: &str| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        r
    };
    assert!(http("/readyz").starts_with("HTTP/1.0 200"));
    assert!(http("/metrics").contains("lxcfs_opens_total{"));
    assert!(
        http("/containers").starts_with("HTTP/1.0 404"),
        "containers' names only on the root-only socket"
    );

    d.stop();
    let (code, out, err) = status(&[&mnt]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("lxcfs-rs status: "), "{err}");
    assert!(!socket(&d).exists(), "the socket is removed at exit");

    let nothing = tempfile::tempdir().unwrap();
    let (code, _, err) = status(&[nothing.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("not mounted"), "{err}");
}

#[test]
fn json_logs_come_from_the_supervisor_and_its_workers() {
    let mut d = Daemon::start(&["--log-format", "json"]);
    host_reads(&d, 1);
    // SIGUSR1 is ignored until the supervisor has seen a worker serve.
    poll(DEADLINE, "the first worker serving", || {
        d.log_text().contains("is serving").then_some(())
    });
    d.signal(Signal::USR1);
    poll(DEADLINE, "the upgraded worker serving", || {
        d.log_text()
            .contains("upgrade: stopping worker")
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(200));
    d.stop();
    let log = d.log_text();
    let mut worker_lines = 0;
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{log}"));
        assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
        if v["message"].as_str().unwrap().contains(") serving with") {
            worker_lines += 1;
        }
    }
    assert_eq!(
        worker_lines, 2,
        "both workers said they serve, in JSON:\n{log}"
    );
}

/// `lxcfs-rs status --json`'s busiest containers: (cgroup, reads over the window,
/// reads in all), busiest first.
fn busiest(mnt: &str) -> Vec<(String, u64, u64)> {
    let (code, out, err) = status(&[mnt, "--json", "--sample", "0"]);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    j["busiest_containers"]
        .as_array()
        .unwrap_or_else(|| panic!("no busiest_containers in {j}"))
        .iter()
        .map(|c| {
            (
                c["cgroup"].as_str().unwrap().to_string(),
                c["reads"].as_u64().unwrap(),
                c["reads_total"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn status_ranks_the_busiest_containers() {
    let d = Daemon::start(&[]);
    let mnt = d.mnt.to_str().unwrap().to_string();
    let busy = Cgroup::with_memory_limit("metrics-busy", 256 * MIB);
    let quiet = Cgroup::with_memory_limit("metrics-quiet", 256 * MIB);
    let cbusy = Running::start(&busy, &d.mnt);
    let cquiet = Running::start(&quiet, &d.mnt);
    // The busy one reads all along, the quiet one five files once.
    let _reader = std::thread::spawn({
        let init = cbusy.init;
        move || {
            let _ = Command::new("nsenter")
                .args(["-t", &init.to_string(), "-p", "-m", "--", "sh", "-c"])
                .arg("while :; do cat /proc/meminfo >/dev/null; sleep 0.01; done")
                .output();
        }
    });
    assert!(!cquiet.exec(&reads("uptime", 5)).ok().contains("FAIL"));
    let (busy_name, quiet_name) = (format!("/{}", busy.rel), format!("/{}", quiet.rel));
    // Published every 5 s, with what each read over those 5 s: the quiet container's
    // row shows its five reads (all of them, whichever windows they fell in).
    let rows = poll(
        Duration::from_secs(30),
        "the quiet container ranked",
        || {
            let rows = busiest(&mnt);
            rows.iter()
                .any(|r| r.0 == quiet_name && r.2 == 5)
                .then_some(rows)
        },
    );
    let rank = |name: &str| rows.iter().position(|r| r.0 == name);
    assert!(
        rank(&busy_name).unwrap_or_else(|| panic!("{busy_name} not in {rows:?}"))
            < rank(&quiet_name).unwrap(),
        "{rows:?}"
    );
    // At least one load-sampler tick ran meanwhile (every 5 s), counting both groups.
    let m = scrape(&d);
    assert!(value(&m, "lxcfs_loadavg_tick_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(
        value(
            &m,
            "lxcfs_loadavg_tick_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        value(&m, "lxcfs_loadavg_tick_duration_seconds_count", &[])
    );
    assert!(value(&m, "lxcfs_loadavg_cgroups_sampled", &[]) >= 2.0);
    let (code, out, err) = status(&[&mnt, "--sample", "0"]);
    assert_eq!(code, 0, "{err}");
    // The window is 5 s, a little more when the worker's loop runs late.
    assert!(
        out.contains("busiest containers (files read over the last "),
        "{out}"
    );
    assert!(
        out.contains(&format!("/s  {busy_name}  (pid namespace ")),
        "{out}"
    );
    drop(cbusy);
}

/// The log lines of a daemon that say a container is served the host's file.
fn fallback_lines(d: &Daemon) -> Vec<String> {
    d.log_text()
        .lines()
        .filter(|l| l.contains("serving the host's proc/meminfo"))
        .map(str::to_string)
        .collect()
}

/// Reads of a failing file by one container.
const READS: u32 = 2_000;

#[test]
fn a_failing_container_is_logged_once_with_its_cgroup_and_a_crowd_within_the_budget() {
    // Debug builds (the tests') fail every read of meminfo's container data.
    let d = Daemon::start_env(&[], &[("LXCFS_RS_FAULT", "fail-on=meminfo")]);
    let cg = Cgroup::with_memory_limit("metrics-failing", 256 * MIB);
    let c = Running::start(&cg, &d.mnt);
    let before = scrape(&d);
    // Two thousand reads, with the shell's own `read` (no process per read): enough
    // to see the count exact and the log quiet, and done in time under emulation (the
    // pure-v2 VM did not finish ten thousand in 30 s).
    let out = c.exec(&format!(
        "i=0; while [ $i -lt {READS} ]; do read -r l < /proc/meminfo || echo FAIL; \
         i=$((i+1)); done; echo \"$l\""
    ));
    assert!(out.ok().starts_with("MemTotal:"), "{}", out.stdout);
    let after = scrape(&d);
    let f = [("file", "proc/meminfo")];
    let n = f64::from(READS);
    assert_eq!(delta(&before, &after, "lxcfs_opens_total", &f), n);
    assert_eq!(
        delta(
            &before,
            &after,
            "lxcfs_renders_total",
            &[("file", "proc/meminfo"), ("outcome", "host_fallback")]
        ),
        n
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "lxcfs_host_files_total",
            &[("file", "proc/meminfo"), ("reason", "read_error")]
        ),
        n
    );
    let name = format!("/{}", cg.rel);
    // (The test's own reads from the host fail too: theirs are other lines.)
    let lines = poll(DEADLINE, "the container's failure logged", || {
        let l: Vec<String> = fallback_lines(&d)
            .into_iter()
            .filter(|l| l.contains(&name))
            .collect();
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains(&format!("container {name} (pid namespace ")),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("(read_error)"), "{}", lines[0]);
    let mnt = d.mnt.to_str().unwrap().to_string();
    let (code, out, err) = status(&[&mnt, "--json", "--sample", "0"]);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        j["host_files_by_reason"]["read_error"].as_u64().unwrap() >= u64::from(READS),
        "{j}"
    );

    // A hostile container making a new cgroup and pid namespace for each of 60 reads:
    // 60 "containers", logged within the budget (20 at once, one a second), the rest
    // counted.
    let crowd = Cgroup::new("metrics-crowd", &[]);
    let dir = crowd.dir("memory");
    let started = std::time::Instant::now();
    let out = c.exec(&format!(
        "for i in $(seq 1 60); do d={dir}/k$i; mkdir $d; \
         sh -c \"echo \\$\\$ > $d/cgroup.procs; exec unshare -p -f sh -c 'read -r l < /proc/meminfo'\"; \
         rmdir $d; done; echo done",
        dir = dir.display()
    ));
    assert_eq!(out.ok().trim(), "done", "{}", out.stderr);
    let seconds = started.elapsed().as_secs();
    let s = scrape(&d);
    let held = value(&s, "lxcfs_log_lines_suppressed_total", &[]);
    let lines = fallback_lines(&d);
    let crowd_lines = lines
        .iter()
        .filter(|l| l.contains(&format!("container /{}/k", crowd.rel)))
        .count();
    assert_eq!(
        crowd_lines + held as usize,
        60,
        "each new container either logged or counted:\n{lines:#?}"
    );
    // The bucket is full (20) when the crowd starts, and gains one a second.
    assert!(
        crowd_lines as u64 <= 20 + seconds + 1,
        "{crowd_lines} lines in {seconds}s:\n{lines:#?}"
    );
    assert!(held >= 1.0 || seconds >= 40, "nothing held in {seconds}s");
}

/// A reader forked into a pid namespace by the process that made it, as `docker exec`'s
/// readers are, on the procfs resolver (kernels before 6.11, forced here): it is shown
/// its init's memory limit, not its own cgroup's (128 MiB), wherever the init is. Near
/// the reader, found without a search of every process: a few pids below it; or, 300
/// processes forked between them, in the reader's cgroup, in a group below it (a
/// container's systemd in `init.scope`) or beside it (LXC's `.lxc`). Far (another
/// top-level group, 300 forks between): only the search of every process finds it.
/// Each resolution is counted under the method that found it.
#[test]
fn a_reader_entering_from_outside_is_shown_its_inits_cgroup() {
    let d = Daemon::start(&["--init-resolver", "procfs"]);
    let pair = Cgroup::new("pair", &[]);
    let beside = pair.child("init", &[Limit::Memory(256 * MIB)]);
    let reader_side = pair.child("reader", &[Limit::Memory(128 * MIB)]);
    let below = Below::new(&reader_side);
    let far = Cgroup::with_memory_limit("far", 200 * MIB);
    let files = |cg: &Cgroup| -> String {
        let quoted: Vec<String> = cg
            .procs_files()
            .iter()
            .map(|p| format!("{:?}", p.to_string_lossy()))
            .collect();
        quoted.join(" ")
    };
    const COUNT: &str = "lxcfs_pidns_resolution_duration_seconds_count";
    for (inits, gap, mib, method) in [
        (files(&beside), 0, 256, "procfs_near"),
        (files(&beside), 300, 256, "procfs_near"),
        (files(&reader_side), 300, 128, "procfs_near"),
        (below.files(), 300, 128, "procfs_near"),
        (files(&far), 300, 200, "procfs_scan"),
    ] {
        let script = ENTER_FROM_OUTSIDE
            .replace("INITS", &inits)
            .replace("GAP", &gap.to_string());
        let before = scrape(&d);
        let out = run(&reader_side, &d.mnt, &script);
        let after = scrape(&d);
        let at = format!("init in {inits}, {gap} forks between init and reader");
        assert_eq!(meminfo_value(out.ok(), "MemTotal"), mib * 1024, "{at}");
        for m in ["procfs_near", "procfs_scan", "failed", "busy"] {
            let want = if m == method { 1.0 } else { 0.0 };
            assert_eq!(
                delta(&before, &after, COUNT, &[("method", m)]),
                want,
                "resolutions by {m}, {at}"
            );
        }
    }
}

/// A group below `cg` made with `mkdir` alone, as a container's systemd makes
/// `init.scope`: on cgroup v2 no controller is handed down to it, so `cg` may keep
/// processes of its own (a group made by `Cgroup::child` hands them down, and then it
/// may not). Removed when dropped, once its processes are gone.
struct Below(Vec<PathBuf>);

impl Below {
    fn new(cg: &Cgroup) -> Below {
        let dirs: Vec<PathBuf> = cg
            .procs_files()
            .iter()
            .filter_map(|f| f.parent().map(|d| d.join("below")))
            .collect();
        for d in &dirs {
            std::fs::create_dir(d).unwrap();
            // A v1 cpuset takes processes only once it has CPUs and memory nodes.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if d.join(f).exists() {
                    let v = std::fs::read_to_string(d.parent().unwrap().join(f)).unwrap();
                    std::fs::write(d.join(f), v.trim()).unwrap();
                }
            }
        }
        Below(dirs)
    }

    fn files(&self) -> String {
        let quoted: Vec<String> = self
            .0
            .iter()
            .map(|d| format!("{:?}", d.join("cgroup.procs").to_string_lossy()))
            .collect();
        quoted.join(" ")
    }
}

impl Drop for Below {
    fn drop(&mut self) {
        for d in &self.0 {
            for _ in 0..50 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// `unshare -p` without a fork: the shell stays outside the new pid namespace and its
/// children are inside, the first its init, which it moves to the cgroup of INITS (its
/// `cgroup.procs` files); GAP processes come and go; then the shell's next child, a
/// reader entering from outside, prints the first line of `/proc/meminfo`.
const ENTER_FROM_OUTSIDE: &str = r#"unshare -p sh -c '
sleep 1000 &
init=$!
for f in INITS; do echo $init > "$f"; done
i=0
while [ $i -lt GAP ]; do /bin/true; i=$((i+1)); done
head -n1 /proc/meminfo
kill $init
'"#;
