use std::io::Write;

use crate::cpustat::{StatState, ticks};

/// Container values for the process lines of `/proc/stat`; `None` keeps the host's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessCounts {
    pub processes: Option<u64>,
    pub procs_running: Option<u64>,
    pub procs_blocked: Option<u64>,
    /// The container's age and the host's uptime, ns: the host-wide event counters
    /// (`intr`, `ctxt`, `softirq`) are shown scaled by their ratio. `None` keeps them.
    pub lifetime: Option<(u64, u64)>,
}

/// The host's count of events since boot, scaled to the share of the host's uptime the
/// container has lived: a container-relative count of the same average rate, so that
/// tools dividing it by the container's uptime or CPU time (vmstat's first line) get the
/// host's rate, not the host's whole history over the container's few seconds. It is a
/// pure function of the host's counter and the two ages, both of which only grow (and
/// the ratio with them), so it never decreases, across daemon restarts too.
pub(crate) fn scaled(v: u64, (age, host): (u64, u64)) -> u64 {
    if host == 0 || age >= host {
        return v;
    }
    u64::try_from(u128::from(v) * u128::from(age) / u128::from(host)).unwrap_or(v)
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
        match (value, procs.lifetime) {
            (Some(v), _) => {
                let _ = writeln!(out, "{key} {v}");
            }
            (None, Some(life)) if matches!(key, "intr" | "ctxt" | "softirq") => {
                out.extend_from_slice(key.as_bytes());
                for field in line.split_ascii_whitespace().skip(1) {
                    match field.parse::<u64>() {
                        Ok(n) => {
                            let _ = write!(out, " {}", scaled(n, life));
                        }
                        Err(_) => {
                            out.push(b' ');
                            out.extend_from_slice(field.as_bytes());
                        }
                    }
                }
                out.push(b'\n');
            }
            (None, _) => {
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
            lifetime: None,
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

    #[test]
    fn event_counters_are_scaled_to_the_containers_share_of_the_hosts_uptime() {
        let host = "cpu  1 0 1 1 0 0 0 0 0 0\nintr 1000 600 0 400\nctxt 5000\nbtime 1700000000\nsoftirq 300 3 0\n";
        let all = CpuSet::parse("0").unwrap();
        let v = CpuView::new(&all, None, None, false);
        let u = CpuUsage {
            user_ns: 0,
            system_ns: 0,
            per_cpu: None,
        };
        let st = StatState::start(&v, &u, 0, 1);
        let render = |life| {
            let procs = ProcessCounts {
                lifetime: life,
                ..ProcessCounts::default()
            };
            let mut out = Vec::new();
            stat(host, &st, 100, &procs, &mut out);
            String::from_utf8(out).unwrap()
        };
        // A container alive for a tenth of the host's uptime.
        let s = render(Some((10, 100)));
        assert!(s.contains("\nintr 100 60 0 40\n"), "{s}");
        assert!(s.contains("\nctxt 500\n"), "{s}");
        assert!(s.contains("\nsoftirq 30 0 0\n"), "{s}");
        assert!(s.contains("\nbtime 1700000000\n"), "{s}");
        // As old as the host (or a clock oddity): the host's own counts.
        assert!(render(Some((100, 100))).contains("\nctxt 5000\n"));
        assert!(render(Some((200, 100))).contains("\nctxt 5000\n"));
        assert!(render(Some((1, 0))).contains("\nctxt 5000\n"));
        assert!(render(None).contains("\nintr 1000 600 0 400\n"));
    }

    proptest::proptest! {
        /// Both ages advance by the same wall time and the host's count only grows:
        /// the scaled count never decreases.
        #[test]
        fn scaled_counts_never_decrease(
            v1 in 0u64..u64::MAX / 2, dv in 0u64..1 << 40,
            age in 0u64..1 << 50, before in 0u64..1 << 50, dt in 0u64..1 << 40,
        ) {
            let host = age + before;
            let a = scaled(v1, (age, host));
            let b = scaled(v1 + dv, (age + dt, host + dt));
            proptest::prop_assert!(a <= b, "{a} then {b}");
            proptest::prop_assert!(a <= v1);
        }
    }
}
