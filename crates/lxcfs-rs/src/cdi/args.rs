//! The command line of `lxcfs-rs cdi`, apart from the spec itself so that the man page
//! generator (`lxcfs-rs-docs`) can read it without the rest of the daemon.

use std::path::PathBuf;

use clap::Parser;

/// Where `--write` puts the spec unless told otherwise: the static CDI directory every
/// CDI-aware runtime (Podman, containerd >= 1.7, CRI-O, Docker >= 25) reads.
pub const DEFAULT_DIR: &str = "/etc/cdi";

#[derive(Debug, Parser)]
#[command(
    name = "lxcfs-rs cdi",
    bin_name = "lxcfs-rs cdi",
    version,
    about = "Print or write the Container Device Interface spec of a mount",
    long_about = "Print (or, with --write, write) a Container Device Interface (CDI) spec whose \
devices bind the files MOUNTPOINT serves over a container's own. Device lxcfs-rs.io/proc=default \
binds /proc/{cpuinfo,diskstats,meminfo,stat,swaps,uptime,loadavg} and /sys/devices/system/cpu, \
the destinations runc, youki and crun all accept; lxcfs-rs.io/proc=all adds /proc/slabinfo, \
/proc/vmstat and /proc/pressure/{cpu,io,memory} where the mount serves them: runc and youki refuse \
vmstat and the pressure files (under /proc and not on their allow-list, so the whole container \
fails to start), crun and LXC take them. Only files the running mount serves are listed. Use it with `podman run --device lxcfs-rs.io/proc=default`, or a containerd/CRI-O CDI \
device request.",
    after_help = "Exit status: 0 when the spec was printed or written; 1 when MOUNTPOINT is not \
served by lxcfs-rs or the spec cannot be written; 2 on a usage error."
)]
pub struct Args {
    /// The lxcfs-rs mountpoint whose files the spec binds (default: /var/lib/lxcfs).
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: Option<PathBuf>,

    /// Write the spec to DIR/lxcfs-rs.io-proc.json (atomically: a reader sees the old
    /// spec or the new one) instead of printing it.
    #[arg(long)]
    pub write: bool,

    /// The CDI spec directory --write writes to.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR, requires = "write")]
    pub dir: PathBuf,
}
