//! The command line of `lxcfs-rs node`: what a Kubernetes DaemonSet's pod runs to put
//! lxcfs-rs on its node (see deploy/kubernetes/).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub const DEFAULT_MOUNTPOINT: &str = "/var/lib/lxcfs";
/// Writable on every distribution Kubernetes nodes run, including those whose /usr is
/// read-only (Flatcar, Bottlerocket, Talos).
pub const DEFAULT_INSTALL_DIR: &str = "/var/lib/lxcfs-rs";
pub const DEFAULT_LOG: &str = "/var/log/lxcfs-rs.log";

#[derive(Debug, Parser)]
#[command(
    name = "lxcfs-rs node",
    bin_name = "lxcfs-rs node",
    version,
    about = "Install, check or remove lxcfs-rs on this node from a privileged pod",
    long_about = "Run from a privileged container with hostPID (a Kubernetes DaemonSet): each \
command first enters the mount and cgroup namespaces of HOST_PID (the node's init), so it acts on \
the node, not on the container. `install` copies this binary onto the node and runs it there as \
a service that outlives the pod (a systemd unit where systemd is the node's init, else a process \
in a cgroup of its own), live-upgrades a daemon that runs an older binary (SIGUSR1, the mount \
stays), then stays in the foreground watching it. Deleting the pod leaves the daemon serving. \
`ready` exits 0 when the mount serves (a readiness probe). `uninstall` detaches the mount and \
stops and removes the service: containers that bound the files keep them until they stop."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Host {
    /// A process of the node (in its mount and cgroup namespaces) whose namespaces to
    /// enter; the container must share the node's pid namespace (hostPID: true).
    #[arg(long = "host-pid", value_name = "PID", default_value_t = 1)]
    pub host_pid: u32,

    /// The mountpoint on the node.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_MOUNTPOINT)]
    pub mountpoint: PathBuf,

    /// Where the binary is installed on the node (as DIR/lxcfs-rs).
    #[arg(long = "install-dir", value_name = "DIR", default_value = DEFAULT_INSTALL_DIR)]
    pub install_dir: PathBuf,

    /// The daemon's runtime directory on the node (pidfile, metrics socket).
    #[arg(long = "runtime-dir", value_name = "DIR", default_value = "/run")]
    pub runtime_dir: PathBuf,

    /// How the daemon runs on the node: a systemd unit (systemd is the node's init), a
    /// process in a cgroup of its own, or whichever fits (auto).
    #[arg(long, value_enum, default_value_t = Manager::Auto)]
    pub manager: Manager,

    /// Where the systemd unit goes (tests point it elsewhere).
    #[arg(
        long = "unit-dir",
        value_name = "DIR",
        default_value = "/etc/systemd/system",
        hide = true
    )]
    pub unit_dir: PathBuf,

    /// The CDI spec directory (the spec is written once the mount serves, removed on
    /// uninstall); `none` for no spec.
    #[arg(long = "cdi-dir", value_name = "DIR", default_value = "/etc/cdi")]
    pub cdi_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Manager {
    Auto,
    Systemd,
    Detached,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install and start (or live-upgrade) the daemon on the node, then watch it.
    Install {
        #[command(flatten)]
        host: Host,
        /// Where a detached daemon logs on the node (its new lines are copied to ours).
        #[arg(long, value_name = "FILE", default_value = DEFAULT_LOG)]
        log: PathBuf,
        /// The cgroup (below each hierarchy's root) a detached daemon moves to.
        #[arg(long, value_name = "NAME", default_value = "lxcfs-rs")]
        cgroup: String,
        /// Seconds between checks that the daemon is alive (a detached supervisor that
        /// died is started again and adopts its worker).
        #[arg(long = "watch-interval", value_name = "SECS", default_value_t = 5)]
        watch_interval: u64,
        /// Exit once the daemon serves instead of watching it.
        #[arg(long)]
        once: bool,
        /// More options for the daemon (e.g. --enable-cfs), after `--`.
        #[arg(last = true, value_name = "DAEMON_OPTIONS")]
        daemon_args: Vec<String>,
    },
    /// Exit 0 when the node's mount serves (lxcfs-rs answers a read), 1 otherwise.
    Ready {
        #[command(flatten)]
        host: Host,
    },
    /// Bind the live mount's files again in every running container whose binds of it
    /// are dead (`lxcfs-rs --remount`, on the node).
    Remount {
        #[command(flatten)]
        host: Host,
    },
    /// Detach the mount, stop and remove the service and the binary.
    Uninstall {
        #[command(flatten)]
        host: Host,
        /// Then stay in the foreground until SIGTERM (as a DaemonSet's container must).
        #[arg(long)]
        wait: bool,
    },
    /// Internal: move to CGROUP in every hierarchy, leave the session, run the daemon.
    #[command(hide = true)]
    Launch {
        #[arg(long, value_name = "NAME")]
        cgroup: String,
        #[arg(last = true, required = true)]
        exec: Vec<PathBufArg>,
    },
}

pub type PathBufArg = std::ffi::OsString;

impl Host {
    pub fn binary(&self) -> PathBuf {
        self.install_dir.join("lxcfs-rs")
    }

    pub fn cdi_dir(&self) -> Option<&std::path::Path> {
        (self.cdi_dir.as_os_str() != "none").then_some(self.cdi_dir.as_path())
    }
}
