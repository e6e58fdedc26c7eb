//! The results of `compare` and their markdown tables.
//!
//! Absolute values (ops/s, µs) are medians over the runs. Ratios are medians of the
//! per-run ratios: run i of lxcfs-rs against run i of LXCFS (or of the kernel), which ran
//! next to each other, so that the machine's drift cancels out.

use std::fmt::Write as _;

use crate::compare::Source;
use crate::read::Measurement;
use crate::sys::ticks_to_ms;

pub struct Environment {
    pub kernel: String,
    pub cpus: usize,
    pub rs_version: String,
    pub lx_version: Option<String>,
    pub memory_mib: u64,
    pub container_cpus: String,
    /// The second container's memory limit, with `--neighbour`.
    pub neighbour_mib: Option<u64>,
    /// Each reader's pause between cycles.
    pub pause_us: u64,
    pub seconds: f64,
    pub reps: usize,
    /// What the container saw of each source (MemTotal, online CPUs).
    pub view: Vec<(Source, String)>,
    /// `--note` lines.
    pub notes: Vec<String>,
    /// The host's 1-minute load average when the runs started and when they ended.
    pub load: (String, String),
}

/// One run: one source, one file, one reader count.
pub struct Run {
    pub m: Measurement,
    /// The daemon's utime + stime during the run (none for the kernel).
    pub cpu_ticks: Option<u64>,
}

/// All runs of one file with one reader count, per source (indexed by `Source::index`).
pub struct Cell {
    pub file: &'static str,
    /// Readers per container.
    pub readers: usize,
    /// Containers reading at the same time (1, or 2 with `--neighbour`).
    pub containers: usize,
    pub runs: [Vec<Run>; 3],
}

pub struct Round {
    pub containers: usize,
    pub failures: usize,
    pub seconds: f64,
    pub cpu_ticks: u64,
    pub rss_after: u64,
}

/// A daemon serving rounds of short-lived containers.
pub struct Serving {
    pub daemon: &'static str,
    /// KiB right after mounting.
    pub rss_at_start: u64,
    /// KiB after the throughput runs, before the containers.
    pub rss_before: u64,
    pub rounds: Vec<Round>,
    /// Set when the daemon died; its log.
    pub died: Option<String>,
}

pub struct Report {
    pub env: Environment,
    pub sources: Vec<Source>,
    pub cells: Vec<Cell>,
    pub serving: Vec<Serving>,
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Cell {
    pub fn new(file: &'static str, readers: usize) -> Cell {
        Cell {
            file,
            readers,
            containers: 1,
            runs: [Vec::new(), Vec::new(), Vec::new()],
        }
    }

    /// The same file read by `readers` in each of two containers at once.
    pub fn pair(file: &'static str, readers: usize) -> Cell {
        Cell {
            containers: 2,
            ..Cell::new(file, readers)
        }
    }

    /// The readers column: `1`, or `1+1` for one reader in each of two containers.
    pub fn readers_label(&self) -> String {
        vec![self.readers.to_string(); self.containers].join("+")
    }

    fn runs(&self, src: Source) -> &[Run] {
        &self.runs[src.index()]
    }

    fn failed(&self, src: Source) -> bool {
        self.runs(src).iter().any(|r| r.m.error.is_some())
    }

    /// Median of `metric` over the runs of `src`; `None` if a run failed or none ran.
    fn median(&self, src: Source, metric: fn(&Measurement) -> f64) -> Option<f64> {
        if self.failed(src) {
            return None;
        }
        median(self.runs(src).iter().map(|r| metric(&r.m)).collect())
    }

    /// Median over runs i of `metric(a_i) / metric(b_i)`.
    fn ratio(&self, a: Source, b: Source, metric: fn(&Measurement) -> f64) -> Option<f64> {
        if self.failed(a) || self.failed(b) {
            return None;
        }
        median(
            self.runs(a)
                .iter()
                .zip(self.runs(b))
                .filter_map(|(x, y)| {
                    let d = metric(&y.m);
                    (d > 0.0).then(|| metric(&x.m) / d)
                })
                .collect(),
        )
    }

    pub fn progress(&self, sources: &[Source]) -> String {
        let mut s = format!(
            "{:<10} {} reader{}:",
            self.file,
            self.readers_label(),
            if self.readers * self.containers == 1 {
                " "
            } else {
                "s"
            }
        );
        for &src in sources {
            let v = self
                .median(src, Measurement::ops_per_s)
                .map_or("error".to_string(), |v| format!("{v:.0}/s"));
            let _ = write!(s, "  {} {v}", src.label());
        }
        s
    }
}

fn ops(m: &Measurement) -> f64 {
    m.ops_per_s()
}
fn p50(m: &Measurement) -> f64 {
    m.p50_us
}
fn p99(m: &Measurement) -> f64 {
    m.p99_us
}

fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) => format!("{v:.decimals$}"),
        None => "error".to_string(),
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

impl Report {
    fn has(&self, src: Source) -> bool {
        self.sources.contains(&src)
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let e = &self.env;
        let lx = self.has(Source::Lxcfs);
        let _ = writeln!(s, "### lxcfs-bench compare\n");
        for n in &e.notes {
            let _ = writeln!(s, "- {n}");
        }
        let _ = writeln!(
            s,
            "- host: {}, {} CPUs, load average {} at the start, {} at the end",
            e.kernel, e.cpus, e.load.0, e.load.1
        );
        let _ = writeln!(
            s,
            "- daemons: {}; LXCFS {}",
            e.rs_version,
            e.lx_version.as_deref().unwrap_or("not run")
        );
        let _ = writeln!(
            s,
            "- container: v1 cgroup with memory limit {} MiB and cpuset {}, new pid + mount \
             namespace, files bind-mounted",
            e.memory_mib, e.container_cpus
        );
        if e.pause_us > 0 {
            let _ = writeln!(
                s,
                "- paced readers: each pauses {} µs between cycles (not timed), so ops/s \
                 mostly shows the pace",
                e.pause_us
            );
        }
        if let Some(mib) = e.neighbour_mib {
            let _ = writeln!(
                s,
                "- `1+1` rows: a second container (memory limit {mib} MiB, the same cpuset) \
                 reads the same file through the same source at the same time; ops/s are both \
                 containers together, p50 and p99 the higher of the two"
            );
        }
        for (src, view) in &e.view {
            let _ = writeln!(s, "- the container sees via {}: {view}", src.label());
        }
        let _ = writeln!(
            s,
            "- each source: {} interleaved runs of {} s per file and reader count; values are \
             medians, ratios are medians of per-run ratios\n",
            e.reps, e.seconds
        );

        // The main table.
        let _ = writeln!(
            s,
            "| file | readers | lxcfs-rs ops/s | LXCFS ops/s | kernel ops/s | ratio rs/LXCFS | \
             p50 rs/LXCFS | p99 rs/LXCFS | rs/kernel |"
        );
        let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|--:|--:|--:|");
        let dash = || "—".to_string();
        for c in &self.cells {
            let lxv = |f: &dyn Fn() -> String| if lx { f() } else { dash() };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                c.file,
                c.readers_label(),
                num(c.median(Source::Rs, ops), 0),
                lxv(&|| num(c.median(Source::Lxcfs, ops), 0)),
                num(c.median(Source::Kernel, ops), 0),
                lxv(&|| num(c.ratio(Source::Rs, Source::Lxcfs, ops), 2)),
                lxv(&|| num(c.ratio(Source::Rs, Source::Lxcfs, p50), 2)),
                lxv(&|| num(c.ratio(Source::Rs, Source::Lxcfs, p99), 2)),
                num(c.ratio(Source::Rs, Source::Kernel, ops), 3),
            );
        }
        let _ = writeln!(
            s,
            "\nratio rs/LXCFS: throughput, higher is better; p50 and p99 rs/LXCFS: latency, \
             lower is better; rs/kernel: lxcfs-rs throughput as a fraction of the kernel's own \
             file.\n"
        );

        // Absolute latencies.
        let _ = write!(s, "| file | readers |");
        for src in &self.sources {
            let _ = write!(s, " {0} p50 µs | {0} p99 µs |", src.label());
        }
        let _ = write!(s, "\n|---|--:|");
        for _ in &self.sources {
            let _ = write!(s, "--:|--:|");
        }
        s.push('\n');
        for c in &self.cells {
            let _ = write!(s, "| {} | {} |", c.file, c.readers_label());
            for &src in &self.sources {
                let _ = write!(
                    s,
                    " {} | {} |",
                    num(c.median(src, p50), 1),
                    num(c.median(src, p99), 1)
                );
            }
            s.push('\n');
        }

        // Daemon CPU per read.
        let daemons: Vec<Source> = self
            .sources
            .iter()
            .copied()
            .filter(|s| *s != Source::Kernel)
            .collect();
        let _ = write!(
            s,
            "\nDaemon CPU time (utime + stime) per 10 000 reads, over all runs of a file:\n\n| file |"
        );
        for src in &daemons {
            let _ = write!(s, " {} ms |", src.label());
        }
        if lx {
            let _ = write!(s, " rs/LXCFS |");
        }
        let _ = write!(s, "\n|---|");
        for _ in &daemons {
            let _ = write!(s, "--:|");
        }
        if lx {
            let _ = write!(s, "--:|");
        }
        s.push('\n');
        let mut files: Vec<&str> = self.cells.iter().map(|c| c.file).collect();
        files.dedup();
        for f in files {
            let per10k: Vec<Option<f64>> = daemons
                .iter()
                .map(|&src| self.cpu_per_10k(f, src))
                .collect();
            let _ = write!(s, "| {f} |");
            for v in &per10k {
                let _ = write!(s, " {} |", num(*v, 0));
            }
            if lx {
                let r = match (per10k.first(), per10k.get(1)) {
                    (Some(Some(a)), Some(Some(b))) if *b > 0.0 => Some(a / b),
                    _ => None,
                };
                let _ = write!(s, " {} |", num(r, 2));
            }
            s.push('\n');
        }

        // Memory with many containers.
        if !self.serving.is_empty() {
            let rounds = self
                .serving
                .iter()
                .map(|v| v.rounds.len())
                .max()
                .unwrap_or(0);
            let _ = write!(
                s,
                "\nRSS (VmRSS) while serving short-lived containers (each a new pid namespace \
                 reading meminfo and stat once):\n\n| daemon | after mount | before containers |"
            );
            let mut total = 0;
            for i in 0..rounds {
                total += self.serving[0].rounds.get(i).map_or(0, |r| r.containers);
                let _ = write!(s, " after {total} |");
            }
            let _ = write!(
                s,
                " containers/s | daemon CPU ms per container | failed |\n|---|--:|--:|"
            );
            for _ in 0..rounds {
                let _ = write!(s, "--:|");
            }
            let _ = writeln!(s, "--:|--:|--:|");
            for v in &self.serving {
                let _ = write!(
                    s,
                    "| {} | {} | {} |",
                    v.daemon,
                    mib(v.rss_at_start),
                    mib(v.rss_before)
                );
                for i in 0..rounds {
                    let cell = v
                        .rounds
                        .get(i)
                        .map_or("died".to_string(), |r| mib(r.rss_after));
                    let _ = write!(s, " {cell} |");
                }
                let n: usize = v.rounds.iter().map(|r| r.containers).sum();
                let secs: f64 = v.rounds.iter().map(|r| r.seconds).sum();
                let ticks: u64 = v.rounds.iter().map(|r| r.cpu_ticks).sum();
                let failed: usize = v.rounds.iter().map(|r| r.failures).sum();
                let rate = (secs > 0.0).then(|| n as f64 / secs);
                let cpu = (n > 0).then(|| ticks_to_ms(ticks) / n as f64);
                let _ = writeln!(s, " {} | {} | {failed} |", num(rate, 0), num(cpu, 2));
            }
            for v in &self.serving {
                if let Some(log) = &v.died {
                    let _ = writeln!(
                        s,
                        "\n{} died while serving containers:\n```\n{log}\n```",
                        v.daemon
                    );
                }
            }
        }

        let errors: Vec<String> = self
            .cells
            .iter()
            .flat_map(|c| c.runs.iter().flatten())
            .filter_map(|r| r.m.error.clone())
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(s, "\nErrors ({}), first: {}", errors.len(), errors[0]);
        }
        s
    }

    /// Daemon CPU ms per 10 000 reads of `file`, over every successful run.
    fn cpu_per_10k(&self, file: &str, src: Source) -> Option<f64> {
        let (mut ticks, mut ops) = (0u64, 0u64);
        for c in self.cells.iter().filter(|c| c.file == file) {
            for r in c.runs(src).iter().filter(|r| r.m.error.is_none()) {
                ticks += r.cpu_ticks?;
                ops += r.m.ops;
            }
        }
        (ops > 0).then(|| ticks_to_ms(ticks) * 10_000.0 / ops as f64)
    }

    /// Every run, one TSV row each.
    pub fn raw_tsv(&self) -> String {
        let mut s = format!(
            "source\tkey\treaders\trun\tcpu_ticks\t{}\n",
            Measurement::TSV_HEADER
        );
        for c in &self.cells {
            for &src in &self.sources {
                for (i, r) in c.runs(src).iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        src.key(),
                        c.file,
                        c.readers_label(),
                        i,
                        r.cpu_ticks.map_or("-".to_string(), |t| t.to_string()),
                        r.m.tsv()
                    );
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn m(ops: u64, p50_us: f64) -> Measurement {
        Measurement {
            file: "f".into(),
            threads: 1,
            ops,
            seconds: 1.0,
            p50_us,
            p99_us: p50_us * 2.0,
            mean_us: p50_us,
            max_us: p50_us * 3.0,
            bytes: 10,
            error: None,
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn two_containers_are_labelled_and_added_up() {
        assert_eq!(Cell::new("stat", 2).readers_label(), "2");
        assert_eq!(Cell::pair("stat", 1).readers_label(), "1+1");
        let mut a = m(1000, 40.0);
        a.error = None;
        let mut b = m(500, 80.0);
        b.seconds = 1.25;
        b.error = Some("EIO".into());
        let t = Measurement::together(&a, &b);
        assert_eq!(t.ops, 1500);
        assert_eq!(t.threads, 2);
        assert_eq!(t.seconds, 1.25);
        assert_eq!(t.ops_per_s(), 1200.0);
        assert_eq!((t.p50_us, t.p99_us, t.max_us), (80.0, 160.0, 240.0));
        // Weighted by reads: (40 * 1000 + 80 * 500) / 1500.
        assert!((t.mean_us - 160.0 / 3.0).abs() < 1e-9);
        assert_eq!(t.error.as_deref(), Some("EIO"));
    }

    #[test]
    fn ratios_pair_runs() {
        let mut c = Cell::new("meminfo", 1);
        for (rs, lx) in [(1000, 100), (600, 200), (900, 100)] {
            c.runs[Source::Rs.index()].push(Run {
                m: m(rs, 1e6 / rs as f64),
                cpu_ticks: Some(1),
            });
            c.runs[Source::Lxcfs.index()].push(Run {
                m: m(lx, 1e6 / lx as f64),
                cpu_ticks: Some(10),
            });
        }
        // Per-run ratios 10, 3, 9: the median is 9, not 900/100.
        assert_eq!(c.ratio(Source::Rs, Source::Lxcfs, ops), Some(9.0));
        assert_eq!(c.median(Source::Rs, ops), Some(900.0));
        c.runs[Source::Lxcfs.index()][0].m.error = Some("x".into());
        assert_eq!(c.ratio(Source::Rs, Source::Lxcfs, ops), None);
        assert_eq!(c.median(Source::Lxcfs, ops), None);
    }
}
