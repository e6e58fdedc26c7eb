//! The tools a user runs in a container to see its limits — procps `free`, `top` and
//! `uptime`, busybox `nproc`, `cat /proc/swaps`, util-linux `lscpu` — run by one script
//! in every runtime's container and checked by one function, so that each runtime is
//! held to the same values the same way.

use crate::e2e::{DEADLINE, free_total, host_mem_total_kb, part};

use super::Rootfs;

/// The host programs [`SCRIPT`] runs from `/usr/bin`, copied by [`rootfs`]. busybox's
/// `free` and `uptime` call sysinfo(2), which no file can change: the real ones read
/// /proc, as a distribution image's do.
pub const TOOLS: [&str; 4] = ["free", "top", "uptime", "lscpu"];

/// Where ncurses (procps top) finds the `dumb` terminal's entry: on Debian's hosts
/// (ncurses-base) the second, in the pure-v2 VM's root the first; in the rootfs the
/// first.
const DUMB: [&str; 2] = ["/usr/share/terminfo/d/dumb", "/lib/terminfo/d/dumb"];

/// A busybox rootfs with [`TOOLS`] in `/usr/bin` and the `dumb` terminal's terminfo
/// entry: procps top exits 1, silently, when it finds no entry for `$TERM`, even in
/// batch mode.
pub fn rootfs() -> Rootfs {
    let r = Rootfs::busybox().with_tools(&TOOLS);
    let from = DUMB
        .iter()
        .find(|p| std::path::Path::new(p).is_file())
        .unwrap_or_else(|| panic!("no terminfo entry for `dumb` at {DUMB:?} (ncurses-base)"));
    let to = r.path.join(&DUMB[0][1..]);
    std::fs::create_dir_all(to.parent().expect("a dir")).expect("create the terminfo dir");
    std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {from} into the rootfs: {e}"));
    r
}

/// What a user types, each output under a `== name` line. `nproc` is busybox's, which
/// asks sched_getaffinity(2) as coreutils' does; `nproc --all` counts the CPU directory.
/// top's header is its first five lines (the process list is not ours).
pub const SCRIPT: &str = r#"
echo "== free"; /usr/bin/free -k
echo "== nproc"; nproc
echo "== nproc --all"; nproc --all
echo "== uptime"; /usr/bin/uptime
echo "== /proc/uptime"; cat /proc/uptime
echo "== top"; TERM=dumb /usr/bin/top -bn1 2>&1 | head -5
echo "== swaps"; cat /proc/swaps
echo "== lscpu"; /usr/bin/lscpu | grep -E '^(CPU\(s\)|On-line CPU\(s\) list):'
echo "== end"
"#;

/// [`SCRIPT`], then the files behind the tools: the first line of `/proc/meminfo`, the
/// online CPUs, cpuinfo's processors (what Docker and Podman take of the default set).
pub fn script_with_files() -> String {
    format!(
        "{SCRIPT}{}",
        r#"
echo "== meminfo"; head -1 /proc/meminfo
echo "== online"; cat /sys/devices/system/cpu/online
echo "== processors"; grep -c '^processor' /proc/cpuinfo
echo "== end"
"#
    )
}

/// The values a container's tools must show.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// free's and top's memory total, KiB.
    pub mem_kib: u64,
    /// What sched_getaffinity(2) gives (`nproc`): the cpuset's CPU count.
    pub affinity: usize,
    /// The CPUs the files show (`nproc --all`, lscpu's `CPU(s):`).
    pub cpus: usize,
    /// lscpu's `On-line CPU(s) list:`.
    pub online: String,
}

impl Expectation {
    /// `-m 256m --cpuset-cpus 1`: 256 MiB, one CPU (host id 1) everywhere.
    pub fn limited() -> Expectation {
        Expectation {
            mem_kib: 256 * 1024,
            affinity: 1,
            cpus: 1,
            online: "1".into(),
        }
    }

    /// `--cpus 0.5`: the host's memory; with `--enable-cfs` ⌈0.5⌉ = one CPU renumbered
    /// 0 in the files, without it the host's CPUs. sched_getaffinity(2) is the
    /// cpuset's (all of the host's) either way: a quota is no affinity.
    pub fn half_cpu(enable_cfs: bool) -> Expectation {
        let host = std::thread::available_parallelism()
            .expect("the host's CPU count")
            .get();
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
            .expect("read the host's online CPUs");
        Expectation {
            mem_kib: host_mem_total_kb(),
            affinity: host,
            cpus: if enable_cfs { 1 } else { host },
            online: if enable_cfs {
                "0".into()
            } else {
                online.trim().into()
            },
        }
    }
}

/// Asserts that [`SCRIPT`]'s output `out` shows `e`; `who` names the runtime in the
/// messages.
pub fn check_limits(who: &str, out: &str, e: &Expectation) {
    let part = |name| part(out, name);
    let ctx = format!("{who}: the container's tools printed:\n{out}");

    assert_eq!(free_total(part("free")), e.mem_kib, "free's total; {ctx}");

    assert_eq!(part("nproc"), e.affinity.to_string(), "nproc; {ctx}");
    assert_eq!(
        part("nproc --all"),
        e.cpus.to_string(),
        "nproc --all; {ctx}"
    );

    // The container's age: seconds, so procps uptime says `up 0 min` (or 1 at a
    // minute's edge), never the host's hours.
    let up: f64 = part("/proc/uptime")
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no seconds in /proc/uptime; {ctx}"));
    assert!(up < DEADLINE.as_secs_f64(), "uptime {up} s; {ctx}");
    let says = part("uptime");
    assert!(
        says.contains(" up 0 min,") || says.contains(" up 1 min,"),
        "procps uptime; {ctx}"
    );

    let top = part("top");
    assert!(
        top.contains(" up 0 min,") || top.contains(" up 1 min,"),
        "top's uptime; {ctx}"
    );
    let mib = top_value(top, "MiB Mem :", "total").unwrap_or_else(|| panic!("top; {ctx}"));
    let want = e.mem_kib as f64 / 1024.0;
    // top prints one decimal.
    assert!(
        (mib - want).abs() <= 0.05,
        "top's MiB Mem {mib}, want {want:.1}; {ctx}"
    );
    let cpu = top_cpu(top).unwrap_or_else(|| panic!("top's %Cpu(s) line does not parse; {ctx}"));
    assert!(
        cpu.iter().all(|p| (0.0..=100.0).contains(p)) && cpu.iter().sum::<f64>() <= 100.5,
        "top's %Cpu(s) {cpu:?}; {ctx}"
    );

    check_swaps(part("swaps"), &ctx);

    let lscpu = part("lscpu");
    assert_eq!(
        lscpu_value(lscpu, "CPU(s):"),
        e.cpus.to_string(),
        "lscpu; {ctx}"
    );
    // lscpu writes `0,1` where the kernel's file says `0-1`: compare the CPUs.
    assert_eq!(
        cpu_list(lscpu_value(lscpu, "On-line CPU(s) list:")),
        cpu_list(&e.online),
        "lscpu; {ctx}"
    );
}

/// No swap limit is set: the container may use the host's swap (none, or some), never
/// shows more devices than the host has, and the header is the kernel's.
fn check_swaps(swaps: &str, ctx: &str) {
    assert!(swaps.starts_with("Filename"), "/proc/swaps; {ctx}");
    let host = std::fs::read_to_string("/proc/swaps").expect("read the host's /proc/swaps");
    assert!(
        swaps.lines().count() <= host.lines().count(),
        "/proc/swaps, host's:\n{host}; {ctx}"
    );
}

/// The number before `label` on the line starting with `line` of top's header
/// (`MiB Mem :    256.0 total,  ...`).
fn top_value(top: &str, line: &str, label: &str) -> Option<f64> {
    let rest = top.lines().find_map(|l| l.strip_prefix(line))?;
    rest.split(',').find_map(|f| {
        let mut w = f.split_whitespace();
        let (v, l) = (w.next()?, w.next()?);
        (l == label).then(|| v.parse().ok()).flatten()
    })
}

/// The eight percentages of top's `%Cpu(s):` line, each `N.N label`.
fn top_cpu(top: &str) -> Option<Vec<f64>> {
    let rest = top.lines().find_map(|l| l.strip_prefix("%Cpu(s):"))?;
    let values: Option<Vec<f64>> = rest
        .split(',')
        .map(|f| {
            // ` 0.0 ni,100.0 id`: no space after a comma before three digits.
            f.split_whitespace().next()?.parse().ok()
        })
        .collect();
    values.filter(|v| v.len() == 8)
}

fn lscpu_value<'a>(lscpu: &'a str, key: &str) -> &'a str {
    lscpu
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in lscpu's output:\n{lscpu}"))
}

/// The CPU ids of a list like `0-2,5`.
fn cpu_list(list: &str) -> Vec<u32> {
    let id = |w: &str| -> u32 {
        w.trim()
            .parse()
            .unwrap_or_else(|_| panic!("not a CPU list: {list:?}"))
    };
    list.split(',')
        .flat_map(|r| match r.split_once('-') {
            Some((a, b)) => (id(a)..=id(b)).collect::<Vec<_>>(),
            None => vec![id(r)],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What runc's container printed with `-m 256m --cpuset-cpus 1` (top's process
    /// lines cut).
    const LIMITED: &str = "== free
               total        used        free      shared  buff/cache   available
Mem:          262144        1148      260996           0           0      260996
Swap:              0           0           0
== nproc
1
== nproc --all
1
== uptime
 20:13:39 up 0 min,  0 user,  load average: 0.00, 0.00, 0.00
== /proc/uptime
0.01 0.00
== top
top - 20:14:00 up 0 min,  0 user,  load average: 0.00, 0.00, 0.00
Tasks:   3 total,   1 running,   2 sleeping,   0 stopped,   0 zombie
%Cpu(s):  0.0 us,  0.0 sy,  0.0 ni,100.0 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st
MiB Mem :    256.0 total,    254.9 free,      1.1 used,      0.0 buff/cache
MiB Swap:      0.0 total,      0.0 free,      0.0 used.    254.9 avail Mem
== swaps
Filename\t\t\t\tType\t\tSize\tUsed\tPriority
== lscpu
CPU(s):                                  1
On-line CPU(s) list:                     1
== end
";

    #[test]
    fn the_containers_values_pass() {
        check_limits("test", LIMITED, &Expectation::limited());
    }

    #[test]
    #[should_panic(expected = "free's total")]
    fn the_hosts_free_fails() {
        let out = LIMITED.replace("Mem:          262144", "Mem:        24683664");
        check_limits("test", &out, &Expectation::limited());
    }

    #[test]
    #[should_panic(expected = "top's MiB Mem")]
    fn the_hosts_top_fails() {
        let out = LIMITED.replace("   256.0 total", " 24105.1 total");
        check_limits("test", &out, &Expectation::limited());
    }

    #[test]
    #[should_panic(expected = "top's uptime")]
    fn the_hosts_uptime_in_top_fails() {
        let out = LIMITED.replace("20:14:00 up 0 min", "20:14:00 up  6:26");
        check_limits("test", &out, &Expectation::limited());
    }

    #[test]
    #[should_panic(expected = "%Cpu(s) line does not parse")]
    fn a_cpu_line_without_eight_values_fails() {
        let out = LIMITED.replace(",  0.0 st", "");
        check_limits("test", &out, &Expectation::limited());
    }

    #[test]
    fn cpu_lists_expand() {
        assert_eq!(cpu_list("0-1"), cpu_list("0,1"));
        assert_eq!(cpu_list("0-2,5"), [0, 1, 2, 5]);
    }
}
