//! From two scrapes of the exposition to the numbers `status` shows. The exposition is
//! read back with a small parser of the text format's sample lines: the daemon wrote
//! it, with the shapes `metrics::exposition` gives it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metrics::BusyDoc;

/// One sample line: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of an exposition (comments and malformed lines skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(sample)
        .collect()
}

fn sample(line: &str) -> Option<Sample> {
    let (head, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match head.split_once('{') {
        None => (head, BTreeMap::new()),
        Some((n, rest)) => (n, labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `a="x",b="y"` (values hold no quotes or commas in our exposition; escapes are kept).
fn labels(s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (k, r) = rest.split_once("=\"")?;
        let end = r.find('"')?;
        out.insert(k.trim_start_matches(',').to_string(), r[..end].to_string());
        rest = &r[end + 1..];
    }
    Some(out)
}

fn sum(s: &[Sample], name: &str, filter: impl Fn(&Sample) -> bool) -> f64 {
    s.iter()
        .filter(|x| x.name == name && filter(x))
        .map(|x| x.value)
        .sum()
}

fn label<'a>(x: &'a Sample, k: &str) -> &'a str {
    x.labels.get(k).map_or("", String::as_str)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub version: String,
    pub uptime_seconds: f64,
    pub worker_generation: u64,
    /// Workers started after the first (or after adopting), by cause.
    pub worker_restarts: BTreeMap<String, u64>,
    pub containers_tracked: u64,
    pub serving_host_files: bool,
    /// One FUSE thread polls and relays requests (else every one blocks in `read(2)`).
    pub fuse_relay_polling: bool,
    /// How the files are read (`lxcfs_fuse_reads`): `passthrough`,
    /// `daemon_mmap_refused`, `daemon`, `unsettled`; empty from a supervisor that does
    /// not say.
    pub fuse_reads: String,
    pub opens_per_second: f64,
    pub reads_per_second: f64,
    pub opens_total: u64,
    pub host_fallbacks_total: u64,
    /// Renderings that served the host's file, by reason (failures and containers with
    /// nothing of their own alike).
    pub host_files_by_reason: BTreeMap<String, u64>,
    pub errors_total: u64,
    pub cache_hits_total: u64,
    /// Files by opens over the sample, busiest first (at most five).
    pub busiest_files: Vec<(String, f64)>,
    /// The window the busiest containers' reads are counted over (0: none yet).
    pub busiest_window_seconds: f64,
    /// Containers by files read over that window, busiest first (at most ten).
    pub busiest_containers: Vec<BusyDoc>,
}

/// The summary of the `later` scrape, rates over the `seconds` since `earlier`.
pub fn summarize(earlier: &[Sample], later: &[Sample], seconds: f64, now_unix: f64) -> Summary {
    let s = later;
    let all = |_: &Sample| true;
    let version = s
        .iter()
        .find(|x| x.name == "lxcfs_build_info")
        .map(|x| label(x, "version").to_string())
        .unwrap_or_default();
    let started = sum(s, "process_start_time_seconds", |x| {
        label(x, "process") == "supervisor"
    });
    let rate = |name: &str| {
        let d = sum(later, name, all) - sum(earlier, name, all);
        if seconds > 0.0 {
            d.max(0.0) / seconds
        } else {
            0.0
        }
    };
    let mut worker_restarts = BTreeMap::new();
    for x in s.iter().filter(|x| x.name == "lxcfs_worker_starts_total") {
        let cause = label(x, "cause");
        if cause != "first" && cause != "adopt" && x.value > 0.0 {
            worker_restarts.insert(cause.to_string(), x.value as u64);
        }
    }
    let mut host_files_by_reason = BTreeMap::new();
    for x in s.iter().filter(|x| x.name == "lxcfs_host_files_total") {
        *host_files_by_reason
            .entry(label(x, "reason").to_string())
            .or_default() += x.value as u64;
    }
    let mut files: BTreeMap<&str, f64> = BTreeMap::new();
    for x in later.iter().filter(|x| x.name == "lxcfs_opens_total") {
        *files.entry(label(x, "file")).or_default() += x.value;
    }
    for x in earlier.iter().filter(|x| x.name == "lxcfs_opens_total") {
        *files.entry(label(x, "file")).or_default() -= x.value;
    }
    let mut busiest: Vec<(String, f64)> = files
        .into_iter()
        .filter(|(_, d)| *d > 0.0)
        .map(|(f, d)| (f.to_string(), if seconds > 0.0 { d / seconds } else { 0.0 }))
        .collect();
    busiest.sort_by(|a, b| b.1.total_cmp(&a.1));
    busiest.truncate(5);
    Summary {
        version,
        uptime_seconds: if started > 0.0 {
            (now_unix - started).max(0.0)
        } else {
            0.0
        },
        worker_generation: sum(s, "lxcfs_worker_generation", all) as u64,
        worker_restarts,
        containers_tracked: sum(s, "lxcfs_containers_tracked", all) as u64,
        serving_host_files: sum(s, "lxcfs_serving_host_files", all) > 0.0,
        fuse_relay_polling: sum(s, "lxcfs_fuse_relay_polling", all) > 0.0,
        fuse_reads: s
            .iter()
            .find(|x| x.name == "lxcfs_fuse_reads" && x.value > 0.0)
            .map(|x| label(x, "mode").to_string())
            .unwrap_or_default(),
        opens_per_second: rate("lxcfs_opens_total"),
        reads_per_second: rate("lxcfs_reads_total"),
        opens_total: sum(s, "lxcfs_opens_total", all) as u64,
        host_fallbacks_total: sum(s, "lxcfs_renders_total", |x| {
            label(x, "outcome") == "host_fallback"
        }) as u64,
        host_files_by_reason,
        errors_total: sum(s, "lxcfs_request_errors_total", all) as u64,
        cache_hits_total: sum(s, "lxcfs_render_cache_hits_total", all) as u64,
        busiest_files: busiest,
        busiest_window_seconds: 0.0,
        busiest_containers: Vec::new(),
    }
}

/// For a person.
pub fn human(s: &Summary, socket: &str) -> String {
    let restarts: u64 = s.worker_restarts.values().sum();
    let why = if s.worker_restarts.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = s
            .worker_restarts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!(" ({})", parts.join(", "))
    };
    let mut out = format!(
        "lxcfs-rs {} up {} (metrics: {socket})\n\
         worker generation {}, {restarts} restarts{why}; FUSE threads: {}\n\
         containers tracked: {}{}\n\
         opens/s {:.1}, reads/s served {:.1} (over the sample)\n\
         since start: {} opens, {} cache hits, {} host fallbacks, {} errors\n",
        s.version,
        duration(s.uptime_seconds),
        s.worker_generation,
        if s.fuse_relay_polling {
            "one polls and relays requests"
        } else {
            "each blocks in read(2)"
        },
        s.containers_tracked,
        if s.serving_host_files {
            " — serving every reader the host's files (SIGUSR2)"
        } else {
            ""
        },
        s.opens_per_second,
        s.reads_per_second,
        s.opens_total,
        s.cache_hits_total,
        s.host_fallbacks_total,
        s.errors_total,
    );
    if let Some(reads) = reads_line(&s.fuse_reads) {
        out += &format!("reads: {reads}\n");
    }
    if !s.host_files_by_reason.is_empty() {
        let parts: Vec<String> = s
            .host_files_by_reason
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out += &format!("host files served, by reason: {}\n", parts.join(", "));
    }
    if !s.busiest_files.is_empty() {
        let parts: Vec<String> = s
            .busiest_files
            .iter()
            .map(|(f, r)| format!("{f} {r:.1}/s"))
            .collect();
        out += &format!("busiest files: {}\n", parts.join(", "));
    }
    if !s.busiest_containers.is_empty() {
        out += &format!(
            "busiest containers (files read over the last {:.0}s):\n",
            s.busiest_window_seconds
        );
        for c in &s.busiest_containers {
            out += &format!(
                "  {:>8.1}/s  {}  (pid namespace {}, {} reads seen)\n",
                c.reads_per_second, c.cgroup, c.pidns, c.reads_total
            );
        }
    }
    out
}

fn reads_line(mode: &str) -> Option<&'static str> {
    Some(match mode {
        "passthrough" => {
            "the kernel's, from a backing memfd shared by every container \
             (--fuse-passthrough: a mapping of a served file maps it)"
        }
        "daemon_mmap_refused" => "served by the daemon; mmap refused",
        "daemon" => {
            "served by the daemon (private mappings go through the page cache: this \
             kernel has no FUSE passthrough, or none that takes an unmappable backing file)"
        }
        "unsettled" => "not settled yet (no worker has served)",
        _ => return None,
    })
}

fn duration(secs: f64) -> String {
    let s = secs as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const A: &str = r#"# HELP x y
lxcfs_build_info{version="1.2.3"} 1
lxcfs_opens_total{file="proc/meminfo",mode="direct"} 10
lxcfs_opens_total{file="proc/stat",mode="passthrough"} 4
lxcfs_reads_total{file="proc/meminfo"} 20
lxcfs_renders_total{file="proc/stat",outcome="host_fallback"} 2
lxcfs_host_files_total{file="proc/stat",reason="read_error"} 2
lxcfs_host_files_total{file="proc/meminfo",reason="read_error"} 1
lxcfs_worker_starts_total{cause="first"} 1
lxcfs_worker_starts_total{cause="killed"} 2
lxcfs_worker_generation 3
lxcfs_containers_tracked 7
lxcfs_fuse_relay_polling 1
lxcfs_fuse_reads{mode="passthrough"} 0
lxcfs_fuse_reads{mode="daemon_mmap_refused"} 1
process_start_time_seconds{process="supervisor"} 1000
lxcfs_request_duration_seconds_bucket{file="proc/stat",op="open",le="+Inf"} 2
"#;

    #[test]
    fn samples_are_parsed() {
        let s = parse(A);
        assert_eq!(s.len(), 16);
        assert_eq!(s[1].labels["mode"], "direct");
        assert_eq!(s[15].labels["le"], "+Inf");
        assert_eq!(s[9].name, "lxcfs_worker_generation");
    }

    #[test]
    fn the_summary_has_rates_restarts_and_the_busiest_files() {
        let b = A.replace(r#"mode="direct"} 10"#, r#"mode="direct"} 30"#);
        let s = summarize(&parse(A), &parse(&b), 2.0, 1090.0);
        assert_eq!(s.version, "1.2.3");
        assert_eq!(s.uptime_seconds, 90.0);
        assert_eq!(s.worker_generation, 3);
        assert_eq!(s.worker_restarts.get("killed"), Some(&2));
        assert!(!s.worker_restarts.contains_key("first"));
        assert_eq!(s.opens_per_second, 10.0);
        assert_eq!(s.busiest_files, vec![("proc/meminfo".to_string(), 10.0)]);
        assert_eq!(s.host_fallbacks_total, 2);
        assert_eq!(s.containers_tracked, 7);
        assert_eq!(s.fuse_reads, "daemon_mmap_refused");
        let mut s = s;
        s.busiest_window_seconds = 5.0;
        s.busiest_containers = vec![BusyDoc {
            cgroup: "/lxc/web".into(),
            pidns: 4026532000,
            reads_per_second: 12.5,
            reads: 62,
            reads_total: 900,
        }];
        let h = human(&s, "/run/x.sock");
        assert!(
            h.contains("2 restarts (killed 2); FUSE threads: one polls and relays requests\n"),
            "{h}"
        );
        assert!(
            h.contains("host files served, by reason: read_error 3\n"),
            "{h}"
        );
        assert!(
            h.contains("busiest containers (files read over the last 5s):\n      12.5/s  /lxc/web  (pid namespace 4026532000, 900 reads seen)\n"),
            "{h}"
        );
        assert!(h.contains("up 1m30s"), "{h}");
        assert!(
            h.contains("reads: served by the daemon; mmap refused\n"),
            "{h}"
        );
    }
}
