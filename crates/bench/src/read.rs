//! `lxcfs-bench read`: the load. For each file in turn, `threads` readers loop on
//! open + read-to-EOF (64 KiB buffer) + close for `seconds`; every cycle is timed.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The read buffer: larger than any of the files, so one `read(2)` gets the content and a
/// second one sees EOF, as `cat` and most tools do.
pub const BUF_SIZE: usize = 64 * 1024;

#[derive(clap::Args, Debug)]
pub struct ReadArgs {
    /// Files to read, comma-separated (or repeat the flag); measured one after the other.
    #[arg(long = "file", value_delimiter = ',', required = true)]
    pub files: Vec<PathBuf>,
    /// Measured time per file.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Concurrent readers (threads), each in its own loop on the same file.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Unmeasured single-reader loop before each file (first-read costs, caches).
    #[arg(long, default_value_t = 100)]
    pub warmup_ms: u64,
    /// Pause of each reader between cycles (not timed): 0 is a tight loop; a pause
    /// paces the readers like pollers and shows the daemon's cost per read when reads
    /// do not come back to back.
    #[arg(long, default_value_t = 0)]
    pub pause_us: u64,
    /// `json`: one JSON object per file and line; `tsv`: a header line, then one row per file.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Tsv,
}

/// The result of reading one file with `threads` readers.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub file: String,
    pub threads: usize,
    /// Completed open+read+close cycles, all readers together.
    pub ops: u64,
    /// Wall time from the first reader's start to the last reader's end.
    pub seconds: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
    pub max_us: f64,
    /// Size of the content the last cycle read.
    pub bytes: u64,
    /// The first error; the reader that met it stopped.
    pub error: Option<String>,
}

impl Measurement {
    pub const TSV_HEADER: &'static str =
        "file\tthreads\tops\tseconds\tops_per_s\tp50_us\tp99_us\tmean_us\tmax_us\tbytes\terror";

    pub fn ops_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ops as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Two runs at the same time (one per container) as one: their reads together over
    /// the longer wall time, the higher of their percentiles.
    pub fn together(a: &Measurement, b: &Measurement) -> Measurement {
        let ops = a.ops + b.ops;
        let weighted = |x: f64, y: f64| {
            if ops == 0 {
                0.0
            } else {
                (x * a.ops as f64 + y * b.ops as f64) / ops as f64
            }
        };
        Measurement {
            file: a.file.clone(),
            threads: a.threads + b.threads,
            ops,
            seconds: a.seconds.max(b.seconds),
            p50_us: a.p50_us.max(b.p50_us),
            p99_us: a.p99_us.max(b.p99_us),
            mean_us: weighted(a.mean_us, b.mean_us),
            max_us: a.max_us.max(b.max_us),
            bytes: a.bytes,
            error: a.error.clone().or_else(|| b.error.clone()),
        }
    }

    fn failed(file: &Path, threads: usize, error: String) -> Measurement {
        Measurement {
            file: file.display().to_string(),
            threads,
            ops: 0,
            seconds: 0.0,
            p50_us: 0.0,
            p99_us: 0.0,
            mean_us: 0.0,
            max_us: 0.0,
            bytes: 0,
            error: Some(error),
        }
    }

    pub fn tsv(&self) -> String {
        let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
        format!(
            "{}\t{}\t{}\t{:.6}\t{:.1}\t{:.2}\t{:.2}\t{:.2}\t{:.2}\t{}\t{}",
            clean(&self.file),
            self.threads,
            self.ops,
            self.seconds,
            self.ops_per_s(),
            self.p50_us,
            self.p99_us,
            self.mean_us,
            self.max_us,
            self.bytes,
            self.error.as_deref().map_or_else(|| "-".to_string(), clean),
        )
    }

    pub fn from_tsv(line: &str) -> Result<Measurement> {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 11 {
            bail!("not a result row ({} fields): {line:?}", f.len());
        }
        let num = |i: usize| -> Result<f64> {
            f[i].parse::<f64>()
                .with_context(|| format!("field {i} of {line:?}"))
        };
        Ok(Measurement {
            file: f[0].to_string(),
            threads: f[1]
                .parse()
                .with_context(|| format!("threads in {line:?}"))?,
            ops: f[2].parse().with_context(|| format!("ops in {line:?}"))?,
            seconds: num(3)?,
            p50_us: num(5)?,
            p99_us: num(6)?,
            mean_us: num(7)?,
            max_us: num(8)?,
            bytes: f[9].parse().with_context(|| format!("bytes in {line:?}"))?,
            error: (f[10] != "-").then(|| f[10].to_string()),
        })
    }

    pub fn json(&self) -> String {
        let mut s = String::from("{");
        let _ = write!(
            s,
            "\"file\":{},\"threads\":{},\"ops\":{},\"seconds\":{:.6},\"ops_per_s\":{:.1},\
             \"p50_us\":{:.2},\"p99_us\":{:.2},\"mean_us\":{:.2},\"max_us\":{:.2},\"bytes\":{},\
             \"error\":{}",
            json_string(&self.file),
            self.threads,
            self.ops,
            self.seconds,
            self.ops_per_s(),
            self.p50_us,
            self.p99_us,
            self.mean_us,
            self.max_us,
            self.bytes,
            self.error
                .as_deref()
                .map_or_else(|| "null".to_string(), json_string),
        );
        s.push('}');
        s
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn run(args: &ReadArgs) -> Result<()> {
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        bail!("--seconds must be a positive number");
    }
    if args.threads == 0 {
        bail!("--threads must be at least 1");
    }
    let duration = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_millis(args.warmup_ms);
    let mut out = io::stdout().lock();
    if args.format == Format::Tsv {
        writeln!(out, "{}", Measurement::TSV_HEADER)?;
    }
    let mut failed = 0;
    for file in &args.files {
        let pause = Duration::from_micros(args.pause_us);
        let m = measure(file, duration, args.threads, warmup, pause);
        if m.error.is_some() {
            failed += 1;
        }
        match args.format {
            Format::Json => writeln!(out, "{}", m.json())?,
            Format::Tsv => writeln!(out, "{}", m.tsv())?,
        }
        out.flush()?;
    }
    if failed > 0 {
        bail!("reading {failed} of {} files failed", args.files.len());
    }
    Ok(())
}

/// One cycle: open, read until EOF, close. Returns the bytes read.
pub fn read_once(path: &Path, buf: &mut [u8]) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut total = 0u64;
    loop {
        match f.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// What one reader thread saw.
struct Reader {
    /// Per-cycle latency in ns (saturating at ~4.3 s).
    lat_ns: Vec<u32>,
    bytes: u64,
    start: Instant,
    end: Instant,
    error: Option<String>,
}

fn reader(path: &Path, duration: Duration, pause: Duration, barrier: &Barrier) -> Reader {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut lat_ns = Vec::with_capacity(1 << 16);
    let mut bytes = 0;
    let mut error = None;
    barrier.wait();
    let start = Instant::now();
    let deadline = start + duration;
    let mut t0 = start;
    loop {
        match read_once(path, &mut buf) {
            Ok(n) => bytes = n,
            Err(e) => {
                error = Some(format!("{}: {e}", path.display()));
                break;
            }
        }
        let t1 = Instant::now();
        lat_ns.push(u32::try_from((t1 - t0).as_nanos()).unwrap_or(u32::MAX));
        t0 = t1;
        if t1 >= deadline {
            break;
        }
        if !pause.is_zero() {
            std::thread::sleep(pause);
            t0 = Instant::now();
        }
    }
    Reader {
        lat_ns,
        bytes,
        start,
        end: t0,
        error,
    }
}

/// Read `path` with `threads` concurrent readers for `duration`, after a warm-up.
pub fn measure(
    path: &Path,
    duration: Duration,
    threads: usize,
    warmup: Duration,
    pause: Duration,
) -> Measurement {
    let mut buf = vec![0u8; BUF_SIZE];
    let warm_end = Instant::now() + warmup;
    loop {
        if let Err(e) = read_once(path, &mut buf) {
            return Measurement::failed(path, threads, format!("{}: {e}", path.display()));
        }
        if Instant::now() >= warm_end {
            break;
        }
    }

    let barrier = Barrier::new(threads);
    let readers: Vec<Reader> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| reader(path, duration, pause, &barrier)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| Reader {
                    lat_ns: Vec::new(),
                    bytes: 0,
                    start: Instant::now(),
                    end: Instant::now(),
                    error: Some("a reader thread panicked".to_string()),
                })
            })
            .collect()
    });

    let start = readers.iter().map(|r| r.start).min();
    let end = readers.iter().map(|r| r.end).max();
    let seconds = match (start, end) {
        (Some(s), Some(e)) => e.saturating_duration_since(s).as_secs_f64(),
        _ => 0.0,
    };
    let error = readers.iter().find_map(|r| r.error.clone());
    let bytes = readers.iter().map(|r| r.bytes).max().unwrap_or(0);
    let mut lat: Vec<u32> = readers.into_iter().flat_map(|r| r.lat_ns).collect();
    lat.sort_unstable();
    let stats = LatencyStats::of_sorted(&lat);
    Measurement {
        file: path.display().to_string(),
        threads,
        ops: lat.len() as u64,
        seconds,
        p50_us: stats.p50_us,
        p99_us: stats.p99_us,
        mean_us: stats.mean_us,
        max_us: stats.max_us,
        bytes,
        error,
    }
}

#[derive(Debug, Default, PartialEq)]
struct LatencyStats {
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
    max_us: f64,
}

impl LatencyStats {
    /// Nearest-rank percentiles of sorted nanosecond samples, in µs.
    fn of_sorted(ns: &[u32]) -> LatencyStats {
        let Some(&max) = ns.last() else {
            return LatencyStats::default();
        };
        let rank = |q: f64| -> f64 {
            let i = ((q * ns.len() as f64).ceil() as usize).clamp(1, ns.len()) - 1;
            f64::from(ns[i]) / 1000.0
        };
        let sum: u64 = ns.iter().map(|&v| u64::from(v)).sum();
        LatencyStats {
            p50_us: rank(0.50),
            p99_us: rank(0.99),
            mean_us: sum as f64 / ns.len() as f64 / 1000.0,
            max_us: f64::from(max) / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ns: Vec<u32> = (1..=100).map(|v| v * 1000).collect();
        let s = LatencyStats::of_sorted(&ns);
        assert_eq!(s.p50_us, 50.0);
        assert_eq!(s.p99_us, 99.0);
        assert_eq!(s.max_us, 100.0);
        assert_eq!(s.mean_us, 50.5);
        assert_eq!(LatencyStats::of_sorted(&[]), LatencyStats::default());
        assert_eq!(LatencyStats::of_sorted(&[7000]).p99_us, 7.0);
    }

    #[test]
    fn tsv_round_trips() {
        let m = Measurement {
            file: "/x/meminfo".into(),
            threads: 2,
            ops: 12345,
            seconds: 1.000123,
            p50_us: 12.5,
            p99_us: 40.25,
            mean_us: 14.0,
            max_us: 900.0,
            bytes: 1410,
            error: None,
        };
        let back = Measurement::from_tsv(&m.tsv()).unwrap();
        assert_eq!(back, m);
        let e = Measurement {
            error: Some("open\tfailed\n".into()),
            ..m
        };
        let back = Measurement::from_tsv(&e.tsv()).unwrap();
        assert_eq!(back.error.as_deref(), Some("open failed "));
        assert!(Measurement::from_tsv(Measurement::TSV_HEADER).is_err());
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn reads_a_file_with_threads() {
        let m = measure(
            Path::new("/proc/self/stat"),
            Duration::from_millis(50),
            2,
            Duration::from_millis(5),
            Duration::ZERO,
        );
        assert!(m.error.is_none(), "{m:?}");
        assert!(m.ops > 0 && m.bytes > 0 && m.p50_us > 0.0 && m.p99_us >= m.p50_us);
        // A 10 ms pause: at most 6 cycles per thread in 50 ms, and the pause is not timed.
        let paced = measure(
            Path::new("/proc/self/stat"),
            Duration::from_millis(50),
            2,
            Duration::ZERO,
            Duration::from_millis(10),
        );
        assert!(paced.ops >= 2 && paced.ops <= 12, "{paced:?}");
        assert!(paced.p99_us < 10_000.0, "{paced:?}");
        let missing = measure(
            Path::new("/nonexistent/lxcfs-bench"),
            Duration::from_millis(10),
            1,
            Duration::ZERO,
            Duration::ZERO,
        );
        assert!(missing.error.is_some() && missing.ops == 0);
    }
}
