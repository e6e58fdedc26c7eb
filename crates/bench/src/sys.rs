//! What the orchestrator owns on the host, each undone on drop (errors and Ctrl-C
//! included): the work directory, the mounted daemons, the cgroup. Plus small readers of
//! `/proc` and `/sys`.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use procfile::CpuSet;
use rustix::mount::{UnmountFlags, unmount};
use rustix::process::Signal;
use testkit::cgroup::{Group, Layout, Limit, root_cpus};
pub use testkit::proc::{children, cpu_ticks, reaped_children_ticks, rss_kib, ticks_to_ms};

/// Set by SIGINT, SIGTERM and SIGHUP; long waits poll it and give up, and the guards clean
/// up as the error unwinds. A second SIGINT exits at once (no cleanup).
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn install() -> Result<Interrupt> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let flag = Arc::new(AtomicBool::new(false));
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(SIGINT, 130, Arc::clone(&flag))
            .context("cannot install a SIGINT handler")?;
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal_hook::flag::register(sig, Arc::clone(&flag))
                .with_context(|| format!("cannot install a handler for signal {sig}"))?;
        }
        Ok(Interrupt(flag))
    }

    /// A flag nothing sets (for tests and internal commands).
    #[cfg(test)]
    pub fn never() -> Interrupt {
        Interrupt(Arc::new(AtomicBool::new(false)))
    }

    pub fn check(&self) -> Result<()> {
        if self.0.load(Ordering::Relaxed) {
            bail!("interrupted; cleaning up");
        }
        Ok(())
    }
}

/// Poll `f` every few ms until it returns `Some`, the deadline passes, or an interrupt.
pub fn poll<T>(
    intr: &Interrupt,
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        intr.check()?;
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Send `sig` if `pid` is still there (a process that is gone needs no signal).
pub fn signal(pid: u32, sig: Signal) {
    let _ = testkit::proc::signal(pid, sig);
}

/// Wait for a child for at most `timeout`; kill it (SIGKILL) if it is still there.
pub fn reap(child: &mut Child, timeout: Duration) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        match child.try_wait() {
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Ok(Some(_)) | Err(_) => return,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------------------
// The work directory

/// `$TMPDIR/lxcfs-bench.<pid>`: mountpoints, pidfiles and logs. On drop only what was made
/// here is removed, entry by entry (never recursively: a mount could still be there).
pub struct Workdir {
    pub path: PathBuf,
}

pub const WORK_DIRS: [&str; 4] = ["lxcfs-rs", "lxcfs", "container", "neighbour"];

impl Workdir {
    pub fn create() -> Result<Workdir> {
        let path = std::env::temp_dir().join(format!("lxcfs-bench.{}", std::process::id()));
        fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let path = fs::canonicalize(&path)?;
        let w = Workdir { path };
        for d in WORK_DIRS {
            fs::create_dir(w.path.join(d))
                .with_context(|| format!("cannot create {}", w.path.join(d).display()))?;
        }
        Ok(w)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let Ok(entries) = fs::read_dir(&self.path) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            let r = if is_dir {
                fs::remove_dir(&p)
            } else {
                fs::remove_file(&p)
            };
            if let Err(err) = r {
                eprintln!("lxcfs-bench: cannot remove {}: {err}", p.display());
            }
        }
        if let Err(err) = fs::remove_dir(&self.path) {
            eprintln!("lxcfs-bench: cannot remove {}: {err}", self.path.display());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Mounts

pub fn fuse_mounted_at(path: &Path) -> bool {
    testkit::mounts::is_mounted(path)
}

// ---------------------------------------------------------------------------------------
// Daemons

/// A FUSE daemon (lxcfs-rs or LXCFS) we started in the foreground on our mountpoint.
pub struct Daemon {
    pub name: &'static str,
    child: Child,
    pub mnt: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// Run `exe <lead> -p <pidfile> <args> <mnt>` and wait until it serves
    /// `proc/meminfo` (`lead`: a subcommand, for the floor server).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        name: &'static str,
        exe: &Path,
        lead: &[&str],
        args: &[String],
        work: &Workdir,
        dir: &str,
        intr: &Interrupt,
    ) -> Result<Daemon> {
        let mnt = work.join(dir);
        let log = work.join(&format!("{dir}.log"));
        let logf =
            fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(exe)
            .args(lead)
            .arg("-p")
            .arg(work.join(&format!("{dir}.pid")))
            .args(args)
            .arg(&mnt)
            .env_remove("RUST_LOG")
            // Plain logs: they are quoted in error messages.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            // Its own process group: Ctrl-C reaches us, and we stop it in order.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let mut d = Daemon {
            name,
            child,
            mnt,
            log,
        };
        let meminfo = d.mnt.join("proc/meminfo");
        let ready = poll(intr, Duration::from_secs(30), "the mount", || {
            if let Some(st) = d.child.try_wait()? {
                bail!("exited ({st}) before mounting");
            }
            let mut s = String::new();
            Ok((fuse_mounted_at(&d.mnt)
                && fs::File::open(&meminfo)
                    .and_then(|mut f| f.read_to_string(&mut s))
                    .is_ok()
                && s.contains("MemTotal"))
            .then_some(()))
        });
        if let Err(e) = ready {
            bail!(
                "{name} ({}) did not mount {}: {e:#}\n--- its log ---\n{}",
                exe.display(),
                d.mnt.display(),
                d.log_tail(20)
            );
        }
        Ok(d)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Context for an error met while this daemon served: has it died?
    pub fn health(&mut self) -> String {
        if self.alive() {
            format!("{} is still running", self.name)
        } else {
            format!("{} died; its log:\n{}", self.name, self.log_tail(20))
        }
    }

    /// utime + stime of the daemon in clock ticks: the process and its children (an
    /// lxcfs-rs supervisor serves nothing itself; its worker processes do), live ones
    /// counted directly, exited ones through the process's cutime + cstime.
    pub fn cpu_ticks(&self) -> Result<u64> {
        let mut t = cpu_ticks(self.pid())? + reaped_children_ticks(self.pid())?;
        for c in children(self.pid()) {
            t += cpu_ticks(c).unwrap_or(0);
        }
        Ok(t)
    }

    /// VmRSS of the daemon: the process and its live children.
    pub fn rss_kib(&self) -> Result<u64> {
        let mut r = rss_kib(self.pid())?;
        for c in children(self.pid()) {
            r += rss_kib(c).unwrap_or(0);
        }
        Ok(r)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.alive() {
            signal(self.pid(), Signal::TERM);
            reap(&mut self.child, Duration::from_secs(10));
        }
        // A killed daemon leaves a dead mount behind.
        for _ in 0..4 {
            if !fuse_mounted_at(&self.mnt) {
                break;
            }
            if let Err(e) = unmount(&self.mnt, UnmountFlags::DETACH) {
                eprintln!("lxcfs-bench: umount -l {}: {e}", self.mnt.display());
                break;
            }
        }
    }
}

/// `--version` of a binary, first non-empty line of stdout or stderr.
pub fn version_of(exe: &Path) -> String {
    Command::new(exe)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            text.lines()
                .map(|l| l.trim().trim_matches('"'))
                .find(|l| !l.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown version".to_string())
}

// ---------------------------------------------------------------------------------------
// cgroups (the host's layout: v1, hybrid or pure v2)

/// A group at the root of the host's hierarchies; on drop its processes (all ours) are
/// killed and the directories removed.
pub struct Cgroup(Group);

impl Cgroup {
    /// Whether this host's cgroups can hold the benchmark's containers.
    pub fn check() -> Result<()> {
        Layout::host()
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("the benchmark cannot make cgroups here: {e}"))
    }

    pub fn create(name: &str, memory_limit: u64, cpus: &str) -> Result<Cgroup> {
        let limits = [Limit::Memory(memory_limit), Limit::cpus(cpus)];
        Ok(Cgroup(Group::create(name, &limits)?))
    }

    /// A group that only holds others (as a Kubernetes QoS class or pod does): no limit
    /// of its own, the parent's CPUs.
    pub fn parent(name: &str) -> Result<Cgroup> {
        Ok(Cgroup(Group::create(name, &[])?))
    }

    pub fn name(&self) -> &str {
        &self.0.rel
    }

    /// The `cgroup.procs` files a process writes itself into to join the group.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.0.procs_files()
    }

    /// `sh` that joins this group, then execs `program args`, in its own process group.
    pub fn command(&self, program: &Path) -> Command {
        let procs: Vec<String> = self
            .procs_files()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(
                "for f in $LXCFS_BENCH_PROCS; do echo $$ > \"$f\" || exit 98; done\n\
                 unset LXCFS_BENCH_PROCS\nexec \"$@\"",
            )
            .arg("lxcfs-bench-cgroup")
            .arg(program)
            .env("LXCFS_BENCH_PROCS", procs.join(" "))
            .process_group(0);
        cmd
    }
}

// ---------------------------------------------------------------------------------------
// CPU lists

pub fn parse_cpu_list(s: &str) -> Result<CpuSet> {
    CpuSet::parse(s).with_context(|| format!("bad CPU list {s:?}"))
}

pub fn format_cpu_list(cpus: &CpuSet) -> String {
    let mut out = Vec::new();
    procfile::render::cpu_list(cpus, &mut out);
    String::from_utf8_lossy(&out).trim().to_string()
}

/// The container's default cpuset: the host's CPUs but the first (when there are two or
/// more), so that the virtual CPU files differ from the host's and the daemons must filter
/// and renumber.
pub fn default_container_cpus() -> Result<String> {
    let host = root_cpus().context("cannot read the root cpuset")?;
    let mut rest = CpuSet::default();
    for c in host.iter().skip(1) {
        rest.insert(c);
    }
    Ok(match (host.iter().next(), rest.is_empty()) {
        (None, _) => bail!("the root cpuset has no CPUs"),
        (Some(only), true) => only.to_string(),
        (Some(_), false) => format_cpu_list(&rest),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cpu_lists() {
        let set = parse_cpu_list("0-2,4,6-7\n").unwrap();
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 1, 2, 4, 6, 7]);
        assert_eq!(format_cpu_list(&set), "0-2,4,6-7");
        assert_eq!(format_cpu_list(&parse_cpu_list("1").unwrap()), "1");
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }

    #[test]
    fn poll_times_out() {
        let r: Result<()> = poll(&Interrupt::never(), Duration::from_millis(10), "x", || {
            Ok(None)
        });
        assert!(r.is_err());
    }
}
