//! `/proc/vmstat` for a container: the host's event counters since the container
//! started, its gauges as they are.
//!
//! `vmstat` divides `pgpgin`, `pgpgout`, `pswpin` and `pswpout` by the time `/proc/stat`
//! says the CPUs ran — the container's. The host's counts since its boot over the
//! container's seconds made its first line show the host's whole history as a rate.
//! The counters are scaled like `/proc/stat`'s `intr` and `ctxt` (see
//! [`super::stat`]): the host's count times the container's age over the host's
//! uptime, a count since the container started at the host's average rate, never
//! decreasing, the same from any worker. The cgroup accounts few of these events
//! (v2 `memory.stat` has `pgfault` and a few more, none of vmstat's four; v1's
//! `pgpgin` counts charged pages, not I/O), so every counter is treated alike.

use std::io::Write;

use super::stat::scaled;

/// Keys starting with `nr_` that count events rather than hold a current amount.
const NR_COUNTERS: [&str; 5] = [
    "nr_dirtied",
    "nr_written",
    "nr_throttled_written",
    "nr_foll_pin_",
    "nr_tlb_",
];

/// A current amount (pages free, pages dirty, a threshold): shown as the host's.
/// Everything else in the file counts events since boot.
fn is_gauge(key: &str) -> bool {
    if key == "workingset_nodes" {
        return true;
    }
    key.starts_with("nr_")
        && !NR_COUNTERS.iter().any(|c| {
            if c.ends_with('_') {
                key.starts_with(c)
            } else {
                key == *c
            }
        })
}

/// Render from the host's file, with the container's age and the host's uptime (ns).
/// Lines that are not `key value` pass through.
pub fn vmstat(host: &str, lifetime: (u64, u64), out: &mut Vec<u8>) {
    for line in host.lines() {
        let mut f = line.split_ascii_whitespace();
        let parsed = match (f.next(), f.next(), f.next()) {
            (Some(k), Some(v), None) => v.parse::<u64>().ok().map(|v| (k, v)),
            _ => None,
        };
        match parsed {
            Some((k, v)) if !is_gauge(k) => {
                let _ = writeln!(out, "{k} {}", scaled(v, lifetime));
            }
            _ => {
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

    fn render(host: &str, life: (u64, u64)) -> String {
        let mut out = Vec::new();
        vmstat(host, life, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn counters_scale_and_gauges_stay() {
        let host = "nr_free_pages 1000\nnr_dirty_threshold 77\nworkingset_nodes 9\n\
                    nr_dirtied 400\nnr_tlb_remote_flush 40\nnr_foll_pin_acquired 8\n\
                    pgpgin 4000\npgpgout 800\npswpin 12\npswpout 0\nnuma_hit 4\n";
        // A container a quarter as old as the host.
        let s = render(host, (25, 100));
        assert_eq!(
            s,
            "nr_free_pages 1000\nnr_dirty_threshold 77\nworkingset_nodes 9\n\
             nr_dirtied 100\nnr_tlb_remote_flush 10\nnr_foll_pin_acquired 2\n\
             pgpgin 1000\npgpgout 200\npswpin 3\npswpout 0\nnuma_hit 1\n"
        );
    }

    #[test]
    fn odd_lines_pass_through_and_nothing_grows() {
        let host =
            "pgpgin\npgpgout x\npgfault 1 2\n\nnr_free_pages 5\npgfault 18446744073709551615\n";
        let s = render(host, (u64::MAX, 1));
        // A container older than the host (clock skew) shows the host's counts.
        assert_eq!(s, host);
        let s = render("pgpgin 10\n", (0, 0));
        assert_eq!(s, "pgpgin 10\n");
    }
}
