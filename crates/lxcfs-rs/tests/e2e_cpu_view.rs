//! End to end: the CPU view (/proc/cpuinfo, /proc/stat, /proc/uptime and the whole
//! /sys/devices/system/cpu directory) as real tools inside containers see it — the CPU
//! count every tool reports, the ids in every file, each container's own CPU directory,
//! an uptime that starts with the container, and /proc/stat counters that never go back
//! between reads. Real cgroups (v1 or v2) with a cpuset and a CFS quota, a new pid + mount
//! namespace, every file bind-mounted as a runtime does, plus the daemon's
//! `sys/devices/system/cpu` over the container's `/sys/devices/system/cpu`.
//!
//! Needs root, /dev/fuse, writable cgroups (v1, hybrid or v2), a host with at least 2 CPUs and
//! `nproc`, `getconf`, `python3`, `lscpu`, `top`, `uptime`, `taskset`, `ls`: fails,
//! saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod cpu_kit;

use std::fs;

use common::*;
use cpu_kit::*;

/// A CFS quota of half a CPU.
const HALF_A_CPU: Limit = Limit::Quota {
    quota_us: 50_000,
    period_us: 100_000,
};

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

#[test]
fn one_cpu_cpuset_is_one_cpu_for_every_tool() {
    let d = daemon(&[]);
    let cg = Cgroup::new("cpuset1", &[Limit::cpus("1")]);
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
    // Nothing offline: the kernel's offline ⊆ possible; listing cpu0 there gave htop a
    // phantom offline row.
    assert_eq!(v.offline, "\n");
    // lscpu's table: one row, the CPU the container has, online.
    let out = run_cpu(&cg, &d, "lscpu -e=CPU,ONLINE", &[]);
    let rows: Vec<Vec<&str>> = out
        .ok()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows, [["1", "yes"]], "lscpu -e:\n{}", out.ok());
}

#[test]
fn quota_view_shows_one_cpu_as_cpu0() {
    let d = daemon(&["--enable-cfs"]);
    let cg = Cgroup::new("cfs-half", &[Limit::cpus("0-1"), HALF_A_CPU]);
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
    assert_eq!(v.offline, "\n");

    // Renumbered: host cpu1 alone is shown as cpu0, with cpu1's own block and files.
    let cg = Cgroup::new("cfs-half-cpu1", &[Limit::cpus("1"), HALF_A_CPU]);
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
    let a = Cgroup::new("own0", &[Limit::cpus("0")]);
    let b = Cgroup::new("own1", &[Limit::cpus("1")]);
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
    let cg = Cgroup::new("uptime", &[Limit::cpus("1")]);
    let out = run_cpu(&cg, &d, "cat /proc/uptime; echo ---; uptime", &[]);
    let s = sections(out.ok());
    let mut f = s[0].split_whitespace();
    let up: f64 = f.next().unwrap().parse().unwrap();
    let idle: f64 = f.next().unwrap().parse().unwrap();
    assert!(up < 5.0, "a fresh container's uptime is {up} s");
    assert!(up >= 0.0);
    // One CPU: it cannot have idled longer than it has existed.
    assert!(idle <= up + 0.01, "idle {idle} > uptime {up}");
    let host_up: f64 = host_uptime_secs();
    assert!(host_up > up, "the host's uptime must not leak in");
    assert!(s[1].contains("up 0 min"), "uptime: {}", s[1]);
}

#[test]
fn stat_counters_never_decrease_between_reads() {
    let d = daemon(&[]);
    let cg = Cgroup::new("stat-mono", &[Limit::cpus("0-1")]);
    let out = run_cpu(
        &cg,
        &d,
        "sh -c 'while :; do :; done' & loop=$!\n\
         cat /proc/uptime; echo ---\n\
         for i in 1 2 3 4; do cat /proc/stat; echo ---; sleep 1; done\n\
         cat /proc/stat; echo ---; cat /proc/uptime; kill $loop",
        &[],
    );
    let s = sections(out.ok());
    assert_eq!(s.len(), 7);
    let up = |t: &str| -> f64 { t.split_whitespace().next().unwrap().parse().unwrap() };
    // The wall time the reads spanned (a loaded machine stretches `sleep 1`).
    let secs = up(&s[6]) - up(&s[0]);
    let stats: Vec<Stat> = s[1..6].iter().map(|t| Stat::parse(t)).collect();
    for w in stats.windows(2) {
        assert_eq!(w[0].ids(), [0, 1]);
        assert_monotonic(&w[0], &w[1]);
    }
    let (first, last) = (&stats[0], &stats[4]);
    assert!(last.busy() > first.busy(), "the loop's time shows up");
    // About 4 s on 2 CPUs: 200 ticks of user + system + idle a second between the two,
    // within the uptime reads around them.
    let grown = last.busy() + last.idle() - first.busy() - first.idle();
    let most = (secs * 200.0).ceil() as u64 + 20;
    assert!(
        (600..=most).contains(&grown),
        "{grown} ticks in {secs:.2} s on 2 CPUs\n{}\n{}",
        first.text,
        last.text
    );
}

#[test]
fn rereading_an_open_stat_at_offset_0_renders_anew() {
    let d = daemon(&[]);
    let cg = Cgroup::new("reread", &[Limit::cpus("1")]);
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

/// `--enable-cpu-shares`: a container whose cgroup has the shares Kubernetes writes for
/// a request of one CPU sees one CPU in every file and tool, renumbered as cpu0; one
/// with two CPUs' worth sees both. Without the flag, shares change nothing.
#[test]
fn cpu_shares_bound_the_count_when_asked() {
    let d = daemon(&["--enable-cpu-shares"]);
    let one = Cgroup::new("shares1", &[Limit::cpus("0-1"), Limit::Shares(1024)]);
    let v = look(&one, &d);
    assert_eq!(v.onln, "1", "getconf _NPROCESSORS_ONLN");
    assert_eq!(v.conf, "1", "getconf _NPROCESSORS_CONF");
    assert_eq!(v.python, "1", "os.cpu_count()");
    assert_eq!(lscpu_value(&v.lscpu, "CPU(s)"), "1", "lscpu:\n{}", v.lscpu);
    assert_eq!(processors(&v.cpuinfo), [0], "cpuinfo:\n{}", v.cpuinfo);
    assert_eq!(v.stat.ids(), [0], "stat:\n{}", v.stat.text);
    assert_eq!(cpu_dirs(&v.ls), ["cpu0"], "ls: {:?}", v.ls);
    assert_eq!(v.online, "0\n");
    let two = Cgroup::new("shares2", &[Limit::cpus("0-1"), Limit::Shares(2048)]);
    let v = look(&two, &d);
    assert_eq!(v.onln, "2", "getconf _NPROCESSORS_ONLN");
    assert_eq!(v.online, "0-1\n");

    let plain = daemon(&[]);
    let v = look(&one, &plain);
    assert_eq!(
        v.onln, "2",
        "without the flag, shares do not limit the count"
    );
}

/// A host CPU file kept for root (`cpufreq/cpuinfo_cur_freq` is 0400 on real hardware)
/// is refused to a container's other users, as the kernel's own file refuses them,
/// though the daemon itself can read it. This machine has none, so the test makes one:
/// `modalias` is 0400 while it runs (put back after, even on failure).
#[test]
fn a_root_only_host_cpu_file_is_refused_to_other_users_as_the_kernels_is() {
    struct Mode(&'static str, u32);
    impl Drop for Mode {
        fn drop(&mut self) {
            let _ = std::fs::set_permissions(self.0, std::fs::Permissions::from_mode(self.1));
        }
    }
    use std::os::unix::fs::PermissionsExt;
    let file = "/sys/devices/system/cpu/modalias";
    let was = std::fs::metadata(file).unwrap().permissions().mode() & 0o7777;
    // The kernel makes it 0444: a 0400 now is one a killed run of this test left.
    let _restore = Mode(file, if was == 0o400 { 0o444 } else { was });
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o400)).unwrap();
    let d = Daemon::start(&[]);
    let cg = Cgroup::new("root-only", &[]);
    let served = d.path("sys/devices/system/cpu/modalias");
    let script = format!(
        "for f in {file} {served}; do\n\
           head -c 20 \"$f\" >/dev/null && echo root-reads\n\
           setpriv --reuid=65534 --regid=65534 --clear-groups head -c 20 \"$f\" >/dev/null \
             2>&1 && echo nobody-reads || echo nobody-refused\n\
         done",
        served = served.display()
    );
    let out = run(&cg, &d.mnt, &script);
    assert_eq!(
        out.ok().split_whitespace().collect::<Vec<_>>(),
        [
            "root-reads",
            "nobody-refused",
            "root-reads",
            "nobody-refused"
        ],
        "the kernel's file, then ours:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}
