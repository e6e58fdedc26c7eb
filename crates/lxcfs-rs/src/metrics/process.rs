//! The standard `process_*` metrics, for the supervisor and its serving worker, read
//! from `/proc/<pid>` at each scrape (prometheus-client has no process collector, and
//! the worker's are read from outside it: it may not run the metrics code at all).

/// What `/proc/<pid>` says of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub start_time_seconds: f64,
    pub open_fds: u64,
    pub threads: u64,
}

/// `pid`'s numbers, `None` when it is gone.
pub fn read(pid: u32) -> Option<ProcessStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut s = parse_stat(&stat)?;
    s.open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Some(s)
}

fn clk_tck() -> f64 {
    rustix::param::clock_ticks_per_second().max(1) as f64
}

/// The host's boot time, from `/proc/stat`'s `btime`.
fn boot_time() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

/// `/proc/<pid>/stat`: the fields after the command name, which may hold anything
/// but ends at the last `)`.
fn parse_stat(text: &str) -> Option<ProcessStats> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is f[0]: utime is field 14, stime 15, threads 20, starttime 22,
    // vsize 23, rss 24 (pages).
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    let tck = clk_tck();
    Some(ProcessStats {
        cpu_seconds: (n(11)? + n(12)?) as f64 / tck,
        threads: n(17)?,
        start_time_seconds: boot_time() + n(19)? as f64 / tck,
        virtual_bytes: n(20)?,
        resident_bytes: n(21)?.saturating_mul(rustix::param::page_size() as u64),
        open_fds: 0,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_is_skipped() {
        let line = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 1000 \
                    123456 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        let tck = clk_tck();
        assert_eq!(s.cpu_seconds, 400.0 / tck);
        assert_eq!(s.threads, 3);
        assert_eq!(s.virtual_bytes, 123456);
        assert_eq!(s.resident_bytes, 10 * rustix::param::page_size() as u64);
    }

    #[test]
    fn this_process_is_read() {
        let s = read(std::process::id()).unwrap();
        assert!(s.threads >= 1 && s.open_fds >= 1 && s.resident_bytes > 0);
        assert!(s.start_time_seconds > 1_000_000_000.0);
    }
}
