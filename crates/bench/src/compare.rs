//! `lxcfs-bench compare`: lxcfs-rs, LXCFS and the kernel side by side, from inside one
//! container, interleaved; then daemon RSS after many short-lived containers.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::container::{Container, run_in_cgroup};
use crate::daemons::{DaemonArgs, equal_work};
use crate::read::Measurement;
use crate::report::{Cell, Environment, Report, Round, Run, Serving};
use crate::sys::{self, Cgroup, Daemon, Interrupt, Workdir};

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Measured time of each run (one source, one file, one reader count).
    #[arg(long, default_value_t = 1.0)]
    pub seconds: f64,
    /// Runs per source and cell, interleaved (lxcfs-rs, LXCFS, kernel, lxcfs-rs, ...).
    /// Five, because on a shared or virtual machine a single run can be off by a third
    /// and the median of three still moves by a tenth between invocations.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Reader counts (concurrent threads in the container).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub readers: Vec<usize>,
    /// Files to measure (default: all): meminfo, cpuinfo, stat, uptime, loadavg,
    /// diskstats, swaps, cpu-online.
    #[arg(long, value_delimiter = ',')]
    pub files: Vec<String>,
    #[command(flatten)]
    pub daemons: DaemonArgs,
    /// Also measure every file with one reader in each of two containers at once (the
    /// second with twice the memory limit, so that their renderings differ): with
    /// `--lxcfs-rs-arg=--fuse-passthrough`, lxcfs-rs has one passthrough backing file
    /// per file, which two containers' overlapping opens must take turns on, so this is
    /// its worst case and the common one on a host where many containers poll.
    #[arg(long)]
    pub neighbour: bool,
    /// Pause of each reader between cycles, in µs (0: a tight loop). Paced readers show
    /// the daemons' CPU per read and latency when reads do not come back to back, as
    /// with pollers; ops/s then mostly shows the pace.
    #[arg(long, default_value_t = 0)]
    pub pause_us: u64,
    /// The container's memory limit.
    #[arg(long, default_value_t = 256)]
    pub memory_mib: u64,
    /// The container's cpuset [default: the host's CPUs but the first].
    #[arg(long)]
    pub cpus: Option<String>,
    /// Unmeasured warm-up before each run.
    #[arg(long, default_value_t = 100)]
    pub warmup_ms: u64,
    /// Short-lived containers (pid namespaces) per round of the memory test; 0 skips it.
    #[arg(long, default_value_t = 1000)]
    pub containers: usize,
    /// Rounds of the memory test (RSS is shown after each).
    #[arg(long, default_value_t = 2)]
    pub container_rounds: usize,
    /// Short-lived containers alive at once [default: 4 per CPU].
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Also write every run as TSV to this file.
    #[arg(long)]
    pub raw: Option<PathBuf>,
    /// A line for the report's header (e.g. the commit measured); repeatable.
    #[arg(long)]
    pub note: Vec<String>,
}

/// A virtual file: where it is under a daemon's mountpoint and the kernel's own.
#[derive(Debug, PartialEq, Eq)]
pub struct VFile {
    /// Short name, also the bind target in the container.
    pub key: &'static str,
    pub rel: &'static str,
    pub kernel: &'static str,
}

pub const FILES: [VFile; 8] = [
    VFile {
        key: "meminfo",
        rel: "proc/meminfo",
        kernel: "/proc/meminfo",
    },
    VFile {
        key: "cpuinfo",
        rel: "proc/cpuinfo",
        kernel: "/proc/cpuinfo",
    },
    VFile {
        key: "stat",
        rel: "proc/stat",
        kernel: "/proc/stat",
    },
    VFile {
        key: "uptime",
        rel: "proc/uptime",
        kernel: "/proc/uptime",
    },
    VFile {
        key: "loadavg",
        rel: "proc/loadavg",
        kernel: "/proc/loadavg",
    },
    VFile {
        key: "diskstats",
        rel: "proc/diskstats",
        kernel: "/proc/diskstats",
    },
    VFile {
        key: "swaps",
        rel: "proc/swaps",
        kernel: "/proc/swaps",
    },
    VFile {
        key: "cpu-online",
        rel: "sys/devices/system/cpu/online",
        kernel: "/sys/devices/system/cpu/online",
    },
];

/// Where a file is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Rs,
    Lxcfs,
    Kernel,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Rs, Source::Lxcfs, Source::Kernel];

    pub fn key(self) -> &'static str {
        match self {
            Source::Rs => "lxcfs-rs",
            Source::Lxcfs => "lxcfs",
            Source::Kernel => "kernel",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Source::Rs => "lxcfs-rs",
            Source::Lxcfs => "LXCFS",
            Source::Kernel => "kernel",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

const MIB: u64 = 1024 * 1024;

/// The two daemons; dropped (stopped, unmounted) after the container and the cgroup.
struct Daemons {
    rs: Daemon,
    lx: Option<Daemon>,
}

impl Daemons {
    fn get(&mut self, src: Source) -> Option<&mut Daemon> {
        match src {
            Source::Rs => Some(&mut self.rs),
            Source::Lxcfs => self.lx.as_mut(),
            Source::Kernel => None,
        }
    }
}

fn select_files(names: &[String]) -> Result<Vec<&'static VFile>> {
    if names.is_empty() {
        return Ok(FILES.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            FILES.iter().find(|f| f.key == n).with_context(|| {
                let keys: Vec<&str> = FILES.iter().map(|f| f.key).collect();
                format!("unknown file {n:?}; known: {}", keys.join(", "))
            })
        })
        .collect()
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

pub fn run(args: &CompareArgs) -> Result<()> {
    let intr = Interrupt::install()?;
    if !rustix::process::geteuid().is_root() {
        bail!("compare must run as root: it mounts FUSE filesystems and creates cgroups");
    }
    if !Path::new("/dev/fuse").exists() {
        bail!("/dev/fuse is missing (modprobe fuse)");
    }
    Cgroup::check()?;
    for tool in ["sh", "unshare"] {
        if which(tool).is_none() {
            bail!("{tool} is not in PATH (install util-linux)");
        }
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        bail!("--seconds must be a positive number");
    }
    if args.reps == 0 || args.readers.is_empty() || args.readers.contains(&0) {
        bail!("--reps and every --readers count must be at least 1");
    }
    let files = select_files(&args.files)?;
    let (rs_exe, lx_exe) = args.daemons.binaries()?;
    let exe = std::env::current_exe().context("cannot find my own executable")?;
    let cpus = match &args.cpus {
        Some(c) => sys::format_cpu_list(&sys::parse_cpu_list(c)?),
        None => sys::default_container_cpus()?,
    };
    let ncpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (lxcfs_args, same_work) = equal_work(&args.daemons.lxcfs_rs_args, &args.daemons.lxcfs_args);
    let mut notes = args.note.clone();
    notes.extend(same_work);

    let mut env = Environment {
        kernel: {
            let u = rustix::system::uname();
            format!(
                "{} {}",
                u.sysname().to_string_lossy(),
                u.release().to_string_lossy()
            )
        },
        cpus: ncpus,
        rs_version: sys::version_of(&rs_exe),
        lx_version: lx_exe.as_deref().map(sys::version_of),
        memory_mib: args.memory_mib,
        container_cpus: cpus.clone(),
        neighbour_mib: args.neighbour.then_some(args.memory_mib * 2),
        pause_us: args.pause_us,
        seconds: args.seconds,
        reps: args.reps,
        view: Vec::new(),
        notes,
        load: (load_average(), String::new()),
    };

    // Owned resources, dropped in reverse: container, cgroup, daemons, work directory.
    let work = Workdir::create()?;
    eprintln!(
        "lxcfs-bench: mounting {} under {}",
        if lx_exe.is_some() {
            "lxcfs-rs and LXCFS"
        } else {
            "lxcfs-rs"
        },
        work.path.display()
    );
    let rs = Daemon::start(
        "lxcfs-rs",
        &rs_exe,
        &[],
        &args.daemons.lxcfs_rs_args,
        &work,
        "lxcfs-rs",
        &intr,
    )?;
    let lx = match &lx_exe {
        Some(p) => Some(Daemon::start(
            "LXCFS",
            p,
            &[],
            &lxcfs_args,
            &work,
            "lxcfs",
            &intr,
        )?),
        None => None,
    };
    let mut daemons = Daemons { rs, lx };
    let sources: Vec<Source> = Source::ALL
        .into_iter()
        .filter(|s| *s != Source::Lxcfs || daemons.lx.is_some())
        .collect();
    let mut rss_at_start = Vec::new();
    for &src in &sources {
        if let Some(d) = daemons.get(src) {
            rss_at_start.push(d.rss_kib()?);
        }
    }

    let cg = Cgroup::create(
        &format!("lxcfs-bench-{}", std::process::id()),
        args.memory_mib * MIB,
        &cpus,
    )?;
    let cdir = work.join("container");
    let mut binds = Vec::new();
    for &src in &sources {
        for f in &files {
            let from = match daemons.get(src) {
                Some(d) => d.mnt.join(f.rel),
                None => PathBuf::from(f.kernel),
            };
            binds.push((format!("{}/{}", src.key(), f.key), from));
        }
    }
    let mut ctr = Container::start(&exe, &cg, &cdir, &binds, &intr)?;
    let ndir = work.join("neighbour");
    let mut neighbour = match env.neighbour_mib {
        Some(mib) => {
            let cg = Cgroup::create(
                &format!("lxcfs-bench-{}-neighbour", std::process::id()),
                mib * MIB,
                &cpus,
            )?;
            let c = Container::start(&exe, &cg, &ndir, &binds, &intr)?;
            Some((c, cg))
        }
        None => None,
    };
    let cells_per_file = args.readers.len() + usize::from(neighbour.is_some());
    eprintln!(
        "lxcfs-bench: container up (cgroup {}: {} MiB, cpuset {cpus}){}; {} runs of {} s",
        cg.name(),
        args.memory_mib,
        if neighbour.is_some() {
            " with a neighbour"
        } else {
            ""
        },
        files.len() * cells_per_file * args.reps * sources.len(),
        args.seconds
    );
    env.view = container_view(&mut ctr, &cdir, &sources, &files, &intr)?;

    let mut readers = vec![(&mut ctr, cdir.as_path())];
    if let Some((c, _)) = neighbour.as_mut() {
        readers.push((c, ndir.as_path()));
    }
    let cells = measure_all(args, &files, &sources, readers, &mut daemons, &intr)?;
    drop(neighbour);
    drop(ctr);

    let mut serving = Vec::new();
    if args.containers > 0 {
        let parallel = args.parallel.unwrap_or(4 * ncpus).max(1);
        for (i, &src) in sources.iter().enumerate() {
            let Some(d) = daemons.get(src) else { continue };
            let s = serve_containers(d, &exe, &cg, args, parallel, rss_at_start[i], &intr)?;
            serving.push(s);
        }
    }

    env.load.1 = load_average();
    let report = Report {
        env,
        sources: sources.clone(),
        cells,
        serving,
    };
    if let Some(path) = &args.raw {
        fs::write(path, report.raw_tsv())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    print!("{}", report.markdown());
    Ok(())
}

/// The 1-minute load average (the machine's noise, for the report).
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

/// What the container sees, as a check that the daemons virtualize for it: MemTotal and
/// the online CPUs, per source.
fn container_view(
    ctr: &mut Container,
    cdir: &Path,
    sources: &[Source],
    files: &[&VFile],
    intr: &Interrupt,
) -> Result<Vec<(Source, String)>> {
    let mut view = Vec::new();
    for &src in sources {
        let mut parts = Vec::new();
        for f in files {
            if f.key != "meminfo" && f.key != "cpu-online" {
                continue;
            }
            let path = cdir.join(src.key()).join(f.key);
            let (lines, code) = ctr.request(
                &["cat".to_string(), path.display().to_string()],
                Duration::from_secs(30),
                intr,
            )?;
            if code != 0 {
                parts.push(format!("{} unreadable", f.key));
                continue;
            }
            if f.key == "meminfo" {
                let total = lines
                    .iter()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .map_or("?".to_string(), |v| v.trim().to_string());
                parts.push(format!("MemTotal {total}"));
            } else {
                let online = lines.first().map_or("", |l| l.trim());
                parts.push(format!("cpu online {online}"));
            }
        }
        view.push((src, parts.join(", ")));
    }
    Ok(view)
}

/// A container that reads, and the directory its agent bound the files under.
type Reader<'a> = (&'a mut Container, &'a Path);

fn measure_all(
    args: &CompareArgs,
    files: &[&'static VFile],
    sources: &[Source],
    mut ctrs: Vec<Reader<'_>>,
    daemons: &mut Daemons,
    intr: &Interrupt,
) -> Result<Vec<Cell>> {
    let mut cells = Vec::new();
    let mut plans: Vec<(usize, bool)> = args.readers.iter().map(|&r| (r, false)).collect();
    if ctrs.len() > 1 {
        plans.push((1, true));
    }
    for f in files {
        for &(readers, pair) in &plans {
            let (mut cell, n) = if pair {
                (Cell::pair(f.key, readers), 2)
            } else {
                (Cell::new(f.key, readers), 1)
            };
            for _rep in 0..args.reps {
                for &src in sources {
                    intr.check()?;
                    let cpu_before = match daemons.get(src) {
                        Some(d) => Some(d.cpu_ticks().with_context(|| d.health())?),
                        None => None,
                    };
                    let m = read_at_once(args, f, src, readers, &mut ctrs[..n], intr)?;
                    let cpu_ticks = match (daemons.get(src), cpu_before) {
                        (Some(d), Some(before)) => {
                            Some(d.cpu_ticks().with_context(|| d.health())? - before)
                        }
                        _ => None,
                    };
                    if let Some(e) = &m.error {
                        eprintln!("lxcfs-bench: {} via {}: {e}", f.key, src.label());
                        if let Some(d) = daemons.get(src) {
                            if !d.alive() {
                                bail!("{}", d.health());
                            }
                        }
                    }
                    cell.runs[src.index()].push(Run { m, cpu_ticks });
                }
            }
            eprintln!("  {}", cell.progress(sources));
            cells.push(cell);
        }
    }
    Ok(cells)
}

/// One run of `readers` threads on file `f` of `src` in each container, all at once.
fn read_at_once(
    args: &CompareArgs,
    f: &VFile,
    src: Source,
    readers: usize,
    ctrs: &mut [Reader<'_>],
    intr: &Interrupt,
) -> Result<Measurement> {
    let timeout = Duration::from_secs_f64(args.seconds * 2.0 + args.warmup_ms as f64 / 1e3 + 60.0);
    for (ctr, dir) in ctrs.iter_mut() {
        let path = dir.join(src.key()).join(f.key);
        let words: Vec<String> = vec![
            "read".into(),
            "--file".into(),
            path.display().to_string(),
            "--seconds".into(),
            args.seconds.to_string(),
            "--threads".into(),
            readers.to_string(),
            "--warmup-ms".into(),
            args.warmup_ms.to_string(),
            "--pause-us".into(),
            args.pause_us.to_string(),
        ];
        ctr.send(&words)?;
    }
    let mut all: Option<Measurement> = None;
    for (ctr, _) in ctrs.iter_mut() {
        let (lines, code) = ctr
            .answer(timeout, intr)
            .with_context(|| format!("reading {} of {} in the container", f.key, src.label()))?;
        let row = lines
            .iter()
            .find(|l| !l.starts_with("file\t"))
            .with_context(|| format!("no result for {} of {} (exit {code})", f.key, src.label()))?;
        let m = Measurement::from_tsv(row)?;
        all = Some(match all {
            Some(a) => Measurement::together(&a, &m),
            None => m,
        });
    }
    all.context("no container to read in")
}

/// Rounds of `args.containers` short-lived containers reading this daemon's meminfo and
/// stat once each; RSS and CPU after each round.
fn serve_containers(
    d: &mut Daemon,
    exe: &Path,
    cg: &Cgroup,
    args: &CompareArgs,
    parallel: usize,
    rss_at_start: u64,
    intr: &Interrupt,
) -> Result<Serving> {
    let mut s = Serving {
        daemon: d.name,
        rss_at_start,
        rss_before: d.rss_kib().with_context(|| d.health())?,
        rounds: Vec::new(),
        died: None,
    };
    let files = format!(
        "{},{}",
        d.mnt.join("proc/meminfo").display(),
        d.mnt.join("proc/stat").display()
    );
    for _ in 0..args.container_rounds {
        let cpu_before = d.cpu_ticks().with_context(|| d.health())?;
        let mut cmd = cg.command(exe);
        cmd.args(["spawn", "--count"])
            .arg(args.containers.to_string())
            .arg("--parallel")
            .arg(parallel.to_string())
            .arg("--file")
            .arg(&files);
        let out = run_in_cgroup(cmd, Duration::from_secs(600), intr)?;
        if !d.alive() {
            s.died = Some(d.health());
            eprintln!("lxcfs-bench: {} died serving containers", d.name);
            break;
        }
        let f: Vec<&str> = out.trim().split('\t').collect();
        let (Some(failures), Some(seconds)) = (
            f.get(1).and_then(|v| v.parse().ok()),
            f.get(2).and_then(|v| v.parse().ok()),
        ) else {
            bail!("unexpected output from spawn: {out:?}");
        };
        let round = Round {
            containers: args.containers,
            failures,
            seconds,
            cpu_ticks: d.cpu_ticks().with_context(|| d.health())? - cpu_before,
            rss_after: d.rss_kib().with_context(|| d.health())?,
        };
        eprintln!(
            "  {}: {} containers in {:.1} s ({} failed), RSS {} KiB",
            d.name, round.containers, round.seconds, round.failures, round.rss_after
        );
        s.rounds.push(round);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn file_selection() {
        assert_eq!(select_files(&[]).unwrap().len(), FILES.len());
        let sel = select_files(&["stat".into(), "cpu-online".into()]).unwrap();
        assert_eq!(sel[0].kernel, "/proc/stat");
        assert_eq!(sel[1].rel, "sys/devices/system/cpu/online");
        assert!(select_files(&["nope".into()]).is_err());
    }
}
