//! `soak`: a host's worth of containers polling like `top`, for minutes, with the
//! lxcfs-rs worker killed once a minute; then the same load against LXCFS.
//!
//! Each container (its own v1 cgroup with its own memory limit, a new pid + mount
//! namespace, the files bind-mounted) runs one poller as pid 1's child that, once a
//! second, opens, reads and closes `meminfo`, `stat`, `uptime` and `loadavg`, checks what
//! it read (its own `MemTotal`, well-formed lines) and keeps a latency histogram. At the
//! end each poller reports its counts; the orchestrator adds the daemon's CPU time over
//! the run and its RSS once warmed up and at the end, and prints one row per daemon.
//! With `--floor` the same load also runs against a FUSE server that does no work
//! (`floor`), the least any daemon can cost at that load.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::container::Container;
use crate::daemons::{DaemonArgs, equal_work};
use crate::sys::{self, Cgroup, Daemon, Interrupt, Workdir};

const MIB: u64 = 1024 * 1024;
/// The files a `top`-like poller reads, by bind target name and path in the mount.
const FILES: [(&str, &str); 4] = [
    ("meminfo", "proc/meminfo"),
    ("stat", "proc/stat"),
    ("uptime", "proc/uptime"),
    ("loadavg", "proc/loadavg"),
];
/// What the poller is told for `MemTotal` when any value will do (the floor's).
const ANY_MEMTOTAL: &str = "any";
/// Latency buckets: quarter powers of two of a microsecond, up to about 17 minutes.
const BUCKETS: usize = 120;

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// Containers polling at once.
    #[arg(long, default_value_t = 500)]
    pub containers: usize,
    /// Minutes of polling per daemon.
    #[arg(long, default_value_t = 3.0)]
    pub minutes: f64,
    /// Kill the lxcfs-rs worker (SIGKILL) this often, in seconds (0: never).
    #[arg(long, default_value_t = 60)]
    pub kill_every: u64,
    /// Seconds of polling before the first RSS sample (caches, the load sampler).
    #[arg(long, default_value_t = 20)]
    pub warmup: u64,
    /// The files each container polls, comma-separated (`--files loadavg` is the
    /// cheapest rendering in both daemons: no memory or CPU controller file).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "meminfo,stat,uptime,loadavg"
    )]
    pub files: Vec<String>,
    /// How deep each container's cgroup is: 1 puts it at the top level; 2 puts it in a
    /// group of its own (a pod); from 3, the pods are inside a chain of groups that every
    /// container shares (Kubernetes: `--depth 4` for kubepods/burstable/pod/container).
    #[arg(long, default_value_t = 1)]
    pub depth: usize,
    /// Also run the same load against a FUSE server that does no work (the host's
    /// files as read at its start, answered from memory, speaking to the kernel as
    /// lxcfs-rs does): the least CPU any daemon can use at this load. Its reads are
    /// not checked for the container's own `MemTotal`.
    #[arg(long)]
    pub floor: bool,
    #[command(flatten)]
    pub daemons: DaemonArgs,
}

/// What the pollers of one daemon saw, and what it cost.
struct Row {
    name: &'static str,
    reads: u64,
    failed: u64,
    wrong: u64,
    hist: Vec<u64>,
    cpu_percent: f64,
    rss_start_kib: u64,
    rss_end_kib: u64,
    kills: u32,
    first_problem: Option<String>,
}

pub fn run(args: &SoakArgs) -> Result<()> {
    let intr = Interrupt::install()?;
    if !rustix::process::geteuid().is_root() {
        bail!("soak must run as root: it mounts FUSE filesystems and creates cgroups");
    }
    Cgroup::check()?;
    if args.containers == 0 || !(args.minutes.is_finite() && args.minutes > 0.0) {
        bail!("--containers and --minutes must be positive");
    }
    if args.depth == 0 {
        bail!("--depth must be at least 1");
    }
    if args.files.is_empty() {
        bail!("--files names no file");
    }
    for f in &args.files {
        if !FILES.iter().any(|(key, _)| key == f) {
            let known: Vec<&str> = FILES.iter().map(|(key, _)| *key).collect();
            bail!("--files: unknown file {f:?} (known: {})", known.join(", "));
        }
    }
    let (rs_exe, lx_exe) = args.daemons.binaries()?;
    let (lx_args, _) = equal_work(&args.daemons.lxcfs_rs_args, &args.daemons.lxcfs_args);
    let exe = std::env::current_exe().context("cannot find my own executable")?;
    let cpus = sys::default_container_cpus()?;
    let work = Workdir::create()?;
    let mut subjects = vec![Subject {
        name: RS,
        exe: rs_exe,
        lead: &[],
        args: args.daemons.lxcfs_rs_args.clone(),
        kill_workers: true,
        own_memtotal: true,
    }];
    if args.floor {
        subjects.push(Subject {
            name: FLOOR,
            exe: exe.clone(),
            lead: &["floor-server"],
            args: Vec::new(),
            kill_workers: false,
            own_memtotal: false,
        });
    }
    if let Some(lx) = lx_exe {
        subjects.push(Subject {
            name: LXCFS,
            exe: lx,
            lead: &[],
            args: lx_args,
            kill_workers: false,
            own_memtotal: true,
        });
    }
    let mut rows = Vec::new();
    for s in &subjects {
        rows.push(soak_one(s, args, &exe, &cpus, &work, &intr)?);
    }
    print_report(args, &rows);
    Ok(())
}

const RS: &str = "lxcfs-rs";
const LXCFS: &str = "LXCFS";
const FLOOR: &str = "FUSE floor";

/// A daemon the load runs against, and how.
struct Subject {
    name: &'static str,
    exe: PathBuf,
    /// Arguments before the daemon's `-p` (the floor server's subcommand).
    lead: &'static [&'static str],
    args: Vec<String>,
    /// SIGKILL its worker processes every `--kill-every` seconds.
    kill_workers: bool,
    /// Check that each container reads its own `MemTotal` (the floor serves the host's).
    own_memtotal: bool,
}

fn soak_one(
    subject: &Subject,
    args: &SoakArgs,
    exe: &Path,
    cpus: &str,
    work: &Workdir,
    intr: &Interrupt,
) -> Result<Row> {
    let name = subject.name;
    let kill_workers = subject.kill_workers;
    let dir = name.to_lowercase().replace(' ', "-");
    let d = Daemon::start(
        name,
        &subject.exe,
        subject.lead,
        &subject.args,
        work,
        &dir,
        intr,
    )?;
    eprintln!(
        "lxcfs-bench soak: {name}: starting {} containers",
        args.containers
    );
    // Locals drop in reverse: containers, then their groups, pods, the shared chain.
    let top = format!("lxcfs-bench-soak-{}-{dir}", std::process::id());
    let mut shared: Vec<Cgroup> = Vec::new();
    for level in 0..args.depth.saturating_sub(2) {
        let name = match shared.first() {
            None => top.clone(),
            Some(above) => format!("{}/l{level}", above.name()),
        };
        // Deepest first, the order they must be removed in.
        shared.insert(0, Cgroup::parent(&name)?);
    }
    let mut pods = Vec::new();
    let mut cgroups = Vec::new();
    let mut containers = Vec::new();
    for i in 0..args.containers {
        // Limits differ between neighbours, so a reading of another's is caught.
        let mib = 64 + (i as u64 % 512);
        let name = match (args.depth, shared.first()) {
            (1, _) => format!("{top}-{i}"),
            (_, None) => format!("{top}-pod{i}"),
            (_, Some(above)) => format!("{}/pod{i}", above.name()),
        };
        let name = if args.depth >= 2 {
            pods.push(Cgroup::parent(&name)?);
            format!("{name}/c")
        } else {
            name
        };
        let cg = Cgroup::create(&name, mib * MIB, cpus)?;
        let binds: Vec<(String, PathBuf)> = FILES
            .iter()
            .map(|(key, rel)| (key.to_string(), d.mnt.join(rel)))
            .collect();
        let cdir = work.join(&format!("{dir}-c{i}"));
        fs::create_dir_all(&cdir)?;
        let ctr = Container::start(exe, &cg, &cdir, &binds, intr)?;
        cgroups.push(cg);
        containers.push((ctr, mib * 1024, cdir));
    }
    let seconds = (args.minutes * 60.0).round() as u64;
    let n = containers.len().max(1) as u64;
    for (i, (ctr, kib, cdir)) in containers.iter_mut().enumerate() {
        // Spread over the second, as independent `top`s would be (each poller is pid 1
        // of its namespace: its own pid can't spread them).
        let offset_ms = i as u64 * 1000 / n;
        let memtotal = if subject.own_memtotal {
            kib.to_string()
        } else {
            ANY_MEMTOTAL.to_string()
        };
        ctr.send(&[
            "soak".into(),
            seconds.to_string(),
            memtotal,
            cdir.display().to_string(),
            offset_ms.to_string(),
            args.files.join(","),
        ])?;
    }
    let start = Instant::now();
    let cpu_start = d.cpu_ticks()?;
    let mut rss_start = None;
    let mut kills = 0;
    let mut next_kill = Duration::from_secs(args.kill_every);
    while start.elapsed() < Duration::from_secs(seconds) {
        intr.check()?;
        std::thread::sleep(Duration::from_millis(200));
        if rss_start.is_none() && start.elapsed() >= Duration::from_secs(args.warmup) {
            rss_start = Some(d.rss_kib()?);
        }
        if kill_workers && args.kill_every > 0 && start.elapsed() >= next_kill {
            for w in sys::children(d.pid()) {
                sys::signal(w, rustix::process::Signal::KILL);
            }
            kills += 1;
            next_kill += Duration::from_secs(args.kill_every);
        }
    }
    let rss_end = d.rss_kib()?;
    let cpu = d.cpu_ticks()?.saturating_sub(cpu_start);
    let elapsed = start.elapsed().as_secs_f64();
    let mut row = Row {
        name,
        reads: 0,
        failed: 0,
        wrong: 0,
        hist: vec![0; BUCKETS],
        cpu_percent: 100.0 * sys::ticks_to_ms(cpu) / 1000.0 / elapsed,
        rss_start_kib: rss_start.unwrap_or(rss_end),
        rss_end_kib: rss_end,
        kills,
        first_problem: None,
    };
    for (ctr, _, _) in &mut containers {
        let (lines, _) = ctr.answer(Duration::from_secs(60), intr)?;
        for l in lines {
            merge(&mut row, &l);
        }
    }
    drop(containers);
    drop(cgroups);
    drop(pods);
    drop(shared);
    drop(d);
    Ok(row)
}

/// Add one poller's report (`soak <reads> <failed> <wrong> <bucket counts...>`, then
/// maybe `problem <text>`) to the row.
fn merge(row: &mut Row, line: &str) {
    if let Some(p) = line.strip_prefix("problem ") {
        row.first_problem.get_or_insert_with(|| p.to_string());
        return;
    }
    let mut w = line.split_whitespace();
    if w.next() != Some("soak") {
        return;
    }
    let mut n = || w.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    row.reads += n();
    row.failed += n();
    row.wrong += n();
    for b in row.hist.iter_mut() {
        *b += n();
    }
}

fn bucket(us: f64) -> usize {
    ((us.max(1.0).log2() * 4.0) as usize).min(BUCKETS - 1)
}

/// The upper bound of the bucket holding quantile `q`, in µs.
fn quantile(hist: &[u64], q: f64) -> f64 {
    let total: u64 = hist.iter().sum();
    let want = (total as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (i, &c) in hist.iter().enumerate() {
        seen += c;
        if seen >= want && c > 0 {
            return 2f64.powf((i + 1) as f64 / 4.0);
        }
    }
    0.0
}

fn print_report(args: &SoakArgs, rows: &[Row]) {
    println!("### lxcfs-bench soak\n");
    let kills = if args.kill_every == 0 {
        "never SIGKILLed".to_string()
    } else {
        format!("SIGKILLed every {} s", args.kill_every)
    };
    println!(
        "- {} containers {} deep, each polling {} once a second for {} min; the lxcfs-rs \
         worker {kills}; lxcfs-rs arguments {:?}; LXCFS runs with -l",
        args.containers,
        args.depth,
        args.files.join(", "),
        args.minutes,
        args.daemons.lxcfs_rs_args
    );
    if args.floor {
        println!(
            "- {FLOOR}: a FUSE server that does no work (one thread, the host's files read \
             once, answered from memory); its MemTotal is not checked"
        );
    }
    println!(
        "- RSS start is taken after {} s of polling; latency is open + read + close, from \
         inside the containers (quarter-power-of-two buckets: upper bounds)\n",
        args.warmup
    );
    println!(
        "| daemon | reads | failed | wrong | p50 µs | p99 µs | daemon CPU, % of a core | RSS start | RSS end | worker kills |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.1} | {:.1} MiB | {:.1} MiB | {} |",
            r.name,
            r.reads,
            r.failed,
            r.wrong,
            quantile(&r.hist, 0.5),
            quantile(&r.hist, 0.99),
            r.cpu_percent,
            r.rss_start_kib as f64 / 1024.0,
            r.rss_end_kib as f64 / 1024.0,
            r.kills
        );
    }
    let row = |name: &str| rows.iter().find(|r| r.name == name);
    if let Some(lx) = row(LXCFS).filter(|lx| lx.cpu_percent > 0.0) {
        println!();
        for r in [row(RS), row(FLOOR)].into_iter().flatten() {
            println!(
                "daemon CPU {}/LXCFS: {:.2}",
                r.name,
                r.cpu_percent / lx.cpu_percent
            );
        }
    }
    for r in rows {
        if let Some(p) = &r.first_problem {
            println!("\nfirst problem seen with {}: {p}", r.name);
        }
    }
}

/// The poller, in the container (the agent's `soak` request): `seconds`, the expected
/// `MemTotal` in kB, the directory the files are bound under, the milliseconds to wait
/// before the first poll, and the files to poll (comma-separated bind names).
pub fn poll_in_container(words: &[&str], out: &mut impl Write) -> Result<i32> {
    let [seconds, kib, dir, offset, files] = words else {
        bail!("soak wants SECONDS MEMTOTAL_KB DIR OFFSET_MS FILES");
    };
    let files: Vec<&str> = files.split(',').collect();
    let seconds: u64 = seconds.parse()?;
    let offset: u64 = offset.parse()?;
    let want = if *kib == ANY_MEMTOTAL {
        ANY_MEMTOTAL.to_string()
    } else {
        format!("{kib} kB")
    };
    let dir = Path::new(dir);
    let (mut reads, mut failed, mut wrong) = (0u64, 0u64, 0u64);
    let mut hist = vec![0u64; BUCKETS];
    let mut problem: Option<String> = None;
    std::thread::sleep(Duration::from_millis(offset));
    let start = Instant::now();
    let mut tick = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        for key in &files {
            let t = Instant::now();
            let r = fs::read(dir.join(key));
            hist[bucket(t.elapsed().as_secs_f64() * 1e6)] += 1;
            reads += 1;
            match r {
                Err(e) => {
                    failed += 1;
                    problem.get_or_insert_with(|| format!("{key}: {e}"));
                }
                Ok(bytes) => {
                    if let Err(why) = check(key, &bytes, &want) {
                        wrong += 1;
                        problem.get_or_insert_with(|| format!("{key}: {why}"));
                    }
                }
            }
        }
        tick += 1;
        let next = start + Duration::from_secs(tick);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    write!(out, "soak {reads} {failed} {wrong}")?;
    for b in hist {
        write!(out, " {b}")?;
    }
    writeln!(out)?;
    if let Some(p) = problem {
        writeln!(out, "problem {}", p.replace('\n', " "))?;
    }
    Ok(0)
}

/// What a container must see: its own memory limit, well-formed files.
fn check(key: &str, bytes: &[u8], want_memtotal: &str) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let first = text.lines().next().unwrap_or("");
    let ok = match key {
        "meminfo" => {
            first.starts_with("MemTotal:")
                && (want_memtotal == ANY_MEMTOTAL || first.ends_with(want_memtotal))
        }
        "stat" => first.starts_with("cpu "),
        "uptime" => first.split_whitespace().count() == 2,
        "loadavg" => first.split_whitespace().count() == 5,
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected first line {first:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let mut h = vec![0u64; BUCKETS];
        for us in [10.0, 10.0, 10.0, 1000.0] {
            h[bucket(us)] += 1;
        }
        let p50 = quantile(&h, 0.5);
        assert!((10.0..14.0).contains(&p50), "{p50}");
        let p99 = quantile(&h, 0.99);
        assert!((1000.0..1200.0).contains(&p99), "{p99}");
        assert!(check("meminfo", b"MemTotal:  65536 kB\n", "65536 kB").is_ok());
        assert!(check("meminfo", b"MemTotal:  99 kB\n", "65536 kB").is_err());
        assert!(check("meminfo", b"MemTotal:  99 kB\n", ANY_MEMTOTAL).is_ok());
        assert!(check("meminfo", b"MemFree:  99 kB\n", ANY_MEMTOTAL).is_err());
    }
}
