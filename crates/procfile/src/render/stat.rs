use std::io::Write;

use crate::cpustat::{StatState, ticks};

/// Container values for the process lines of `/proc/stat`; `None` keeps the host's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessCounts {
    pub processes: Option<u64>,
    pub procs_running: Option<u64>,
    pub procs_blocked: Option<u64>,
}

/// `/proc/stat`: the `cpu` line (the sum of the per-CPU lines), one `cpuN` line per
/// shown CPU, then the host's other lines (`intr`, `ctxt`, `btime`, `softirq`) with
/// the process counts replaced where given.
pub fn stat(
    host: &str,
    state: &StatState,
    ticks_per_sec: u64,
    procs: &ProcessCounts,
    out: &mut Vec<u8>,
) {
    let lines: Vec<(u32, [u64; 3])> = state
        .slots()
        .iter()
        .map(|(id, c)| {
            (
                *id,
                [
                    ticks(c.user, ticks_per_sec),
                    ticks(c.system, ticks_per_sec),
                    ticks(c.idle, ticks_per_sec),
                ],
            )
        })
        .collect();
    let mut sum = [0u64; 3];
    for (_, t) in &lines {
        for (s, v) in sum.iter_mut().zip(t) {
            *s = s.saturating_add(*v);
        }
    }
    let _ = writeln!(out, "cpu  {} 0 {} {} 0 0 0 0 0 0", sum[0], sum[1], sum[2]);
    for (id, [u, s, i]) in &lines {
        let _ = writeln!(out, "cpu{id} {u} 0 {s} {i} 0 0 0 0 0 0");
    }
    for line in host.lines() {
        if line.starts_with("cpu") {
            continue;
        }
        let key = line.split_ascii_whitespace().next().unwrap_or("");
        let value = match key {
            "processes" => procs.processes,
            "procs_running" => procs.procs_running,
            "procs_blocked" => procs.procs_blocked,
            _ => None,
        };
        match value {
            Some(v) => {
                let _ = writeln!(out, "{key} {v}");
            }
            None => {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::CpuSet;
    use crate::cpu::CpuView;
    use crate::cpustat::CpuUsage;

    #[test]
    fn cpu_line_is_the_sum_and_host_lines_follow() {
        let all = CpuSet::parse("0-3").unwrap();
        let v = CpuView::new(&all, Some(&CpuSet::parse("1-2").unwrap()), None, false);
        let u = CpuUsage {
            user_ns: 3_000_000_000,
            system_ns: 1_000_000_000,
            per_cpu: None,
        };
        let st = StatState::start(&v, &u, 10_000_000_000, 50_000_000_000);
        let host = "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 5 1 2\nctxt 99\nbtime 1700000000\nprocesses 777\nprocs_running 9\nprocs_blocked 1\nsoftirq 1 2\n";
        let procs = ProcessCounts {
            processes: Some(12),
            procs_running: Some(2),
            procs_blocked: Some(0),
        };
        let mut out = Vec::new();
        stat(host, &st, 100, &procs, &mut out);
        let s = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "cpu  300 0 100 1600 0 0 0 0 0 0");
        assert_eq!(lines[1], "cpu1 150 0 50 800 0 0 0 0 0 0");
        assert_eq!(lines[2], "cpu2 150 0 50 800 0 0 0 0 0 0");
        assert_eq!(
            &lines[3..],
            [
                "intr 5 1 2",
                "ctxt 99",
                "btime 1700000000",
                "processes 12",
                "procs_running 2",
                "procs_blocked 0",
                "softirq 1 2"
            ]
        );
    }
}
