//! The command line of `lxcfs-rs device-plugin`, apart from the plugin so that the man
//! page generator (`lxcfs-rs-docs`) can read it without the rest of the daemon.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// The kubelet's device plugin directory.
pub const DEFAULT_DIR: &str = "/var/lib/kubelet/device-plugins";
/// The extended resource pods request; the CDI spec's kind, so the two read alike.
pub const DEFAULT_RESOURCE: &str = "lxcfs-rs.io/proc";
/// Where CDI-aware runtimes read specs (containerd and CRI-O default to both).
pub const DEFAULT_CDI_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];

#[derive(Debug, Parser)]
#[command(
    name = "lxcfs-rs device-plugin",
    bin_name = "lxcfs-rs device-plugin",
    version,
    about = "Run the kubelet device plugin through which pods request lxcfs-rs's CDI device",
    long_about = "Serve the kubelet's device plugin API (v1beta1) on a socket in --dir and register \
the extended resource --resource-name (lxcfs-rs.io/proc) with the kubelet. A container that \
requests it (resources.limits: {lxcfs-rs.io/proc: 1}) is allocated the CDI device \
lxcfs-rs.io/proc=default (or =all, --cdi-device), which the container runtime resolves with the \
spec `lxcfs-rs cdi --write` (or `lxcfs-rs node install`) put in /etc/cdi: read-only binds of \
the files the mount serves over the container's own. Needs kubelet >= 1.29 (CDI devices from \
device plugins; 1.28 with the DevicePluginCDIDevices feature gate) and a runtime with CDI \
enabled (containerd >= 1.7 with enable_cdi, on by default in 2.0; CRI-O >= 1.23). The --devices devices \
are shared, not hardware: each container requesting one unit holds one, so the number caps the \
containers per node that can have the files. They are reported Unhealthy while the mount does \
not serve or no CDI spec names the device, so the scheduler sends no new such pod to the node \
then. Runs until killed; registers again whenever the kubelet restarts.",
    after_help = "Exit status: 2 on a malformed command line; 1 on a bad resource name, socket \
name or mountpoint, or when the plugin's socket cannot be made; otherwise it runs until killed."
)]
pub struct Args {
    /// The kubelet's device plugin directory: its kubelet.sock, and the plugin's socket.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    pub dir: PathBuf,

    /// The plugin's socket's file name in --dir.
    #[arg(long, value_name = "NAME", default_value = "lxcfs-rs.sock")]
    pub socket_name: String,

    /// The extended resource pods request (domain/name).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_RESOURCE)]
    pub resource_name: String,

    /// How many containers of this node may hold the resource at once (one unit each;
    /// at most 10000, so that the device list stays far below gRPC's 4 MiB message
    /// limit).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=::deviceplugin::plugin::MAX_DEVICES as i64))]
    pub devices: u32,

    /// The CDI device containers get: `default` binds what every runtime accepts;
    /// `all` adds /proc/slabinfo, /proc/vmstat and /proc/pressure/*, which runc and
    /// youki refuse (the container then fails to start): for crun-only nodes.
    #[arg(long, value_enum, default_value_t = CdiDevice::Default)]
    pub cdi_device: CdiDevice,

    /// The lxcfs-rs mountpoint on the host, whose health the devices report.
    #[arg(long, value_name = "PATH", default_value = crate::check::DEFAULT_MOUNTPOINT)]
    pub mountpoint: PathBuf,

    /// Where this process sees the host's root, when it runs in a container with the
    /// host's directories mounted there: the mount is checked at HOST_ROOT/MOUNTPOINT
    /// and the CDI spec looked for under HOST_ROOT/CDI_DIR.
    #[arg(long, value_name = "HOST_ROOT", default_value = "/")]
    pub host_root: PathBuf,

    /// A CDI spec directory the runtime reads; the devices are healthy only while a
    /// spec in one of them names the CDI device. Repeatable; `none` skips the check.
    #[arg(long = "cdi-spec-dir", value_name = "DIR", default_values_t = DEFAULT_CDI_DIRS.map(String::from))]
    pub cdi_spec_dirs: Vec<String>,

    /// Seconds between checks of the mount (each bounded to 1 s).
    #[arg(long, value_name = "SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub check_interval: u64,

    /// Log each check, not only changes of health.
    #[arg(long)]
    pub debug: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CdiDevice {
    Default,
    All,
}

impl CdiDevice {
    /// The device's name in the spec (`lxcfs-rs cdi`).
    pub fn name(self) -> &'static str {
        match self {
            CdiDevice::Default => "default",
            CdiDevice::All => "all",
        }
    }
}
