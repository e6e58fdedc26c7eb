//! Real cgroups for tests and the benchmark, on a v1 (or hybrid) host and on a pure v2
//! host alike: a group is named once, its limits are said once ([`Limit`]), and this
//! module writes them in the files of whichever layout the host has.
//!
//! Nothing here panics: the benchmark reports errors, and the end-to-end harness turns
//! them into a failed test with the path that failed.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use procfile::CpuSet;
use rustix::process::Signal;

use crate::proc::signal;

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The v1 hierarchies a container is put in. A hybrid host's cgroup2 mount has no
/// controllers, so the daemon reads these, as it does on a v1 host.
pub const V1_CONTROLLERS: [&str; 6] = ["cpu", "cpuacct", "cpuset", "memory", "pids", "blkio"];

/// The v2 controllers enabled for our groups (the v2 names of the same resources).
pub const V2_CONTROLLERS: [&str; 5] = ["cpu", "cpuset", "memory", "pids", "io"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// v1 hierarchies under `/sys/fs/cgroup/<controller>` (v1-only or hybrid hosts).
    V1,
    /// One cgroup2 hierarchy at `/sys/fs/cgroup` with the controllers in it.
    V2,
}

impl Layout {
    /// What this host has, or why neither layout is usable. Decided once per process.
    pub fn host() -> Result<Layout, String> {
        static LAYOUT: OnceLock<Result<Layout, String>> = OnceLock::new();
        LAYOUT.get_or_init(detect).clone()
    }
}

fn detect() -> Result<Layout, String> {
    let root = Path::new(CGROUP_ROOT);
    if root.join("memory/cgroup.procs").exists() {
        for c in V1_CONTROLLERS {
            let procs = root.join(c).join("cgroup.procs");
            if !procs.exists() {
                return Err(format!(
                    "a v1 memory hierarchy but no {c} hierarchy ({} is missing)",
                    procs.display()
                ));
            }
        }
        return Ok(Layout::V1);
    }
    let available = fs::read_to_string(root.join("cgroup.controllers"))
        .map_err(|e| format!("neither v1 hierarchies nor a cgroup2 root at {CGROUP_ROOT} ({e})"))?;
    let missing: Vec<&str> = V2_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| !available.split_whitespace().any(|a| a == *c))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the cgroup2 root lacks the controllers {} (it has: {})",
            missing.join(", "),
            available.trim()
        ));
    }
    Ok(Layout::V2)
}

/// A limit, as a runtime would set it, whatever the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    /// `memory.limit_in_bytes` / `memory.max`.
    Memory(u64),
    /// `cpuset.cpus` (a CPU list such as `0-1`).
    Cpus(String),
    /// CFS bandwidth: `cpu.cfs_quota_us` + `cpu.cfs_period_us` / `cpu.max`.
    Quota { quota_us: u64, period_us: u64 },
    /// `cpu.shares`; on v2 the kernel's own conversion to `cpu.weight`.
    Shares(u64),
    /// Write throttle on a block device `major:minor`, bytes per second.
    WriteBps { device: String, bps: u64 },
}

impl Limit {
    pub fn cpus(list: &str) -> Limit {
        Limit::Cpus(list.to_string())
    }

    /// The (controller, file, value) writes that set this limit in `layout`.
    pub fn writes(&self, layout: Layout) -> Vec<(&'static str, &'static str, String)> {
        match (self, layout) {
            (Limit::Memory(b), Layout::V1) => {
                vec![("memory", "memory.limit_in_bytes", b.to_string())]
            }
            (Limit::Memory(b), Layout::V2) => vec![("memory", "memory.max", b.to_string())],
            (Limit::Cpus(l), _) => vec![("cpuset", "cpuset.cpus", l.clone())],
            (
                Limit::Quota {
                    quota_us,
                    period_us,
                },
                Layout::V1,
            ) => vec![
                ("cpu", "cpu.cfs_period_us", period_us.to_string()),
                ("cpu", "cpu.cfs_quota_us", quota_us.to_string()),
            ],
            (
                Limit::Quota {
                    quota_us,
                    period_us,
                },
                Layout::V2,
            ) => {
                vec![("cpu", "cpu.max", format!("{quota_us} {period_us}"))]
            }
            (Limit::Shares(s), Layout::V1) => vec![("cpu", "cpu.shares", s.to_string())],
            (Limit::Shares(s), Layout::V2) => {
                vec![("cpu", "cpu.weight", shares_to_weight(*s).to_string())]
            }
            (Limit::WriteBps { device, bps }, Layout::V1) => vec![(
                "blkio",
                "blkio.throttle.write_bps_device",
                format!("{device} {bps}"),
            )],
            (Limit::WriteBps { device, bps }, Layout::V2) => {
                vec![("io", "io.max", format!("{device} wbps={bps}"))]
            }
        }
    }
}

/// The mapping runc and systemd use between v1 shares [2, 262144] and v2 weights
/// [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + (s - 2) * 9999 / 262_142
}

/// A group at the same relative path in every hierarchy the layout has; its processes
/// are killed and its directories removed on drop (children must be dropped first).
#[derive(Debug)]
pub struct Group {
    /// Path below the hierarchy root, without a leading `/`.
    pub rel: String,
    pub layout: Layout,
    /// One directory per hierarchy (co-mounted v1 controllers share one), created by us.
    dirs: Vec<PathBuf>,
}

impl Group {
    /// A new group at `rel` (its parent must exist), with `limits` written in order.
    pub fn create(rel: &str, limits: &[Limit]) -> io::Result<Group> {
        let layout = Layout::host().map_err(io::Error::other)?;
        let mut g = Group {
            rel: rel.trim_start_matches('/').to_string(),
            layout,
            dirs: Vec::new(),
        };
        match layout {
            Layout::V1 => {
                for c in V1_CONTROLLERS {
                    // Co-mounted hierarchies (cpu,cpuacct) are one directory: create it once.
                    let hierarchy = Path::new(CGROUP_ROOT).join(c);
                    let dir = fs::canonicalize(&hierarchy)
                        .map_err(|e| annotate(e, &hierarchy))?
                        .join(&g.rel);
                    if !g.dirs.contains(&dir) {
                        fs::create_dir(&dir).map_err(|e| annotate(e, &dir))?;
                        g.dirs.push(dir);
                    }
                }
                // A new v1 cpuset has no CPUs and no memory nodes: copy the parent's.
                let parent = g
                    .dir("cpuset")
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let v = fs::read_to_string(parent.join(f))
                        .map_err(|e| annotate(e, &parent.join(f)))?;
                    g.write("cpuset", f, v.trim())?;
                }
            }
            Layout::V2 => {
                let dir = g.dir("");
                enable_controllers(dir.parent().unwrap_or(Path::new(CGROUP_ROOT)))?;
                fs::create_dir(&dir).map_err(|e| annotate(e, &dir))?;
                g.dirs.push(dir);
            }
        }
        for l in limits {
            g.set(l)?;
        }
        Ok(g)
    }

    /// A group below this one.
    pub fn child(&self, name: &str, limits: &[Limit]) -> io::Result<Group> {
        Group::create(&format!("{}/{name}", self.rel), limits)
    }

    pub fn set(&self, limit: &Limit) -> io::Result<()> {
        for (c, f, v) in limit.writes(self.layout) {
            self.write(c, f, &v)?;
        }
        Ok(())
    }

    /// The directory holding `controller`'s files (on v2, the one directory).
    pub fn dir(&self, controller: &str) -> PathBuf {
        match self.layout {
            Layout::V1 => Path::new(CGROUP_ROOT).join(controller).join(&self.rel),
            Layout::V2 => Path::new(CGROUP_ROOT).join(&self.rel),
        }
    }

    pub fn write(&self, controller: &str, file: &str, value: &str) -> io::Result<()> {
        let p = self.dir(controller).join(file);
        fs::write(&p, value).map_err(|e| {
            io::Error::new(e.kind(), format!("write {value:?} to {}: {e}", p.display()))
        })
    }

    pub fn read(&self, controller: &str, file: &str) -> io::Result<String> {
        let p = self.dir(controller).join(file);
        fs::read_to_string(&p).map_err(|e| annotate(e, &p))
    }

    /// The `cgroup.procs` files a process writes itself into to join the group.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Every process in the group, across hierarchies.
    pub fn pids(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self
            .procs_files()
            .iter()
            .filter_map(|p| fs::read_to_string(p).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// CPU time the group's tasks used, in ns (`cpuacct.usage` / `cpu.stat` usage_usec).
    pub fn cpu_usage_ns(&self) -> io::Result<u64> {
        let bad = |what: &str| io::Error::new(ErrorKind::InvalidData, what.to_string());
        match self.layout {
            Layout::V1 => self
                .read("cpuacct", "cpuacct.usage")?
                .trim()
                .parse()
                .map_err(|_| bad("cpuacct.usage is not a number")),
            Layout::V2 => self
                .read("cpu", "cpu.stat")?
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|us| us * 1000)
                .ok_or_else(|| bad("no usage_usec in cpu.stat")),
        }
    }
}

/// The CPUs of the root cpuset: every CPU a group may be given.
pub fn root_cpus() -> io::Result<CpuSet> {
    let layout = Layout::host().map_err(io::Error::other)?;
    let file = match layout {
        Layout::V1 => Path::new(CGROUP_ROOT).join("cpuset/cpuset.cpus"),
        Layout::V2 => Path::new(CGROUP_ROOT).join("cpuset.cpus.effective"),
    };
    let text = fs::read_to_string(&file).map_err(|e| annotate(e, &file))?;
    CpuSet::parse(&text).ok_or_else(|| {
        io::Error::new(
            ErrorKind::InvalidData,
            format!("{}: not a CPU list: {text:?}", file.display()),
        )
    })
}

/// Let children of `dir` use our controllers (v2 hands controllers down explicitly).
fn enable_controllers(dir: &Path) -> io::Result<()> {
    let file = dir.join("cgroup.subtree_control");
    let have = fs::read_to_string(&file).map_err(|e| annotate(e, &file))?;
    let want: Vec<String> = V2_CONTROLLERS
        .iter()
        .filter(|c| !have.split_whitespace().any(|h| h == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if want.is_empty() {
        return Ok(());
    }
    fs::write(&file, want.join(" ")).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "enable {} in {} ({e}; a v2 group with processes cannot hand controllers down)",
                want.join(" "),
                file.display()
            ),
        )
    })
}

fn annotate(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Drop for Group {
    fn drop(&mut self) {
        let start = Instant::now();
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                let _ = signal(p, Signal::KILL);
            }
            if start.elapsed() > Duration::from_secs(10) {
                eprintln!("cgroup {}: processes survive SIGKILL", self.rel);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for dir in &self.dirs {
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == ErrorKind::NotFound => break,
                    Err(e) if start.elapsed() > Duration::from_secs(10) => {
                        eprintln!("rmdir {}: {e}", dir.display());
                        break;
                    }
                    // Exiting tasks leave the group a moment after they vanish from procs.
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_has_its_files_in_both_layouts() {
        let q = Limit::Quota {
            quota_us: 50_000,
            period_us: 100_000,
        };
        assert_eq!(
            q.writes(Layout::V2),
            [("cpu", "cpu.max", "50000 100000".to_string())]
        );
        // The period first: v1 refuses a quota below the current period's minimum.
        assert_eq!(q.writes(Layout::V1)[0].1, "cpu.cfs_period_us");
        assert_eq!(
            Limit::Memory(1 << 28).writes(Layout::V2),
            [("memory", "memory.max", "268435456".to_string())]
        );
        let w = Limit::WriteBps {
            device: "7:0".into(),
            bps: 1024,
        };
        assert_eq!(w.writes(Layout::V2)[0].2, "7:0 wbps=1024");
        assert_eq!(w.writes(Layout::V1)[0].2, "7:0 1024");
    }

    #[test]
    fn shares_map_to_weights_as_runtimes_do() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 1);
    }
}
