//! A worker's command line: what its supervisor tells it, written by the supervisor
//! ([`WorkerArgs::to_args`]) and read back by the worker and by a supervisor that
//! adopts an orphaned worker from its `/proc/<pid>/cmdline` ([`WorkerArgs::from_args`]).
//!
//! The spelling is a protocol between binaries of different versions (a live upgrade
//! runs the binary now on disk under the running supervisor; a new supervisor adopts
//! the workers of an old one), so `from_args` also reads what earlier versions wrote:
//! the options before `--worker`, `--flag value` and `--flag=value`, and the names
//! `--pt-fds` and `--passthrough-on` (now `--shared-fds` and `--serve-host-files`).

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use hostview::ResolverKind;

/// The first argument that makes the binary a worker.
pub const WORKER_FLAG: &str = "--worker";

/// How to serve: the user's options a worker needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    pub debug: bool,
    pub disable_loadavg: bool,
    pub disable_swap: bool,
    pub enable_cfs: bool,
    /// CPU count bounded by the container's cpu shares too.
    pub enable_cpu_shares: bool,
    /// Serve the host's /proc/uptime (ps and pgrep --older need it).
    pub host_uptime: bool,
    /// Serve the `cgroup/` tree.
    pub enable_cgroup: bool,
    /// PSI triggers and poll on `proc/pressure/*`.
    pub enable_psi_poll: bool,
    /// FUSE threads; `None`: the worker's default for its CPUs.
    pub threads: Option<usize>,
    pub fuse_poll_us: u64,
    pub init_resolver: ResolverKind,
    pub host_root: PathBuf,
    /// MiB the open files of one container may hold in the worker.
    pub max_open_mib: u64,
    /// Log lines as JSON objects (`--log-format json`) rather than text.
    pub log_json: bool,
}

/// The default of [`ServeOptions::max_open_mib`].
pub const DEFAULT_MAX_OPEN_MIB: u64 = 64;

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            debug: false,
            disable_loadavg: false,
            disable_swap: false,
            enable_cfs: false,
            enable_cpu_shares: false,
            host_uptime: false,
            enable_cgroup: false,
            enable_psi_poll: false,
            threads: None,
            fuse_poll_us: 50,
            init_resolver: ResolverKind::Auto,
            host_root: PathBuf::from("/"),
            max_open_mib: DEFAULT_MAX_OPEN_MIB,
            log_json: false,
        }
    }
}

/// Everything a worker is told when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerArgs {
    /// The inherited `/dev/fuse` connection.
    pub fuse_fd: RawFd,
    /// Where the worker writes one byte once it serves.
    pub ready_fd: RawFd,
    /// Which worker of the connection this is (1, 2, …); file handles carry it.
    pub generation: u64,
    /// The connection's INIT was answered by an earlier worker. Current supervisors also
    /// say so in the shared state; earlier ones only here.
    pub initialized: bool,
    /// The connection's shared state (see [`crate::Shared::fds`]); empty from a
    /// supervisor that ran with FUSE passthrough off before the state was always shared.
    pub shared_fds: Vec<RawFd>,
    /// The daemon's counters (see [`crate::Counters`]); `None` from a supervisor that
    /// kept none (the worker then counts into memory of its own that nobody reads).
    pub counters_fd: Option<RawFd>,
    /// The connection's in-flight table (see [`crate::Inflight`]); `None` from a
    /// supervisor that keeps none.
    pub inflight_fd: Option<RawFd>,
    /// Answer the requests dead workers left in the in-flight table: the kernel cannot
    /// resend them (before Linux 6.9).
    pub replay: bool,
    /// Pids of the connection's last workers that crashed (not killed from outside):
    /// a request they held counts against replaying it (see fusefs's `journal`).
    pub crashed: Vec<u32>,
    /// Serve the host's own files to every reader (the SIGUSR2 switch) from the start.
    pub host_files: bool,
    pub serve: ServeOptions,
    pub mountpoint: PathBuf,
}

/// A command line that is not a worker's, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a worker command line: {0}")]
pub struct ArgsError(String);

impl WorkerArgs {
    /// The arguments after the program name, starting with [`WORKER_FLAG`].
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            WORKER_FLAG.into(),
            format!("--fuse-fd={}", self.fuse_fd).into(),
            format!("--ready-fd={}", self.ready_fd).into(),
            format!("--generation={}", self.generation).into(),
        ];
        let mut flag = |on: bool, name: &str| {
            if on {
                a.push(name.into());
            }
        };
        flag(self.initialized, "--fuse-initialized");
        flag(self.host_files, "--serve-host-files");
        flag(self.replay, "--replay-inflight");
        flag(self.serve.debug, "--debug");
        flag(self.serve.disable_loadavg, "--disable-loadavg");
        flag(self.serve.disable_swap, "--disable-swap");
        flag(self.serve.enable_cfs, "--enable-cfs");
        flag(self.serve.enable_cpu_shares, "--enable-cpu-shares");
        flag(self.serve.host_uptime, "--host-uptime");
        flag(self.serve.enable_cgroup, "--enable-cgroup");
        flag(self.serve.enable_psi_poll, "--enable-psi-poll");
        if !self.shared_fds.is_empty() {
            let list: Vec<String> = self.shared_fds.iter().map(|f| f.to_string()).collect();
            a.push(format!("--shared-fds={}", list.join(",")).into());
        }
        if let Some(fd) = self.counters_fd {
            a.push(format!("--counters-fd={fd}").into());
        }
        if let Some(fd) = self.inflight_fd {
            a.push(format!("--inflight-fd={fd}").into());
        }
        if !self.crashed.is_empty() {
            let list: Vec<String> = self.crashed.iter().map(|p| p.to_string()).collect();
            a.push(format!("--crashed-pids={}", list.join(",")).into());
        }
        if self.serve.log_json {
            a.push("--log-format=json".into());
        }
        if let Some(t) = self.serve.threads {
            a.push(format!("--threads={t}").into());
        }
        a.push(format!("--fuse-poll-us={}", self.serve.fuse_poll_us).into());
        a.push(format!("--max-open-mib={}", self.serve.max_open_mib).into());
        a.push(
            format!(
                "--init-resolver={}",
                resolver_name(self.serve.init_resolver)
            )
            .into(),
        );
        a.push(with_prefix("--host-root=", &self.serve.host_root));
        a.push(self.mountpoint.clone().into_os_string());
        a
    }

    /// Read what [`to_args`](Self::to_args) (or an earlier version's supervisor) wrote:
    /// the arguments after the program name.
    pub fn from_args<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<WorkerArgs, ArgsError> {
        let err = |m: String| Err(ArgsError(m));
        let mut worker = false;
        let mut fuse_fd = None;
        let mut ready_fd = None;
        let mut generation = 1;
        let mut initialized = false;
        let mut shared_fds = Vec::new();
        let mut counters_fd = None;
        let mut inflight_fd = None;
        let mut replay = false;
        let mut crashed = Vec::new();
        let mut host_files = false;
        let mut serve = ServeOptions::default();
        let mut mountpoint = None;
        let mut it = args.iter().map(|a| a.as_ref().as_bytes());
        while let Some(arg) = it.next() {
            if !arg.starts_with(b"-") {
                if mountpoint.is_some() {
                    return err(format!("two mountpoints (…{})", lossy(arg)));
                }
                mountpoint = Some(PathBuf::from(std::ffi::OsStr::from_bytes(arg)));
                continue;
            }
            let (name, inline) = match arg.iter().position(|&b| b == b'=') {
                Some(i) => (&arg[..i], Some(&arg[i + 1..])),
                None => (arg, None),
            };
            match name {
                b"--worker" => worker = true,
                b"--fuse-initialized" => initialized = true,
                b"--replay-inflight" => replay = true,
                b"--serve-host-files" | b"--passthrough-on" => host_files = true,
                b"-d" | b"--debug" => serve.debug = true,
                b"--disable-loadavg" => serve.disable_loadavg = true,
                b"-u" | b"--disable-swap" => serve.disable_swap = true,
                b"--enable-cfs" => serve.enable_cfs = true,
                b"--enable-cpu-shares" => serve.enable_cpu_shares = true,
                b"--host-uptime" => serve.host_uptime = true,
                b"--enable-cgroup" => serve.enable_cgroup = true,
                b"--enable-psi-poll" => serve.enable_psi_poll = true,
                _ => {
                    let Some(value) = inline.or_else(|| it.next()) else {
                        return err(format!("{} without a value", lossy(name)));
                    };
                    match name {
                        b"--fuse-fd" => fuse_fd = Some(number(name, value)?),
                        b"--ready-fd" => ready_fd = Some(number(name, value)?),
                        b"--generation" => generation = number(name, value)?,
                        b"--shared-fds" | b"--pt-fds" => {
                            shared_fds = value
                                .split(|&b| b == b',')
                                .map(|n| number(name, n))
                                .collect::<Result<_, _>>()?
                        }
                        b"--counters-fd" => counters_fd = Some(number(name, value)?),
                        b"--inflight-fd" => inflight_fd = Some(number(name, value)?),
                        b"--crashed-pids" => {
                            crashed = value
                                .split(|&b| b == b',')
                                .map(|n| number(name, n))
                                .collect::<Result<_, _>>()?
                        }
                        b"--log-format" => {
                            serve.log_json = match value {
                                b"text" => false,
                                b"json" => true,
                                _ => return err(format!("--log-format {}", lossy(value))),
                            }
                        }
                        b"--threads" => serve.threads = Some(number(name, value)?),
                        b"--fuse-poll-us" => serve.fuse_poll_us = number(name, value)?,
                        b"--max-open-mib" => serve.max_open_mib = number(name, value)?,
                        b"--init-resolver" => {
                            serve.init_resolver = match value {
                                b"auto" => ResolverKind::Auto,
                                b"ioctl" => ResolverKind::Ioctl,
                                b"procfs" => ResolverKind::Procfs,
                                _ => return err(format!("--init-resolver {}", lossy(value))),
                            }
                        }
                        b"--host-root" => {
                            serve.host_root = PathBuf::from(OsString::from_vec(value.to_vec()))
                        }
                        _ => return err(format!("unknown option {}", lossy(name))),
                    }
                }
            }
        }
        if !worker {
            return err(format!("no {WORKER_FLAG}"));
        }
        let (Some(fuse_fd), Some(ready_fd), Some(mountpoint)) = (fuse_fd, ready_fd, mountpoint)
        else {
            return err("--fuse-fd, --ready-fd and a mountpoint are required".into());
        };
        Ok(WorkerArgs {
            fuse_fd,
            ready_fd,
            generation,
            initialized,
            shared_fds,
            counters_fd,
            inflight_fd,
            replay,
            crashed,
            host_files,
            serve,
            mountpoint,
        })
    }
}

/// Whether a command line (after the program name) is a worker's.
pub fn is_worker<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> bool {
    args.iter()
        .any(|a| a.as_ref().as_bytes() == WORKER_FLAG.as_bytes())
}

fn resolver_name(r: ResolverKind) -> &'static str {
    match r {
        ResolverKind::Auto => "auto",
        ResolverKind::Ioctl => "ioctl",
        ResolverKind::Procfs => "procfs",
    }
}

fn number<T: std::str::FromStr>(name: &[u8], value: &[u8]) -> Result<T, ArgsError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ArgsError(format!("{} {}", lossy(name), lossy(value))))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn with_prefix(prefix: &str, path: &std::path::Path) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(path.as_os_str());
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> WorkerArgs {
        WorkerArgs {
            fuse_fd: 5,
            ready_fd: 9,
            generation: 42,
            initialized: true,
            shared_fds: vec![6, 7, 8],
            counters_fd: Some(10),
            inflight_fd: Some(12),
            replay: true,
            crashed: vec![300, 301],
            host_files: true,
            serve: ServeOptions {
                debug: true,
                disable_loadavg: true,
                disable_swap: true,
                enable_cfs: true,
                enable_cpu_shares: true,
                host_uptime: true,
                enable_cgroup: true,
                enable_psi_poll: true,
                threads: Some(3),
                fuse_poll_us: 0,
                init_resolver: ResolverKind::Procfs,
                host_root: PathBuf::from("/tmp/a root"),
                max_open_mib: 3,
                log_json: true,
            },
            mountpoint: PathBuf::from("/var/lib/lxcfs"),
        }
    }

    #[test]
    fn what_is_written_is_read_back() {
        let a = sample();
        assert_eq!(WorkerArgs::from_args(&a.to_args()).unwrap(), a);
        let mut b = sample();
        b.initialized = false;
        b.host_files = false;
        b.shared_fds.clear();
        b.counters_fd = None;
        b.inflight_fd = None;
        b.replay = false;
        b.crashed.clear();
        b.serve = ServeOptions::default();
        assert_eq!(WorkerArgs::from_args(&b.to_args()).unwrap(), b);
        assert!(is_worker(&a.to_args()));
    }

    #[test]
    fn an_earlier_supervisors_spelling_is_read() {
        // What supervisors before the typed arguments wrote.
        let old = [
            "--debug",
            "--enable-cfs",
            "--threads=3",
            "--fuse-poll-us=50",
            "--init-resolver=ioctl",
            "--host-root=/",
            "--worker",
            "--fuse-fd",
            "4",
            "--ready-fd",
            "11",
            "--generation",
            "7",
            "--fuse-initialized",
            "--pt-fds",
            "5,6",
            "--passthrough-on",
            "/var/lib/lxcfs",
        ];
        let a = WorkerArgs::from_args(&old).unwrap();
        assert_eq!((a.fuse_fd, a.ready_fd, a.generation), (4, 11, 7));
        assert!(a.initialized && a.host_files && a.serve.debug && a.serve.enable_cfs);
        assert_eq!(a.shared_fds, vec![5, 6]);
        assert_eq!(a.serve.threads, Some(3));
        assert_eq!(a.serve.init_resolver, ResolverKind::Ioctl);
        assert_eq!(a.mountpoint, PathBuf::from("/var/lib/lxcfs"));
        // Before counters and log formats: none, and text.
        assert_eq!(a.counters_fd, None);
        assert!(!a.serve.log_json);
    }

    #[test]
    fn what_is_not_a_worker_is_refused_with_the_reason() {
        let e = |args: &[&str]| WorkerArgs::from_args(args).unwrap_err().to_string();
        assert!(e(&["/mnt"]).contains("--worker"));
        assert!(e(&["--worker", "--fuse-fd=3", "/mnt"]).contains("required"));
        assert!(e(&["--worker", "--fuse-fd=x", "--ready-fd=4", "/m"]).contains("--fuse-fd x"));
        assert!(e(&["--worker", "--bogus=1", "/m"]).contains("unknown option --bogus"));
        assert!(e(&["--worker", "--fuse-fd"]).contains("without a value"));
        assert!(e(&["--worker", "/a", "/b"]).contains("two mountpoints"));
        assert!(!is_worker(&["--debug", "/var/lib/lxcfs"]));
    }
}
