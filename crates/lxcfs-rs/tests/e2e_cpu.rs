//! End to end: the CPU view (/proc/cpuinfo, /proc/stat, /proc/uptime and the whole
//! /sys/devices/system/cpu directory) as real tools inside containers see it — real
//! cgroup v1 groups with a cpuset and a CFS quota, a new pid + mount namespace, every
//! file bind-mounted as a runtime does, plus the daemon's `sys/devices/system/cpu` over
//! the container's `/sys/devices/system/cpu`.
//!
//! Needs root, /dev/fuse, writable cgroup v1 hierarchies, a host with at least 2 CPUs and
//! `nproc`, `getconf`, `python3`, `lscpu`, `top`, `uptime`, `taskset`, `ls`: fails,
//! saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use common::*;

/// Tools these tests run inside containers, beyond the harness's own list.
const CPU_TOOLS: [&str; 8] = [
    "nproc", "getconf", "python3", "lscpu", "top", "uptime", "taskset", "ls",
];

/// First line of every container script here: the daemon's CPU directory over the
/// container's (the harness binds only `online`).
const BIND_SYS_CPU: &str = "mount --bind \"$E2E_MNT/sys/devices/system/cpu\" \
     /sys/devices/system/cpu || { echo 'cannot bind sys/devices/system/cpu' >&2; exit 97; }\n";

fn require_cpu_env() {
    require_env();
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let r = CHECK.get_or_init(|| {
        require_tools(
            &CPU_TOOLS,
            "coreutils, libc-bin, python3, util-linux, procps",
        )?;
        let online = fs::read_to_string("/sys/devices/system/cpu/online")
            .map_err(|e| format!("read /sys/devices/system/cpu/online: {e}"))?;
        let cpus = fs::read_to_string(Path::new(CGROUP_ROOT).join("cpuset/cpuset.cpus"))
            .map_err(|e| format!("read the root cpuset: {e}"))?;
        for c in [0, 1] {
            if !list(&online).contains(&c) || !list(&cpus).contains(&c) {
                return Err(format!(
                    "CPUs 0 and 1 must be online and in the root cpuset (online {}, cpuset {})",
                    online.trim(),
                    cpus.trim()
                ));
            }
        }
        Ok(())
    });
    if let Err(why) = r {
        panic!("CPU end-to-end tests cannot run here: {why}");
    }
}

fn daemon(args: &[&str]) -> Daemon {
    require_cpu_env();
    Daemon::start(args)
}

/// Run `script` in a new container of `cg` with the CPU directory bound too.
fn run_cpu(cg: &Cgroup, d: &Daemon, script: &str, env: &[(&str, &str)]) -> Output {
    run_env(cg, &d.mnt, &format!("{BIND_SYS_CPU}{script}"), env)
}

/// `0-3,8,10-11` → its members.
fn list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u32>().unwrap()..=b.parse().unwrap()),
            None => out.push(part.parse().unwrap()),
        }
    }
    out
}

/// The `cpu` and `cpuN` lines of a /proc/stat.
#[derive(Debug, Clone)]
struct Stat {
    total: Vec<u64>,
    cpus: Vec<(u32, Vec<u64>)>,
    text: String,
}

impl Stat {
    fn parse(text: &str) -> Stat {
        let mut total = None;
        let mut cpus = Vec::new();
        for line in text.lines().filter(|l| l.starts_with("cpu")) {
            let mut f = line.split_ascii_whitespace();
            let label = f.next().unwrap();
            let vals: Vec<u64> = f
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("bad /proc/stat line {line:?}"))
                })
                .collect();
            assert!(vals.len() >= 8, "short /proc/stat line {line:?}");
            if label == "cpu" {
                total = Some(vals);
            } else {
                cpus.push((label[3..].parse().unwrap(), vals));
            }
        }
        let s = Stat {
            total: total.unwrap_or_else(|| panic!("no cpu line in:\n{text}")),
            cpus,
            text: text.to_string(),
        };
        let mut sum = vec![0u64; s.total.len()];
        for (_, v) in &s.cpus {
            for (a, b) in sum.iter_mut().zip(v) {
                *a += b;
            }
        }
        assert_eq!(
            s.total, sum,
            "cpu line is the sum of the cpuN lines:\n{text}"
        );
        s
    }

    fn ids(&self) -> Vec<u32> {
        self.cpus.iter().map(|(i, _)| *i).collect()
    }

    /// user + system of the `cpu` line.
    fn busy(&self) -> u64 {
        self.total[0] + self.total[2]
    }

    fn idle(&self) -> u64 {
        self.total[3]
    }
}

/// No counter of the `cpu` line, nor of a `cpuN` line present in both, decreased.
fn assert_monotonic(before: &Stat, after: &Stat) {
    for (i, (a, b)) in before.total.iter().zip(&after.total).enumerate() {
        assert!(
            b >= a,
            "cpu column {i} went from {a} to {b}\nbefore:\n{}\nafter:\n{}",
            before.text,
            after.text
        );
    }
    for (id, prev) in &before.cpus {
        if let Some((_, now)) = after.cpus.iter().find(|(i, _)| i == id) {
            for (i, (a, b)) in prev.iter().zip(now).enumerate() {
                assert!(
                    b >= a,
                    "cpu{id} column {i} went from {a} to {b}\nbefore:\n{}\nafter:\n{}",
                    before.text,
                    after.text
                );
            }
        }
    }
}

fn processors(cpuinfo: &str) -> Vec<u32> {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .map(|l| l.split_once(':').unwrap().1.trim().parse().unwrap())
        .collect()
}

/// Field `key` of the first processor block of a cpuinfo.
fn first_block_field(cpuinfo: &str, key: &str) -> String {
    cpuinfo
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim_end() == key).then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {key} in the first block of:\n{cpuinfo}"))
}

/// Field `key` of host CPU `id`'s block in the host's /proc/cpuinfo.
fn host_cpuinfo_field(id: u32, key: &str) -> String {
    let host = fs::read_to_string("/proc/cpuinfo").unwrap();
    let block = host
        .split("\n\n")
        .find(|b| {
            b.lines()
                .next()
                .is_some_and(|l| l.ends_with(&format!(": {id}")))
        })
        .unwrap_or_else(|| panic!("no processor {id} on the host"));
    first_block_field(block, key)
}

fn lscpu_value(lscpu: &str, key: &str) -> String {
    lscpu
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .strip_prefix(':')
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {key:?} in lscpu:\n{lscpu}"))
}

/// What the tools and files say about CPUs inside a container, in one run.
struct Seen {
    nproc: String,
    nproc_all: String,
    onln: String,
    conf: String,
    python: String,
    lscpu: String,
    cpuinfo: String,
    stat: Stat,
    ls: Vec<String>,
    online: String,
    possible: String,
    present: String,
    offline: String,
}

fn look(cg: &Cgroup, d: &Daemon) -> Seen {
    let out = run_cpu(
        cg,
        d,
        "nproc; echo ---; nproc --all; echo ---; getconf _NPROCESSORS_ONLN; echo ---; \
         getconf _NPROCESSORS_CONF; echo ---; python3 -c 'import os; print(os.cpu_count())'; \
         echo ---; lscpu; echo ---; cat /proc/cpuinfo; echo ---; cat /proc/stat; echo ---; \
         ls /sys/devices/system/cpu; echo ---; cd /sys/devices/system/cpu && \
         cat online; echo ---; cat possible; echo ---; cat present; echo ---; cat offline",
        &[],
    );
    let s = sections(out.ok());
    assert_eq!(
        s.len(),
        13,
        "output:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    Seen {
        nproc: s[0].trim().to_string(),
        nproc_all: s[1].trim().to_string(),
        onln: s[2].trim().to_string(),
        conf: s[3].trim().to_string(),
        python: s[4].trim().to_string(),
        lscpu: s[5].clone(),
        cpuinfo: s[6].clone(),
        stat: Stat::parse(&s[7]),
        ls: s[8].lines().map(str::to_string).collect(),
        online: s[9].clone(),
        possible: s[10].clone(),
        present: s[11].clone(),
        offline: s[12].clone(),
    }
}

fn cpu_dirs(ls: &[String]) -> Vec<String> {
    ls.iter()
        .filter(|n| {
            n.strip_prefix("cpu")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .cloned()
        .collect()
}

#[test]
fn one_cpu_cpuset_is_one_cpu_for_every_tool() {
    let d = daemon(&[]);
    let cg = Cgroup::v1("cpuset1", &[("cpuset", "cpuset.cpus", "1")]);
    let v = look(&cg, &d);
    assert_eq!(v.nproc, "1", "nproc");
    assert_eq!(v.nproc_all, "1", "nproc --all");
    assert_eq!(v.onln, "1", "getconf _NPROCESSORS_ONLN");
    assert_eq!(v.conf, "1", "getconf _NPROCESSORS_CONF");
    assert_eq!(v.python, "1", "os.cpu_count()");
    assert_eq!(lscpu_value(&v.lscpu, "CPU(s)"), "1", "lscpu:\n{}", v.lscpu);
    assert_eq!(lscpu_value(&v.lscpu, "On-line CPU(s) list"), "1");
    // Host ids: the one CPU is cpu1, in every file.
    assert_eq!(processors(&v.cpuinfo), [1], "cpuinfo:\n{}", v.cpuinfo);
    assert_eq!(
        first_block_field(&v.cpuinfo, "core id"),
        host_cpuinfo_field(1, "core id")
    );
    assert_eq!(v.stat.ids(), [1], "stat:\n{}", v.stat.text);
    assert_eq!(
        v.stat.text.lines().filter(|l| l.starts_with("cpu")).count(),
        2
    );
    assert!(v.stat.text.starts_with("cpu  "));
    assert_eq!(cpu_dirs(&v.ls), ["cpu1"], "ls: {:?}", v.ls);
    assert!(v.ls.iter().any(|n| n == "online") && v.ls.iter().any(|n| n == "offline"));
    assert_eq!(v.online, "1\n");
    assert_eq!(v.possible, "1\n");
    assert_eq!(v.present, "1\n");
    assert_eq!(v.offline, "0\n");
}

#[test]
fn quota_view_shows_one_cpu_as_cpu0() {
    let d = daemon(&["--enable-cfs"]);
    let cg = Cgroup::v1(
        "cfs-half",
        &[
            ("cpuset", "cpuset.cpus", "0-1"),
            ("cpu", "cpu.cfs_quota_us", "50000"),
        ],
    );
    let v = look(&cg, &d);
    assert_eq!(
        v.nproc, "2",
        "nproc is the affinity mask, which lxcfs cannot change"
    );
    // gnulib's `nproc --all` takes a sysconf(_SC_NPROCESSORS_CONF) of 1 for "unknown"
    // and falls back to the affinity mask; the count itself is checked with getconf.
    assert_eq!(v.nproc_all, "2", "nproc --all");
    assert_eq!(v.onln, "1", "getconf _NPROCESSORS_ONLN");
    assert_eq!(v.conf, "1", "getconf _NPROCESSORS_CONF");
    assert_eq!(v.python, "1", "os.cpu_count()");
    assert_eq!(lscpu_value(&v.lscpu, "CPU(s)"), "1", "lscpu:\n{}", v.lscpu);
    assert_eq!(lscpu_value(&v.lscpu, "On-line CPU(s) list"), "0");
    assert_eq!(processors(&v.cpuinfo), [0], "cpuinfo:\n{}", v.cpuinfo);
    assert_eq!(v.stat.ids(), [0], "stat:\n{}", v.stat.text);
    assert_eq!(cpu_dirs(&v.ls), ["cpu0"], "ls: {:?}", v.ls);
    assert_eq!(v.online, "0\n");
    assert_eq!(v.possible, "0\n");
    assert_eq!(v.present, "0\n");
    assert_eq!(v.offline, "1\n");

    // Renumbered: host cpu1 alone is shown as cpu0, with cpu1's own block and files.
    let cg = Cgroup::v1(
        "cfs-half-cpu1",
        &[
            ("cpuset", "cpuset.cpus", "1"),
            ("cpu", "cpu.cfs_quota_us", "50000"),
        ],
    );
    let out = run_cpu(
        &cg,
        &d,
        "cat /proc/cpuinfo; echo ---; cat /sys/devices/system/cpu/cpu0/topology/core_id; \
         echo ---; ls /sys/devices/system/cpu; echo ---; cat /sys/devices/system/cpu/online",
        &[],
    );
    let s = sections(out.ok());
    assert_eq!(processors(&s[0]), [0]);
    for key in ["core id", "apicid"] {
        assert_eq!(
            first_block_field(&s[0], key),
            host_cpuinfo_field(1, key),
            "{key}"
        );
    }
    let host_core = fs::read_to_string("/sys/devices/system/cpu/cpu1/topology/core_id").unwrap();
    assert_eq!(s[1], host_core, "cpu0/topology is host cpu1's");
    let ls: Vec<String> = s[2].lines().map(str::to_string).collect();
    assert_eq!(cpu_dirs(&ls), ["cpu0"]);
    assert_eq!(s[3], "0\n");
}

#[test]
fn two_containers_see_their_own_cpu_directories() {
    let d = daemon(&[]);
    let a = Cgroup::v1("own0", &[("cpuset", "cpuset.cpus", "0")]);
    let b = Cgroup::v1("own1", &[("cpuset", "cpuset.cpus", "1")]);
    let ca = Running::start(&a, &d.mnt);
    let cb = Running::start(&b, &d.mnt);
    let bind = format!(
        "mount --bind '{}' /sys/devices/system/cpu",
        d.path("sys/devices/system/cpu").display()
    );
    ca.exec(&bind).ok();
    cb.exec(&bind).ok();
    let script = "ls /sys/devices/system/cpu; echo ---; cat /sys/devices/system/cpu/online; \
                  echo ---; ls /sys/devices/system/cpu/cpu0 >/dev/null 2>&1 && echo has-cpu0 || echo no-cpu0";
    // Alternate, so that a listing or lookup cached for one would show up in the other.
    for _ in 0..3 {
        for (c, id, other) in [(&ca, "0", "1"), (&cb, "1", "0")] {
            let s = sections(c.exec(script).ok());
            let ls: Vec<String> = s[0].lines().map(str::to_string).collect();
            assert_eq!(cpu_dirs(&ls), [format!("cpu{id}")], "container of cpu{id}");
            assert!(!ls.contains(&format!("cpu{other}")));
            assert_eq!(s[1], format!("{id}\n"));
            let want = if id == "0" { "has-cpu0\n" } else { "no-cpu0\n" };
            assert_eq!(s[2], want, "lookup of cpu0 in the container of cpu{id}");
        }
    }
}

#[test]
fn uptime_starts_at_zero_with_the_container() {
    let d = daemon(&[]);
    let cg = Cgroup::v1("uptime", &[("cpuset", "cpuset.cpus", "1")]);
    let out = run_cpu(&cg, &d, "cat /proc/uptime; echo ---; uptime", &[]);
    let s = sections(out.ok());
    let mut f = s[0].split_whitespace();
    let up: f64 = f.next().unwrap().parse().unwrap();
    let idle: f64 = f.next().unwrap().parse().unwrap();
    assert!(up < 5.0, "a fresh container's uptime is {up} s");
    assert!(up >= 0.0);
    // One CPU: it cannot have idled longer than it has existed.
    assert!(idle <= up + 0.01, "idle {idle} > uptime {up}");
    let host_up: f64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(host_up > up, "the host's uptime must not leak in");
    assert!(s[1].contains("up 0 min"), "uptime: {}", s[1]);
}

#[test]
fn stat_counters_never_decrease_between_reads() {
    let d = daemon(&[]);
    let cg = Cgroup::v1("stat-mono", &[("cpuset", "cpuset.cpus", "0-1")]);
    let out = run_cpu(
        &cg,
        &d,
        "sh -c 'while :; do :; done' & loop=$!\n\
         for i in 1 2 3 4; do cat /proc/stat; echo ---; sleep 1; done\n\
         cat /proc/stat; kill $loop",
        &[],
    );
    let s = sections(out.ok());
    assert_eq!(s.len(), 5);
    let stats: Vec<Stat> = s.iter().map(|t| Stat::parse(t)).collect();
    for w in stats.windows(2) {
        assert_eq!(w[0].ids(), [0, 1]);
        assert_monotonic(&w[0], &w[1]);
    }
    let (first, last) = (&stats[0], &stats[4]);
    assert!(last.busy() > first.busy(), "the loop's time shows up");
    // 4 s on 2 CPUs: about 800 ticks of user + system + idle between the two.
    let grown = last.busy() + last.idle() - first.busy() - first.idle();
    assert!(
        (600..=1000).contains(&grown),
        "{grown} ticks in ~4 s on 2 CPUs\n{}\n{}",
        first.text,
        last.text
    );
}

#[test]
fn rereading_an_open_stat_at_offset_0_renders_anew() {
    let d = daemon(&[]);
    let cg = Cgroup::v1("reread", &[("cpuset", "cpuset.cpus", "1")]);
    // What top does: keep /proc/stat open, rewind, read again.
    let out = run_cpu(
        &cg,
        &d,
        "python3 -c '\n\
import os, time\n\
fd = os.open(\"/proc/stat\", os.O_RDONLY)\n\
a = os.read(fd, 65536).decode()\n\
t = time.time()\n\
while time.time() - t < 0.5: pass\n\
os.lseek(fd, 0, os.SEEK_SET)\n\
b = os.read(fd, 65536).decode()\n\
print(a, end=\"\"); print(\"---\"); print(b, end=\"\")\n'",
        &[],
    );
    let s = sections(out.ok());
    let (a, b) = (Stat::parse(&s[0]), Stat::parse(&s[1]));
    assert_monotonic(&a, &b);
    // The second read is a new rendering: 0.5 s of wall time (and whatever CPU the
    // spinning got on this shared machine) later.
    assert!(
        b.busy() > a.busy() && b.busy() + b.idle() >= a.busy() + a.idle() + 30,
        "0.5 s of spinning between the reads:\n{}\n{}",
        a.text,
        b.text
    );
}

/// One sample printed by [`SAMPLE`].
struct Sample {
    /// The container's /proc/uptime, s.
    up: f64,
    /// `cpuacct.usage`: the scheduler's exact run time, ns.
    usage: u64,
    /// user + system summed over `cpuacct.usage_all` (tick-sampled, what /proc/stat is
    /// made of), in ticks.
    usage_all: u64,
    stat: Option<Stat>,
}

/// Prints the container's uptime, its cgroup's usage and usage_all, and /proc/stat.
const SAMPLE: &str = "cat /proc/uptime \"$USAGE\" \"$USAGE_ALL\" /proc/stat";

fn sample(t: &str) -> Sample {
    let lines: Vec<&str> = t.lines().collect();
    let up = lines[0].split_whitespace().next().unwrap().parse().unwrap();
    let usage = lines[1].trim().parse().unwrap();
    assert_eq!(lines[2], "cpu user system", "usage_all header:\n{t}");
    let rows: Vec<Vec<u64>> = lines[3..]
        .iter()
        .map(|l| {
            l.split_whitespace()
                .map(|v| v.parse().ok())
                .collect::<Option<Vec<u64>>>()
        })
        .take_while(|r| r.as_ref().is_some_and(|r| r.len() == 3))
        .flatten()
        .collect();
    let ns: u64 = rows.iter().map(|r| r[1] + r[2]).sum();
    let rest = lines[3 + rows.len()..].join("\n");
    Sample {
        up,
        usage,
        usage_all: ns / 10_000_000,
        stat: (!rest.is_empty()).then(|| Stat::parse(&(rest + "\n"))),
    }
}

/// us + sy of each `%Cpu(s):` line of `top -b`.
fn top_busy(top: &str) -> Vec<f64> {
    top.lines()
        .filter_map(|l| l.strip_prefix("%Cpu(s):"))
        .map(|l| {
            let field = |name: &str| -> f64 {
                l.split(',')
                    .find_map(|f| f.trim().strip_suffix(name)?.trim().parse().ok())
                    .unwrap_or_else(|| panic!("no {name} in top's {l:?}"))
            };
            field("us") + field("sy")
        })
        .collect()
}

/// A busy loop, pinned to CPU `pin`, in a container of 0.5 CPU (5 ms every 10 ms: the
/// short period keeps the usage in any 1 s window within 1 % of the quota) with cpuset
/// `cpuset`, under a daemon started with `args`.
///
/// What must hold: /proc/stat's busy grows with the cgroup's usage and its idle only by
/// the capacity the loop left unused (≈ 0 when saturated); when the loop gets its whole
/// quota, `top`'s 1 s frames show ≥ 90 % us+sy.
///
/// This machine is shared: other work can keep the loop from getting its quota (the
/// group gets the highest cpu.shares against that), and then the container is rightly
/// shown less busy. Up to 3 containers are tried for one in which the loop saturated the
/// quota; the /proc/stat checks hold in every one; if none saturated, the test fails
/// saying so.
fn busy_half_cpu(args: &[&str], cpuset: &str, pin: &str) {
    let d = daemon(args);
    let mut ratios = Vec::new();
    for _ in 0..3 {
        let cg = Cgroup::v1(
            "busy",
            &[
                ("cpuset", "cpuset.cpus", cpuset),
                ("cpu", "cpu.cfs_period_us", "10000"),
                ("cpu", "cpu.cfs_quota_us", "5000"),
                // Ahead of everything else on this shared machine, up to its quota.
                ("cpu", "cpu.shares", "262144"),
            ],
        );
        let usage = cg.dir("cpuacct").join("cpuacct.usage");
        let usage_all = cg.dir("cpuacct").join("cpuacct.usage_all");
        let out = run_cpu(
            &cg,
            &d,
            &format!(
                "taskset -c \"$PIN\" sh -c 'while :; do :; done' & loop=$!\n\
                 {SAMPLE}; echo ---\n\
                 top -bn4 -d1; echo ---\n\
                 {SAMPLE}; echo ---\n\
                 sleep 2\n\
                 {SAMPLE}\n\
                 kill $loop"
            ),
            &[
                ("PIN", pin),
                ("USAGE", usage.to_str().unwrap()),
                ("USAGE_ALL", usage_all.to_str().unwrap()),
            ],
        );
        let s = sections(out.ok());
        assert_eq!(s.len(), 4, "{}", out.stdout);

        // top: frame 1 is since start; frames 2-4 are 1 s intervals inside the window
        // the usage is measured around.
        let frames = top_busy(&s[1]);
        assert_eq!(frames.len(), 4, "top:\n{}", s[1]);
        let (w0, w1) = (sample(&s[0]), sample(&s[2]));
        let ratio = (w1.usage - w0.usage) as f64 / 1e9 / (0.5 * (w1.up - w0.up));

        // /proc/stat over 2 s. Its user/system come from usage_all, which the kernel
        // samples at ticks, so they are compared with that, and idle with what the
        // capacity of 0.5 CPU leaves of it.
        let (p0, p1) = (sample(&s[2]), sample(&s[3]));
        let (st0, st1) = (p0.stat.unwrap(), p1.stat.unwrap());
        assert_monotonic(&st0, &st1);
        let wall = ((p1.up - p0.up) * 100.0).round() as i64;
        let used = (p1.usage_all - p0.usage_all) as i64;
        let busy = (st1.busy() - st0.busy()) as i64;
        let idle = (st1.idle() - st0.idle()) as i64;
        // Either reading may be a rendering shared within the daemon's 100 ms render
        // cache (10 ticks), so the deltas may differ by that much more.
        assert!(
            (busy - used).abs() <= 5 + 10,
            "busy grew {busy} ticks; usage_all grew {used}\n{}\n{}",
            st0.text,
            st1.text
        );
        let unused = (wall / 2 - used).max(0);
        assert!(
            (idle - unused).abs() <= 10 + 10,
            "idle grew {idle} ticks; the 0.5 CPU left {unused} of {wall} ticks unused \
             (busy {busy})\n{}\n{}",
            st0.text,
            st1.text
        );

        ratios.push(ratio);
        if ratio >= 0.9 {
            assert!(
                frames[1..].iter().any(|&f| f >= 90.0),
                "a container using {:.0} % of its quota must look busy in top: us+sy per \
                 frame {frames:?}\n{}",
                100.0 * ratio,
                s[1]
            );
            return;
        }
    }
    panic!(
        "the loop never got its 0.5 CPU (share of the quota used per try: {ratios:?}): \
         this machine is too loaded to check what top shows for a saturated quota"
    );
}

#[test]
fn busy_loop_in_a_half_cpu_container_on_one_cpu_looks_busy() {
    busy_half_cpu(&[], "1", "1");
}

#[test]
fn busy_loop_in_a_half_cpu_container_on_two_cpus_looks_busy() {
    busy_half_cpu(&[], "0-1", "0");
}

#[test]
fn busy_loop_in_a_half_cpu_container_quota_view_looks_busy() {
    busy_half_cpu(&["--enable-cfs"], "0-1", "0");
}

#[test]
fn cpuset_change_while_running_keeps_stat_monotonic() {
    let d = daemon(&[]);
    let cg = Cgroup::v1("cpuset-change", &[("cpuset", "cpuset.cpus", "0-1")]);
    let c = Running::start(&cg, &d.mnt);
    c.exec(&format!(
        "mount --bind '{}' /sys/devices/system/cpu",
        d.path("sys/devices/system/cpu").display()
    ))
    .ok();
    // Something to account: a loop in the container's cgroup (nsenter enters the
    // namespaces, not the cgroup) for the whole test.
    let procs: Vec<String> = cg
        .procs_files()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    c.exec(&format!(
        "sh -c 'for f in {}; do echo $$ > $f || exit 1; done; exec sh -c \"while :; do :; done\"' \
         >/dev/null 2>&1 &",
        procs.join(" ")
    ))
    .ok();
    let read = || Stat::parse(c.exec("cat /proc/stat").ok());
    let mut prev = read();
    assert_eq!(prev.ids(), [0, 1]);
    let next = read();
    assert_monotonic(&prev, &next);
    prev = next;

    cg.write("cpuset", "cpuset.cpus", "1");
    let last = poll(DEADLINE, "/proc/stat to show only cpu1", || {
        let now = read();
        assert_monotonic(&prev, &now);
        prev = now.clone();
        (now.ids() == [1]).then_some(now)
    });
    // And again later: still growing, still only cpu1.
    let after = poll(DEADLINE, "the counters to grow", || {
        let now = read();
        (now.busy() + now.idle() > last.busy() + last.idle()).then_some(now)
    });
    assert_monotonic(&last, &after);
    assert_eq!(after.ids(), [1]);
    let s = sections(
        c.exec(
            "cat /sys/devices/system/cpu/online; echo ---; ls /sys/devices/system/cpu; \
             echo ---; grep -c ^processor /proc/cpuinfo; echo ---; getconf _NPROCESSORS_ONLN",
        )
        .ok(),
    );
    assert_eq!(s[0], "1\n");
    let ls: Vec<String> = s[1].lines().map(str::to_string).collect();
    assert_eq!(cpu_dirs(&ls), ["cpu1"]);
    assert_eq!(s[2], "1\n");
    assert_eq!(s[3], "1\n");
}
