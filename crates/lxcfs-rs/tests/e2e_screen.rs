//! End to end: what htop and top draw on the screen inside a container. htop 3.2 runs
//! headless in a tmux session of fixed size (the only way to get its rendered screen:
//! it draws with curses), top in batch mode. Each CPU meter row, memory meter and
//! header line must show the container: its cpuset's CPUs (or the quota's in the quota
//! view) and its memory limit, with default flags and with `--enable-cfs`.
//!
//! Needs root, /dev/fuse, writable cgroups (v1, hybrid or v2), a host with CPUs 0 and 1,
//! htop, tmux and procps: fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod cpu_kit;

use common::*;
use cpu_kit::*;

const LIMIT: u64 = 256 * MIB;

/// Runs htop in a 120×30 tmux session until its memory meter is drawn and a second
/// more (a refresh), prints the screen (or why htop stopped: the pane stays), then
/// `top -bn1` after `---`. htop draws for an xterm: tmux's own terminal entry
/// (`tmux-256color`) is not on every machine (the VM has only `xterm`).
const SCREENS: &str = "export HOME=$(mktemp -d) TERM=xterm\n\
     tmux -S \"$HOME/tmux\" new-session -d -x 120 -y 30 \
       'TERM=xterm htop -d 10 2>&1; echo \"htop exited: $?\"; sleep 60' || exit 96\n\
     for i in $(seq 40); do\n\
       tmux -S \"$HOME/tmux\" capture-pane -p | grep -q -e 'Mem\\[' -e 'htop exited' && break\n\
       sleep 0.5\n\
     done\n\
     sleep 1\n\
     tmux -S \"$HOME/tmux\" capture-pane -p\n\
     tmux -S \"$HOME/tmux\" kill-server\n\
     echo ---\n\
     top -bn1 -w 200 | head -5\n\
     echo ---\n\
     top -1 -bn1 -w 200 | grep '^%Cpu'";

struct Screens {
    /// htop's header: the label of each CPU meter row (its id, or `CPU` when htop
    /// counts a single CPU), in screen order, and whether it says `offline`.
    cpu_rows: Vec<(String, bool)>,
    /// htop's memory meter total, as it prints it (`256M`).
    mem_total: String,
    /// top's `Tasks:` total, `%Cpu(s)` fields' sum, `MiB Mem` total.
    tasks: u64,
    cpu_sum: f64,
    mib_mem: f64,
    /// `top -1`'s per-CPU labels (`%Cpu0`, ...).
    top_cpus: Vec<String>,
    text: String,
}

fn screens(cg: &Cgroup, d: &Daemon) -> Screens {
    require_tools(&["htop", "tmux"], "htop, tmux").unwrap();
    let out = run_cpu(cg, d, SCREENS, &[]);
    let text = out.ok().to_string();
    let s = sections(&text);
    assert_eq!(s.len(), 3, "{text}");
    let htop = &s[0];
    // The meters come before the process list's header.
    let header: Vec<&str> = htop.lines().take_while(|l| !l.contains("PID")).collect();
    let mut cpu_rows = Vec::new();
    let mut mem_total = None;
    for l in &header {
        // A CPU meter is `<id>[<bar> <value>]`; several may share a line.
        let mut rest = *l;
        while let Some(open) = rest.find('[') {
            let label = rest[..open].split_whitespace().last().unwrap_or("");
            let close = rest[open..].find(']').map_or(rest.len(), |c| open + c);
            let inside = &rest[open + 1..close];
            if label == "CPU" || label.parse::<u32>().is_ok() {
                cpu_rows.push((label.to_string(), inside.contains("offline")));
            } else if label == "Mem" {
                let total = inside.rsplit('/').next().unwrap().trim();
                mem_total = Some(total.to_string());
            }
            rest = &rest[close.min(rest.len())..];
            rest = rest.strip_prefix(']').unwrap_or(rest);
        }
    }
    let top = &s[1];
    let line = |prefix: &str| -> &str {
        top.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in top:\n{top}"))
    };
    let tasks = line("Tasks:")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let cpu_sum = line("%Cpu(s):")
        .split(',')
        .map(|f| f.split_whitespace().next().unwrap().parse::<f64>().unwrap())
        .sum();
    let mib_mem = line("MiB Mem :")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // top -1 puts as many CPUs on a line as its width holds.
    let top_cpus = s[2]
        .split_whitespace()
        .filter(|w| w.starts_with("%Cpu"))
        .map(|w| w.trim_end_matches(':').to_string())
        .collect();
    Screens {
        cpu_rows,
        mem_total: mem_total.unwrap_or_else(|| panic!("no Mem meter in htop:\n{htop}")),
        tasks,
        cpu_sum,
        mib_mem,
        top_cpus,
        text,
    }
}

/// What every container here must show in htop's memory meter and top's header.
fn assert_memory_and_tasks(s: &Screens) {
    assert_eq!(s.mem_total, "256M", "htop's Mem meter\n{}", s.text);
    assert_eq!(s.mib_mem, 256.0, "top's MiB Mem\n{}", s.text);
    // The container runs its init shell, tmux's server, htop, and top: a handful,
    // not the host's hundreds.
    assert!(
        (2..=12).contains(&s.tasks),
        "top's Tasks: {}\n{}",
        s.tasks,
        s.text
    );
    assert!(
        (s.cpu_sum - 100.0).abs() <= 1.0,
        "top's %Cpu(s) fields sum to {}\n{}",
        s.cpu_sum,
        s.text
    );
}

fn container(cpuset: &str, quota: bool) -> Cgroup {
    let mut limits = vec![Limit::Memory(LIMIT), Limit::cpus(cpuset)];
    if quota {
        limits.push(Limit::Quota {
            quota_us: 50_000,
            period_us: 100_000,
        });
    }
    Cgroup::new("screen", &limits)
}

fn rows(r: &[(&str, bool)]) -> Vec<(String, bool)> {
    r.iter().map(|&(l, o)| (l.to_string(), o)).collect()
}

#[test]
fn htop_and_top_show_a_cpuset_starting_at_0() {
    let d = daemon(&[]);
    // Exactly the container's CPUs, whatever its quota (default flags): one CPU is
    // htop's single `CPU` meter, two are meters 0 and 1.
    let s = screens(&container("0", true), &d);
    assert_eq!(s.cpu_rows, rows(&[("CPU", false)]), "htop\n{}", s.text);
    assert_eq!(s.top_cpus, ["%Cpu0"], "{}", s.text);
    assert_memory_and_tasks(&s);
    let s = screens(&container("0-1", true), &d);
    assert_eq!(
        s.cpu_rows,
        rows(&[("0", false), ("1", false)]),
        "htop\n{}",
        s.text
    );
    assert_eq!(s.top_cpus, ["%Cpu0", "%Cpu1"], "{}", s.text);
    assert_memory_and_tasks(&s);
}

#[test]
fn htop_draws_the_documented_offline_row_below_a_cpuset_not_starting_at_0() {
    let d = daemon(&[]);
    let s = screens(&container("1", false), &d);
    // README: htop 3.2 numbers its rows from 0 to the highest cpuN and draws the ids
    // it does not find as offline; ids stay the host's by default, so cpuset 1 gets
    // an offline row for CPU 0, then CPU 1's own (htop, counting one CPU online,
    // labels both `CPU`). top shows only CPU 1.
    assert_eq!(
        s.cpu_rows,
        rows(&[("CPU", true), ("CPU", false)]),
        "htop\n{}",
        s.text
    );
    assert_eq!(s.top_cpus, ["%Cpu1"], "{}", s.text);
    assert_memory_and_tasks(&s);
}

#[test]
fn htop_and_top_in_the_quota_view_show_the_quotas_cpu_as_cpu0() {
    let d = daemon(&["--enable-cfs"]);
    for cpuset in ["0-1", "1"] {
        let s = screens(&container(cpuset, true), &d);
        // ⌈0.5⌉ = 1 CPU, renumbered: no offline row even for cpuset 1.
        assert_eq!(
            s.cpu_rows,
            rows(&[("CPU", false)]),
            "cpuset {cpuset}: htop\n{}",
            s.text
        );
        assert_eq!(s.top_cpus, ["%Cpu0"], "cpuset {cpuset}\n{}", s.text);
        assert_memory_and_tasks(&s);
    }
}
