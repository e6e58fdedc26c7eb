//! The CPU inputs and renderers: cpu.max, cpuacct.usage_all, cpu.stat, /proc/uptime
//! seconds, and cpuinfo/stat/vmstat rendered from arbitrary host text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procfile::render::{self, ProcessCounts};
use procfile::{CpuQuota, CpuSet, CpuUsage, CpuView, StatState, value};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let quota = CpuQuota::parse_v2(&s).flatten();
    let _ = value::parse_seconds_ns(&s);
    let _ = procfile::pid::status_state(&s);
    let usage = CpuUsage::parse_usage_all(&s)
        .or_else(|| CpuUsage::parse_cpu_stat(&s))
        .unwrap_or_default();
    // The exact per-CPU times of another line of the same input, scaled into it.
    let exact = s.lines().nth(1).and_then(CpuUsage::parse_usage_percpu);
    let usage = match exact {
        Some(e) => {
            let scaled = usage.scaled_to(&e);
            if let Some(per) = &scaled.per_cpu {
                for &(c, u, s) in per {
                    if let Some(&x) = e.get(c as usize) {
                        assert_eq!(u.checked_add(s), Some(x), "cpu {c} scaled to its exact time");
                    }
                }
            }
            scaled
        }
        None => usage,
    };
    let online = CpuSet::parse(s.lines().next().unwrap_or("")).unwrap_or_default();
    let view = CpuView::new(&online, None, quota, data.first().is_some_and(|b| b & 1 == 1));
    let mut st = StatState::start(&view, &usage, u64::from(data.len() as u32) << 20, 1 << 40);
    st.advance(&view, &usage, (1 << 40) + 1_000_000_000);
    let mut out = Vec::new();
    render::cpuinfo(&s, &view, &mut out);
    render::stat(&s, &st, 100, &ProcessCounts::default(), &mut out);
    let scaled = ProcessCounts {
        lifetime: Some((1, 3)),
        ..ProcessCounts::default()
    };
    render::stat(&s, &st, 100, &scaled, &mut out);
    render::uptime(u64::MAX, u64::MAX, &mut out);
    render::vmstat(&s, (1, 3), &mut out);
    render::vmstat(&s, (u64::MAX, 1), &mut out);
});
