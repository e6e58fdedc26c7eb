//! The kernel's load average arithmetic (kernel/sched/loadavg.c), per container.

/// Fixed-point shift and one, as in the kernel.
pub const FSHIFT: u32 = 11;
pub const FIXED_1: u64 = 1 << FSHIFT;
/// e^(−5 s / 1 min), e^(−5 s / 5 min), e^(−5 s / 15 min) in fixed point; the kernel
/// samples every 5 s, and so do we.
pub const EXP: [u64; 3] = [1884, 2014, 2037];

/// 1, 5 and 15 minute averages in fixed point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadAvg(pub [u64; 3]);

impl LoadAvg {
    /// One 5-second sample with `active` runnable + uninterruptible tasks.
    pub fn sample(&mut self, active: u64) {
        let active = active.saturating_mul(FIXED_1);
        for (load, e) in self.0.iter_mut().zip(EXP) {
            let mut new = load
                .saturating_mul(e)
                .saturating_add(active.saturating_mul(FIXED_1 - e));
            if active >= *load {
                new = new.saturating_add(FIXED_1 - 1);
            }
            *load = new / FIXED_1;
        }
    }
}

/// Tasks in the container right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    pub running: u64,
    pub total: u64,
    /// The most recent pid in the container's numbering.
    pub last_pid: u64,
}

/// `/proc/loadavg`: `a.bb c.dd e.ff running/total last_pid`.
pub fn render(load: &LoadAvg, tasks: &TaskCounts, out: &mut Vec<u8>) {
    use std::io::Write;
    let mut parts = [(0u64, 0u64); 3];
    for (p, l) in parts.iter_mut().zip(load.0) {
        let x = l.saturating_add(FIXED_1 / 200);
        *p = (x >> FSHIFT, ((x & (FIXED_1 - 1)) * 100) >> FSHIFT);
    }
    let _ = writeln!(
        out,
        "{}.{:02} {}.{:02} {}.{:02} {}/{} {}",
        parts[0].0,
        parts[0].1,
        parts[1].0,
        parts[1].1,
        parts[2].0,
        parts[2].1,
        tasks.running,
        tasks.total,
        tasks.last_pid
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_busy_threads_for_40s_load_above_point_8() {
        let mut l = LoadAvg::default();
        for _ in 0..8 {
            l.sample(2);
        }
        let mut out = Vec::new();
        render(
            &l,
            &TaskCounts {
                running: 2,
                total: 5,
                last_pid: 9,
            },
            &mut out,
        );
        let s = String::from_utf8_lossy(&out).to_string();
        let one: f64 = s.split(' ').next().unwrap_or("0").parse().unwrap_or(0.0);
        assert!(one > 0.8 && one < 1.1, "{s}");
        assert!(s.ends_with(" 2/5 9\n"));
    }

    #[test]
    fn converges_and_decays() {
        let mut l = LoadAvg::default();
        for _ in 0..2000 {
            l.sample(3);
        }
        assert!(
            l.0.iter()
                .all(|&v| (3 * FIXED_1 - 3..=3 * FIXED_1 + FIXED_1).contains(&v))
        );
        for _ in 0..2000 {
            l.sample(0);
        }
        assert_eq!(l.0, [0, 0, 0]);
        let mut h = LoadAvg([u64::MAX; 3]);
        h.sample(u64::MAX);
    }

    #[test]
    fn zero_renders_like_the_kernel() {
        let mut out = Vec::new();
        render(
            &LoadAvg::default(),
            &TaskCounts {
                running: 1,
                total: 1,
                last_pid: 1,
            },
            &mut out,
        );
        assert_eq!(out, b"0.00 0.00 0.00 1/1 1\n");
    }
}
