//! The command line of `lxcfs-rs nri`, apart from the plugin so that the man page
//! generator (`lxcfs-rs-docs`) can read it without the rest of the daemon.

use std::path::PathBuf;

use clap::Parser;

/// Where containerd (>= 1.7) and CRI-O (>= 1.26) listen for external NRI plugins.
pub const DEFAULT_SOCKET: &str = "/var/run/nri/nri.sock";

#[derive(Debug, Parser)]
#[command(
    name = "lxcfs-rs nri",
    bin_name = "lxcfs-rs nri",
    version,
    about = "Run the NRI plugin that binds lxcfs-rs's files into opted-in pods' containers",
    long_about = "Connect to the container runtime's NRI socket (containerd >= 2.0 and CRI-O >= 1.30 \
run NRI by default; containerd 1.7 and CRI-O 1.26 when it is enabled) and, when the runtime creates a \
container of a pod labelled lxcfs-rs.io/inject=true (or of a namespace named with --namespace, unless \
labelled lxcfs-rs.io/inject=false), add read-only binds of the files the --mountpoint serves over the \
container's own: /proc/{cpuinfo,diskstats,meminfo,stat,swaps,uptime,loadavg} and \
/sys/devices/system/cpu, the destinations every OCI runtime accepts (pods of the runtime handlers named \
with --all-files-handler also get /proc/slabinfo and /proc/pressure/*). The mount is checked at each \
container creation: when it does not serve (no daemon, a dead or hung mount), the container is created \
without the files rather than failing. Runs until killed; when the runtime restarts it registers again.",
    after_help = "Exit status: 1 on a usage error of the plugin's identity; otherwise it runs until killed."
)]
pub struct Args {
    /// The runtime's NRI socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,

    /// The lxcfs-rs mountpoint on the host: the binds' sources, as the runtime sees them.
    #[arg(long, value_name = "PATH", default_value = crate::check::DEFAULT_MOUNTPOINT)]
    pub mountpoint: PathBuf,

    /// Where this process sees the host's root, when it runs in a container with the
    /// host's filesystem (or the mountpoint's parent) mounted there: the mount is checked
    /// at HOST_ROOT/MOUNTPOINT.
    #[arg(long, value_name = "HOST_ROOT", default_value = "/")]
    pub host_root: PathBuf,

    /// Runtime handlers (a RuntimeClass's handler, e.g. crun) whose runtime accepts
    /// binds under /proc outside runc's allow-list: their pods also get /proc/slabinfo
    /// and /proc/pressure/*. Repeatable.
    #[arg(long = "all-files-handler", value_name = "HANDLER")]
    pub all_files_handlers: Vec<String>,

    /// A namespace whose pods get the files unless labelled lxcfs-rs.io/inject=false
    /// (the runtime tells a plugin a pod's namespace by name, not the namespace's
    /// labels). Repeatable.
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,

    /// The name the plugin registers with.
    #[arg(long, value_name = "NAME", default_value = "lxcfs-rs")]
    pub plugin_name: String,

    /// The plugin's two-digit index: plugins are called in ascending order of it.
    #[arg(long, value_name = "NN", default_value = "40")]
    pub plugin_index: String,

    /// Log every container's decision, not only the binds made.
    #[arg(long)]
    pub debug: bool,
}
