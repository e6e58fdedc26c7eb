//! The command line of `lxcfs-rs check`, apart from the check itself so that the man page
//! generator (`lxcfs-rs-docs`) can read it without the rest of the daemon.

use std::path::PathBuf;

use clap::Parser;

/// LXCFS's mountpoint, which the packaged unit serves.
pub const DEFAULT_MOUNTPOINT: &str = "/var/lib/lxcfs";

#[derive(Debug, Parser)]
#[command(
    name = "lxcfs-rs check",
    bin_name = "lxcfs-rs check",
    version,
    about = "Report what this host offers lxcfs-rs and whether a mountpoint is served",
    long_about = "Report what this host offers lxcfs-rs and what each missing piece means for \
containers: privileges and namespaces, /dev/fuse, the cgroup layout and controllers, swap \
accounting, pressure stall information, FUSE passthrough, FUSE_NOTIFY_RESEND, the pid-namespace \
ioctl; whether MOUNTPOINT is served, by which daemon and version; and with --pid, which container \
that process is in and, for each file, whether it is rendered from the container's cgroups or is \
the host's file, and why. Run it as root.",
    after_help = "Exit status: 0 when everything lxcfs-rs needs with its default options is there \
(and, when MOUNTPOINT is given, lxcfs-rs serves it; with --pid, the process was found); 1 \
otherwise; 2 on a usage error. Items marked \"limited\" are optional: lxcfs-rs works without them, \
the report says what is lost."
)]
pub struct Args {
    /// The mountpoint to look at (default: /var/lib/lxcfs, where its state is reported
    /// without affecting the exit status).
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: Option<PathBuf>,

    /// Also report the container of this process (a host pid) and where each of its
    /// files comes from.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}
