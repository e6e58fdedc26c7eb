//! The command line: LXCFS's flags, so existing systemd units and manifests keep working,
//! plus our own.

use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};
use connection::ServeOptions;
use hostview::ResolverKind;

#[derive(Debug, Parser)]
#[command(
    name = "lxcfs-rs",
    version,
    disable_version_flag = true,
    about = "Serve containers a /proc and /sys/devices/system/cpu that reflect their own cgroup limits",
    long_about = "Mounts a FUSE filesystem (LXCFS's layout: proc/meminfo, proc/swaps, proc/cpuinfo, \
proc/stat, proc/uptime, proc/loadavg, proc/diskstats, proc/pressure/{cpu,memory,io}, proc/slabinfo, proc/vmstat, \
sys/devices/system/cpu) whose content depends on who reads it: a reader is identified by its pid namespace, and the values come from the \
cgroup of that namespace's init (cgroup v1, v2 and hybrid hosts). Runtimes bind-mount these files \
over a container's /proc files.\n\nRuns in the foreground as root, in the host's pid, mount and \
cgroup namespaces. The process started (the pidfile's) keeps the mount and its FUSE connection and \
runs a worker process that serves it: a worker that crashes is replaced within a second without \
the containers noticing. SIGTERM or SIGINT unmounts and exits; SIGUSR1 replaces the worker with \
the binary now on disk (live upgrade); SIGUSR2 toggles serving the host's own files to everyone.",
    after_help = "Example: lxcfs-rs /var/lib/lxcfs\n\
Docker:  docker run -v /var/lib/lxcfs/proc/meminfo:/proc/meminfo:ro … (see README)\n\
Check:   lxcfs-rs check [MOUNTPOINT] [--pid PID] [--json] reports what this host offers and who \
serves MOUNTPOINT (lxcfs-rs check --help)"
)]
pub struct Cli {
    /// Where to mount (LXCFS's usual place is /var/lib/lxcfs). Must exist and be a directory.
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,

    /// Accepted for LXCFS compatibility: lxcfs-rs always stays in the foreground.
    #[arg(short = 'f', long)]
    pub foreground: bool,

    /// Log every request at debug level.
    #[arg(short = 'd', long)]
    pub debug: bool,

    /// Accepted for LXCFS compatibility: per-container /proc/loadavg is on by default
    /// (its sampler costs about 0.5 % of one core with 1000 containers).
    #[arg(short = 'l', long = "enable-loadavg")]
    pub enable_loadavg: bool,

    /// Serve the host's /proc/loadavg and run no load sampler.
    #[arg(long = "disable-loadavg", conflicts_with = "enable_loadavg")]
    pub disable_loadavg: bool,

    /// Report no swap in meminfo and swaps.
    #[arg(short = 'u', long = "disable-swap")]
    pub disable_swap: bool,

    /// Limit the CPU count by the CFS quota as well as the cpuset, renumbering CPUs
    /// 0..n-1 in every CPU file, with /proc/stat's idle what the quota left unused
    /// (default: the cpuset alone, with host CPU ids, idle their unused time).
    #[arg(long = "enable-cfs")]
    pub enable_cfs: bool,

    /// Limit the CPU count by the container's cpu shares too: ⌈shares / 1024⌉ CPUs (v2:
    /// cpu.weight mapped back to shares), renumbered 0..n-1 in every CPU file. For
    /// Kubernetes pods with a CPU request and no limit; off by default because a
    /// request is a floor, not a ceiling, and a container with the default 1024 shares
    /// (v2: weight 100, about 2.5 CPUs) is counted as asking for that.
    #[arg(long = "enable-cpu-shares")]
    pub enable_cpu_shares: bool,

    /// Serve the host's /proc/uptime instead of the container's age. ps (ELAPSED, %CPU)
    /// and pgrep --older compute process ages from uptime and the start times in
    /// /proc/<pid>/stat, which count from the host's boot: with the container's age they
    /// come out wrong. Costs `uptime` and `top` showing the host's uptime.
    #[arg(long = "host-uptime")]
    pub host_uptime: bool,

    /// Serve cgroup/ beside proc/: every cgroup hierarchy of the host (cgroup/memory,
    /// cgroup/cpu,cpuacct, …, cgroup/unified; on a pure v2 host cgroup/ is the v2
    /// hierarchy), each rooted at the reader's container's cgroup, for containers
    /// without a cgroup namespace to bind over /sys/fs/cgroup. Read-only: writes fail
    /// with EROFS (EACCES with --enable-psi-poll, whose mount takes writes).
    #[arg(long = "enable-cgroup")]
    pub enable_cgroup: bool,

    /// Let programs write PSI triggers (`some 150000 1000000`) to an open
    /// proc/pressure/{cpu,memory,io} and poll(2) it for POLLPRI, each trigger registered
    /// on the reader's container's own cgroup pressure file (cgroup v2, or the unified
    /// hierarchy of a hybrid host). Mounts the filesystem writable (writes to anything
    /// else still fail with EACCES). Takes effect on a new mount: a mount adopted from
    /// a previous daemon keeps its read-only flag.
    #[arg(long = "enable-psi-poll")]
    pub enable_psi_poll: bool,

    /// Accepted for LXCFS compatibility: lxcfs-rs validates its per-container cache
    /// through /proc whatever this says.
    #[arg(long = "enable-pidfd")]
    pub enable_pidfd: bool,

    /// Write our pid here, locked so that two daemons cannot share it; removed on exit.
    /// Default: RUNTIME_DIR/lxcfs-rs.pid.
    #[arg(short = 'p', long = "pidfile", value_name = "FILE")]
    pub pidfile: Option<PathBuf>,

    /// Directory for the default pidfile and metrics socket.
    #[arg(long = "runtime-dir", value_name = "DIR", default_value = "/run")]
    pub runtime_dir: PathBuf,

    /// The unix socket (root only) serving Prometheus metrics (`GET /metrics`),
    /// `/healthz` and `/readyz` over HTTP; `lxcfs-rs status` reads it. Default: the
    /// pidfile's path with `.sock` for `.pid` (/run/lxcfs-rs.sock).
    #[arg(long = "metrics-socket", value_name = "PATH")]
    pub metrics_socket: Option<PathBuf>,

    /// Also serve /metrics, /healthz and /readyz over HTTP on this TCP address
    /// (e.g. 127.0.0.1:9105). Anyone who can reach it can read the metrics.
    #[arg(long = "metrics-addr", value_name = "ADDR:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,

    /// Log lines as text or as one JSON object each (for log shippers). Colours only
    /// on a terminal and never with NO_COLOR set.
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// FUSE options, comma-separated, as LXCFS takes them. lxcfs-rs sets the options its
    /// semantics need (allow_other, direct_io, read-only, timeouts) itself and says which
    /// given ones it ignores.
    #[arg(short = 'o', value_name = "OPTS")]
    pub options: Option<String>,

    /// Accepted for LXCFS compatibility (it once meant single-threaded); ignored.
    #[arg(short = 's')]
    pub single_threaded: bool,

    /// Answer a reader that opens, reads and closes a file again and again with the
    /// kernel's FUSE passthrough (Linux 6.9+): the kernel reads its rendering from a
    /// backing memfd itself, 1.5-3x the reads per second of the default in a tight
    /// loop. But a mapping (mmap) of a served file then maps that memfd, which may hold
    /// another container's rendering: for hosts whose containers trust each other.
    /// Takes effect on a new mount.
    #[arg(long = "fuse-passthrough", conflicts_with = "disable_fuse_passthrough")]
    pub fuse_passthrough: bool,

    /// Serve every read with direct I/O, where mmap of a served file is refused
    /// (ENODEV) on Linux 6.12+. The default; kept for command lines written when
    /// passthrough was.
    #[arg(long = "disable-fuse-passthrough")]
    pub disable_fuse_passthrough: bool,

    /// FUSE event-loop threads (default: CPUs, at least 4, at most 16). With
    /// --fuse-poll-us above 0 one of them reads requests at a time; the others serve
    /// the slow ones (renderings, new containers) alongside it. With 1, sendfile and
    /// splice of a served file fall back to read (EINVAL).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// After each request, one FUSE thread polls for the next for this many
    /// microseconds before it sleeps, and it is the only thread waiting on the FUSE
    /// device (the others take over before any request that reads host files). The
    /// requests of a burst (an open and its release, a tool reading several files) then
    /// wake no thread, which on virtual machines is most of a read's cost. After a
    /// release the poll shrinks to nothing while requests come further apart. Whether
    /// this pays is measured: every quarter second the daemon's CPU time per request is
    /// compared with that of every thread waiting on the device (cheaper when many
    /// containers each poll once a second), and the cheaper is kept. 0: every thread
    /// waits on the device, always.
    #[arg(long = "fuse-poll-us", value_name = "US", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub fuse_poll_us: u64,

    /// MiB of the daemon's memory that the open files of one container may hold. Each
    /// open is charged its rendering's size plus 256 bytes until it is closed (an upper
    /// bound: opens within 100 ms share one rendering), so 20 000 held opens of meminfo
    /// are charged about 35 MiB. Past the limit that container's opens fail with EMFILE
    /// ("Too many open files") and the daemon says so, rate limited; other containers
    /// are not affected. A container is its outermost pid namespace: the namespaces its
    /// processes make inside it share its limit.
    #[arg(long = "max-open-mib", value_name = "MIB", default_value_t = connection::args::DEFAULT_MAX_OPEN_MIB,
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub max_open_mib: u64,

    /// How to find a reader's pid-namespace init: the NS_GET_TGID_FROM_PIDNS ioctl
    /// (Linux 6.11+), a /proc walk, or auto (the ioctl when the kernel has it).
    #[arg(long = "init-resolver", value_enum, default_value_t = Resolver::Auto, hide = true)]
    pub init_resolver: Resolver,

    /// Read the host from this directory instead of / (captured trees in tests).
    #[arg(
        long = "host-root",
        value_name = "DIR",
        default_value = "/",
        hide = true
    )]
    pub host_root: PathBuf,

    /// Run even when not in the host's pid/cgroup/mount namespaces (nested setups:
    /// readers must then live in pid namespaces below ours).
    #[arg(long = "skip-namespace-check")]
    pub skip_namespace_check: bool,

    /// On SIGTERM or SIGINT, exit without unmounting: the worker keeps serving, as
    /// after a crash of this process, and the next lxcfs-rs started on MOUNTPOINT adopts
    /// it. The packaged systemd unit uses it so that `systemctl restart` and `stop` then
    /// `start` never break containers' files. To stop serving, `umount MOUNTPOINT` after
    /// the exit: the worker ends when the last bind mount of it is gone.
    #[arg(long = "keep-serving-on-exit")]
    pub keep_serving_on_exit: bool,

    /// Rebind the files of the live lxcfs-rs at MOUNTPOINT inside every running
    /// container whose binds of it are dead (after the daemon and its worker both died
    /// and lxcfs-rs was started again), then exit.
    #[arg(long)]
    pub remount: bool,

    /// Print the version.
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Resolver {
    Auto,
    Ioctl,
    Procfs,
}

impl Resolver {
    fn kind(self) -> ResolverKind {
        match self {
            Resolver::Auto => ResolverKind::Auto,
            Resolver::Ioctl => ResolverKind::Ioctl,
            Resolver::Procfs => ResolverKind::Procfs,
        }
    }
}

impl Cli {
    pub fn pidfile(&self) -> PathBuf {
        self.pidfile
            .clone()
            .unwrap_or_else(|| self.runtime_dir.join("lxcfs-rs.pid"))
    }

    /// Where the metrics socket is (see `--metrics-socket`).
    pub fn metrics_socket(&self) -> PathBuf {
        if let Some(p) = &self.metrics_socket {
            return p.clone();
        }
        let pid = self.pidfile();
        match pid.extension() {
            Some(e) if e == "pid" => pid.with_extension("sock"),
            _ => {
                let mut s = pid.into_os_string();
                s.push(".sock");
                PathBuf::from(s)
            }
        }
    }

    /// The options its workers serve with.
    pub fn serve_options(&self) -> ServeOptions {
        ServeOptions {
            debug: self.debug,
            disable_loadavg: self.disable_loadavg,
            disable_swap: self.disable_swap,
            enable_cfs: self.enable_cfs,
            enable_cpu_shares: self.enable_cpu_shares,
            host_uptime: self.host_uptime,
            enable_cgroup: self.enable_cgroup,
            enable_psi_poll: self.enable_psi_poll,
            threads: self.threads,
            fuse_poll_us: self.fuse_poll_us,
            init_resolver: self.init_resolver.kind(),
            host_root: self.host_root.clone(),
            max_open_mib: self.max_open_mib,
            log_json: self.log_format == LogFormat::Json,
        }
    }

    /// `-o` options split into what we pass to the kernel and what we ignore.
    pub fn fuse_options(&self) -> (Vec<String>, Vec<String>) {
        let mut pass = Vec::new();
        let mut ignored = Vec::new();
        for o in self
            .options
            .iter()
            .flat_map(|s| s.split(','))
            .filter(|o| !o.is_empty())
        {
            // Kernel-level options that do not change our semantics are passed on;
            // everything libfuse-specific or that would conflict with what we set is not.
            let passable = matches!(o, "default_permissions")
                || o.starts_with("max_read=")
                || o.starts_with("blksize=");
            if passable {
                pass.push(o.to_string());
            } else {
                ignored.push(o.to_string());
            }
        }
        (pass, ignored)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lxcfs_command_lines_parse() {
        let c = Cli::try_parse_from([
            "lxcfs-rs",
            "-f",
            "-l",
            "-u",
            "--enable-cfs",
            "--enable-pidfd",
            "-p",
            "/run/x.pid",
            "-o",
            "allow_other,direct_io,default_permissions",
            "-s",
            "/var/lib/lxcfs",
        ])
        .unwrap();
        assert!(c.foreground && c.enable_loadavg && c.disable_swap && c.enable_cfs);
        assert_eq!(c.pidfile(), PathBuf::from("/run/x.pid"));
        let (pass, ignored) = c.fuse_options();
        assert_eq!(pass, ["default_permissions"]);
        assert_eq!(ignored, ["allow_other", "direct_io"]);
        assert_eq!(c.mountpoint, PathBuf::from("/var/lib/lxcfs"));
    }

    #[test]
    fn default_pidfile_is_in_runtime_dir() {
        let c = Cli::try_parse_from(["lxcfs-rs", "--runtime-dir", "/tmp/r", "/mnt"]).unwrap();
        assert_eq!(c.pidfile(), PathBuf::from("/tmp/r/lxcfs-rs.pid"));
        assert_eq!(c.metrics_socket(), PathBuf::from("/tmp/r/lxcfs-rs.sock"));
        let c = Cli::try_parse_from(["lxcfs-rs", "-p", "/x/daemon", "/mnt"]).unwrap();
        assert_eq!(c.metrics_socket(), PathBuf::from("/x/daemon.sock"));
    }

    #[test]
    fn mountpoint_is_required() {
        assert!(Cli::try_parse_from(["lxcfs-rs"]).is_err());
    }
}
