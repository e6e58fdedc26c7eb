//! The command line of `lxcfs-rs seccomp-agent`, apart from the agent so that the man
//! page generator (`lxcfs-rs-docs`) can read it without the rest of the daemon.

use std::path::PathBuf;

use clap::Parser;

/// Where the agent listens unless told otherwise; the profiles name it as their
/// `listenerPath`.
pub const DEFAULT_SOCKET: &str = "/run/lxcfs-rs/seccomp.sock";

#[derive(Debug, Parser)]
#[command(
    name = "lxcfs-rs seccomp-agent",
    bin_name = "lxcfs-rs seccomp-agent",
    version,
    about = "Answer containers' sysinfo(2) with their own memory, swap, uptime, load and tasks",
    long_about = "Listen on SOCKET (root only) for the seccomp notification descriptors an OCI \
runtime (runc >= 1.1, crun) sends when a container's seccomp profile notifies sysinfo(2) with \
this listenerPath (`lxcfs-rs seccomp-profile` prints such profiles), and answer each call with the \
container's numbers: the same memory, swap, uptime and load its /proc/meminfo, /proc/swaps, \
/proc/uptime and /proc/loadavg from lxcfs-rs show, its task count as procs, every other field the \
host's. Use the same -u / --host-uptime / --disable-loadavg as the lxcfs-rs daemon so that both \
agree. SIGUSR1 is a live upgrade: the binary on disk replaces the agent's program in the same \
process and keeps serving every container. If the agent stops, the kernel fails the pending and \
later sysinfo calls of the containers it served with ENOSYS at once (none waits); containers \
started after it is back are served again. Under systemd, start it from its socket unit \
(lxcfs-rs-seccomp-agent.socket): the socket then exists while the agent does not (a crash, a \
restart), runtimes' connections wait in it, and containers started meanwhile start, their \
sysinfo calls waiting for the agent.",
    after_help = "Signals: SIGTERM, SIGINT: exit (removing the socket, unless systemd passed \
it: LISTEN_FDS); SIGUSR1: live upgrade. \
Exit status: 0 after SIGTERM or SIGINT; 1 when it cannot start (not root, the \
socket is served by another agent, the host cannot be read)."
)]
pub struct Args {
    /// The unix socket runtimes connect to (created mode 0600; its directory 0700).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,

    /// Threads answering calls (default: 2).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub threads: usize,

    /// Report no swap, like the daemon's -u.
    #[arg(short = 'u', long = "disable-swap")]
    pub disable_swap: bool,

    /// The host's uptime, like the daemon's --host-uptime.
    #[arg(long = "host-uptime")]
    pub host_uptime: bool,

    /// The host's load averages, like the daemon's --disable-loadavg.
    #[arg(long = "disable-loadavg")]
    pub disable_loadavg: bool,

    /// Debug logging (RUST_LOG overrides).
    #[arg(short = 'd', long)]
    pub debug: bool,

    /// Log lines as JSON objects.
    #[arg(long = "log-json")]
    pub log_json: bool,

    /// The descriptors a live upgrade hands to the new program (set by the agent).
    #[arg(long, value_name = "SPEC", hide = true)]
    pub inherit: Option<String>,

    /// The inherited socket is systemd's (set by the agent on a live upgrade).
    #[arg(long = "socket-activated", hide = true)]
    pub socket_activated: bool,
}

impl Args {
    /// The options to start the upgraded program with (all but `--inherit`).
    pub fn passthrough(&self) -> Vec<String> {
        let mut v = vec![
            "--socket".to_string(),
            self.socket.display().to_string(),
            "--threads".to_string(),
            self.threads.to_string(),
        ];
        for (on, flag) in [
            (self.disable_swap, "--disable-swap"),
            (self.host_uptime, "--host-uptime"),
            (self.disable_loadavg, "--disable-loadavg"),
            (self.debug, "--debug"),
            (self.log_json, "--log-json"),
        ] {
            if on {
                v.push(flag.to_string());
            }
        }
        v
    }
}
