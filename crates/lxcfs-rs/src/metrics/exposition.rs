//! The Prometheus text exposition of the daemon's counters, encoded by
//! `prometheus-client` from a [`Scrape`]: the counters are not the crate's own types
//! (they live in memory the workers share, see `connection::counters`), so each scrape
//! hands a snapshot to a collector.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use connection::Reads;
use connection::counters::{
    self, ERRNO_LABELS, Histogram, Op, OpenMode, Outcome, Snapshot, StartCause, errno_name,
};
use hostview::{HostReason, Resolution};

use super::process::ProcessStats;

/// Everything one scrape shows.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub counters: Snapshot,
    pub supervisor: Option<ProcessStats>,
    pub worker: Option<ProcessStats>,
    /// Every reader is served the host's files (SIGUSR2 or safe mode).
    pub host_files: bool,
    /// How the connection's files are read.
    pub reads: Reads,
}

/// The text exposition (Prometheus 0.0.4) of `scrape`.
pub fn encode(scrape: Scrape) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Collect(scrape)));
    let mut out = String::with_capacity(64 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

#[derive(Debug)]
struct Collect(Scrape);

type Fmt = Result<(), std::fmt::Error>;

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Vec<(&str, &str)>, u64)],
) -> Fmt {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        m.encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(v, None)?;
    }
    Ok(())
}

fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Vec<(&str, &str)>, V)],
) -> Fmt {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in series {
        m.encode_family(labels)?.encode_gauge(v)?;
    }
    Ok(())
}

/// A histogram family: one series per label set.
fn histogram(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Vec<(&str, &str)>, &Histogram)],
) -> Fmt {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, h) in series {
        let buckets: Vec<(f64, u64)> = h
            .bounds_us
            .iter()
            .zip(&h.buckets)
            .map(|(&b, &n)| (b as f64 / 1e6, n))
            .collect();
        m.encode_family(labels)?.encode_histogram::<NoLabelSet>(
            h.sum_ns as f64 / 1e9,
            h.count,
            &buckets,
            None,
        )?;
    }
    Ok(())
}

impl Collector for Collect {
    fn encode(&self, mut e: DescriptorEncoder) -> Fmt {
        let s = &self.0;
        let c = &s.counters;
        let files = || (0..counters::FILES).map(|i| (counters::file_name(i), c.files.get(i)));

        {
            let mut m = e.encode_descriptor(
                "lxcfs_build",
                "The running supervisor's version.",
                None,
                MetricType::Info,
            )?;
            m.encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        }
        let mut opens = Vec::new();
        let mut renders = Vec::new();
        let mut reads = Vec::new();
        let mut errors = Vec::new();
        let mut host_files = Vec::new();
        for (name, f) in files() {
            let Some(f) = f else { continue };
            for m in OpenMode::ALL {
                opens.push((
                    vec![("file", name), ("mode", m.name())],
                    f.opens[m as usize],
                ));
            }
            for o in Outcome::ALL {
                renders.push((
                    vec![("file", name), ("outcome", o.name())],
                    f.outcomes[o as usize],
                ));
            }
            reads.push((vec![("file", name)], f.reads));
            // Errors and host files by cause appear at their first count: all of them
            // from the start would be hundreds of series that stay zero.
            for op in Op::ALL {
                for i in 0..ERRNO_LABELS {
                    let n = f.errors[op as usize][i];
                    if n > 0 {
                        errors.push((
                            vec![("file", name), ("op", op.name()), ("errno", errno_name(i))],
                            n,
                        ));
                    }
                }
            }
            for r in HostReason::ALL {
                let n = f.host_files[r as usize];
                if n > 0 {
                    host_files.push((vec![("file", name), ("reason", r.name())], n));
                }
            }
        }
        counter(
            &mut e,
            "lxcfs_opens",
            "Opens answered, per file and how: passthrough (the kernel reads a backing file), \
             passthrough_flagged (a backing file, reads still served), direct (every read served).",
            &opens,
        )?;
        counter(
            &mut e,
            "lxcfs_renders",
            "Renderings served (at open, and at a rewind or a previous worker's handle), per \
             file and outcome: virtualized, cached (a rendering of the last 100 ms), \
             host_fallback (the container's data could not be read), host_switch (SIGUSR2 or \
             safe mode).",
            &renders,
        )?;
        counter(
            &mut e,
            "lxcfs_render_cache_hits",
            "Renderings served from the container's rendering of the last 100 ms.",
            &files()
                .filter_map(|(n, f)| {
                    Some((vec![("file", n)], f?.outcomes[Outcome::Cached as usize]))
                })
                .collect::<Vec<_>>(),
        )?;
        counter(
            &mut e,
            "lxcfs_reads",
            "READ requests served by the daemon (reads of passthrough opens never reach it).",
            &reads,
        )?;
        counter(
            &mut e,
            "lxcfs_request_errors",
            "Requests answered with an error, per file, operation and errno (EACCES, EBADF, \
             EINVAL, EIO, EISDIR, EMFILE, ENOENT, ESRCH or other); a series appears at its \
             first error.",
            &errors,
        )?;
        counter(
            &mut e,
            "lxcfs_host_files",
            "Renderings that served the host's file instead of the container's, per file and \
             reason. Failures (read_error, parse_error, init_not_found, init_scan_busy, no_caller, no_cgroups, \
             outside_hierarchy) are the host_fallback outcome and are logged once per \
             container; the other reasons are containers with nothing of their own to show \
             (memory_root, cpu_root, load_root, no_pressure, ...). A series appears at its \
             first count.",
            &host_files,
        )?;
        let latency: Vec<_> = files()
            .filter_map(|(name, f)| Some((name, f?)))
            .flat_map(|(name, f)| {
                Op::ALL.map(|op| {
                    (
                        vec![("file", name), ("op", op.name())],
                        &f.latency[op as usize],
                    )
                })
            })
            .collect();
        histogram(
            &mut e,
            "lxcfs_request_duration_seconds",
            "Time from a request's handler starting to its reply, per file and operation.",
            &latency,
        )?;
        histogram(
            &mut e,
            "lxcfs_pidns_resolution_duration_seconds",
            "Finding the init of a reader's pid namespace (a container new to the worker, or \
             whose cgroup paths are due for a re-read), by method: ioctl \
             (NS_GET_TGID_FROM_PIDNS), procfs_parents, procfs_near, procfs_scan, cached_init (the init \
             found before, checked), failed, busy (turned away: a search of /proc was under way). Its _count is the resolutions by method.",
            &Resolution::ALL
                .iter()
                .map(|&r| (vec![("method", r.name())], &c.resolutions[r as usize]))
                .collect::<Vec<_>>(),
        )?;
        histogram(
            &mut e,
            "lxcfs_loadavg_tick_duration_seconds",
            "One tick of the load-average sampler (every 5 s): counting the running and \
             blocked tasks of every cgroup.",
            &[(vec![], &c.ticks)],
        )?;
        gauge(
            &mut e,
            "lxcfs_loadavg_cgroups_sampled",
            "Cgroups the last load-sampler tick counted.",
            &[(vec![], c.sampled_cgroups)],
        )?;
        counter(
            &mut e,
            "lxcfs_worker_starts",
            "Workers started, by cause: first, crash (killed by a signal of its own fault), \
             killed (SIGKILL: kill -9 or the OOM killer), exit, upgrade (SIGUSR1), retry \
             (virtualizing again after safe mode), adopt (replacing a dead supervisor's workers).",
            &StartCause::ALL
                .iter()
                .map(|&k| (vec![("cause", k.name())], c.starts[k as usize]))
                .collect::<Vec<_>>(),
        )?;
        gauge(
            &mut e,
            "lxcfs_worker_generation",
            "The generation of the newest worker started (1, 2, ...).",
            &[(vec![], c.generation)],
        )?;
        gauge(
            &mut e,
            "lxcfs_containers_tracked",
            "Containers (pid namespaces) the serving worker holds in its cache.",
            &[(vec![], c.containers)],
        )?;
        counter(
            &mut e,
            "lxcfs_containers_pruned",
            "Containers dropped from the worker's cache (idle for a minute, or past its bound).",
            &[(vec![], c.pruned)],
        )?;
        counter(
            &mut e,
            "lxcfs_log_lines_suppressed",
            "Lines about failing containers not logged because the log budget (20 at once, \
             then one a second, for the whole daemon) was spent.",
            &[(vec![], c.log_held)],
        )?;
        gauge(
            &mut e,
            "lxcfs_fuse_relay_polling",
            "1 while one FUSE thread reads requests and polls between them, handing them on \
             (--fuse-poll-us); 0 while every thread blocks in read(2): with \
             --fuse-poll-us=0, or while the polling measured dearer per request.",
            &[(vec![], u64::from(c.relaying))],
        )?;
        let reads: Vec<(Vec<(&str, &str)>, u64)> = Reads::ALL
            .iter()
            .map(|&r| (vec![("mode", r.name())], u64::from(r == s.reads)))
            .collect();
        gauge(
            &mut e,
            "lxcfs_fuse_reads",
            "1 for how the mount's files are read, set when it was mounted: passthrough \
             (--fuse-passthrough: the kernel reads a backing memfd, which a mapping of a \
             served file maps), daemon_mmap_refused (the default: the daemon serves every \
             read and mappings are refused), daemon (private mappings are filled through the \
             page cache: no FUSE passthrough on this kernel, or, before 6.12, none that \
             takes an unmappable backing file), unsettled (no worker \
             has served yet).",
            &reads,
        )?;
        gauge(
            &mut e,
            "lxcfs_serving_host_files",
            "1 while every reader is served the host's own files (SIGUSR2).",
            &[(vec![], u64::from(s.host_files))],
        )?;
        let procs: Vec<(&str, ProcessStats)> = [("supervisor", s.supervisor), ("worker", s.worker)]
            .into_iter()
            .filter_map(|(n, p)| Some((n, p?)))
            .collect();
        let per = |f: fn(&ProcessStats) -> f64| -> Vec<(Vec<(&str, &str)>, f64)> {
            procs
                .iter()
                .map(|(n, p)| (vec![("process", *n)], f(p)))
                .collect()
        };
        {
            let mut m = e.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent, per process of the daemon.",
                None,
                MetricType::Counter,
            )?;
            for (labels, v) in per(|p| p.cpu_seconds) {
                m.encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
            }
        }
        gauge(
            &mut e,
            "process_resident_memory_bytes",
            "Resident memory size.",
            &per(|p| p.resident_bytes as f64),
        )?;
        gauge(
            &mut e,
            "process_virtual_memory_bytes",
            "Virtual memory size.",
            &per(|p| p.virtual_bytes as f64),
        )?;
        gauge(
            &mut e,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch.",
            &per(|p| p.start_time_seconds),
        )?;
        gauge(
            &mut e,
            "process_open_fds",
            "Open file descriptors.",
            &per(|p| p.open_fds as f64),
        )?;
        gauge(
            &mut e,
            "process_threads",
            "Threads.",
            &per(|p| p.threads as f64),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use connection::Counters;
    use std::time::Duration;

    #[test]
    fn counters_and_histograms_are_encoded_with_their_labels() {
        let c = Counters::create().unwrap();
        c.opened(0, OpenMode::Direct);
        c.rendered(0, Outcome::Cached);
        c.observe(0, Op::Open, Duration::from_micros(7));
        c.observe(0, Op::Open, Duration::from_millis(900));
        c.worker_started(StartCause::Killed, 3);
        c.failed(0, Op::Read, libc::EBADF);
        c.host_file(1, HostReason::MemoryRoot);
        {
            use hostview::Observer;
            c.resolved(Resolution::Ioctl, Duration::from_micros(12));
            c.sampled(42, Duration::from_millis(3));
            c.log_suppressed(4);
        }
        c.set_relaying(true);
        let text = encode(Scrape {
            counters: c.snapshot(),
            worker: Some(ProcessStats {
                cpu_seconds: 1.5,
                ..Default::default()
            }),
            reads: Reads::DaemonMmapRefused,
            ..Default::default()
        })
        .unwrap();
        let has = |l: &str| assert!(text.lines().any(|x| x == l), "{l} not in\n{text}");
        has(r#"lxcfs_opens_total{file="proc/meminfo",mode="direct"} 1"#);
        has(r#"lxcfs_render_cache_hits_total{file="proc/meminfo"} 1"#);
        has(r#"lxcfs_request_duration_seconds_bucket{file="proc/meminfo",op="open",le="1e-05"} 1"#);
        has(r#"lxcfs_request_duration_seconds_bucket{file="proc/meminfo",op="open",le="0.25"} 1"#);
        has(r#"lxcfs_request_duration_seconds_bucket{file="proc/meminfo",op="open",le="+Inf"} 2"#);
        has(r#"lxcfs_request_duration_seconds_count{file="proc/meminfo",op="open"} 2"#);
        has(r#"lxcfs_worker_starts_total{cause="killed"} 1"#);
        has("lxcfs_worker_generation 3");
        has(r#"lxcfs_fuse_reads{mode="daemon_mmap_refused"} 1"#);
        has(r#"lxcfs_fuse_reads{mode="passthrough"} 0"#);
        has(r#"lxcfs_request_errors_total{file="proc/meminfo",op="read",errno="EBADF"} 1"#);
        has(r#"lxcfs_host_files_total{file="proc/swaps",reason="memory_root"} 1"#);
        has(r#"lxcfs_pidns_resolution_duration_seconds_bucket{method="ioctl",le="2.5e-05"} 1"#);
        has(r#"lxcfs_pidns_resolution_duration_seconds_count{method="procfs_scan"} 0"#);
        has(r#"lxcfs_loadavg_tick_duration_seconds_bucket{le="0.005"} 1"#);
        has("lxcfs_loadavg_cgroups_sampled 42");
        has("lxcfs_log_lines_suppressed_total 4");
        has("lxcfs_containers_pruned_total 0");
        has("lxcfs_fuse_relay_polling 1");
        assert!(
            !text.contains("errno=\"EACCES\""),
            "zero errno series are left out"
        );
        has(r#"process_cpu_seconds_total{process="worker"} 1.5"#);
        has(&format!(
            r#"lxcfs_build_info{{version="{}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        ));
    }
}
