//! The command line of `lxcfs-rs status`.

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "lxcfs-rs status",
    bin_name = "lxcfs-rs status",
    version,
    about = "Summarize what the lxcfs-rs serving a mountpoint is doing, from its metrics socket",
    long_about = "Ask the supervisor serving MOUNTPOINT (default /var/lib/lxcfs) for its metrics \
and summarize them: version, uptime, worker generation and restarts, whether a FUSE thread polls \
and relays requests, who reads the files (the daemon, mmap refused; or the kernel, with \
--fuse-passthrough), containers tracked, opens \
and reads per second over a short sample, host fallbacks and errors, and the containers that \
read the most over the last few seconds. The metrics socket is found \
from the supervisor's own command line (its --metrics-socket, --pidfile or --runtime-dir). Run it \
as root: the socket is root-only.",
    after_help = "Exit status: 0 when the daemon answered, 1 when no lxcfs-rs serves there or its \
socket does not answer, 2 on a usage error."
)]
pub struct Args {
    /// The mountpoint whose daemon to ask (default: /var/lib/lxcfs).
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: Option<PathBuf>,

    /// Ask this metrics socket instead of finding the daemon from MOUNTPOINT.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Print the summary as JSON.
    #[arg(long, conflicts_with = "metrics")]
    pub json: bool,

    /// Print the raw Prometheus exposition instead of a summary.
    #[arg(long)]
    pub metrics: bool,

    /// Seconds between the two scrapes the rates are computed from.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub sample: f64,
}
