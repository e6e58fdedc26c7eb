//! The command line of `lxcfs-rs seccomp-profile`, apart from the generator so that the
//! man page generator (`lxcfs-rs-docs`) can read it without the rest of the daemon.

use std::path::PathBuf;

use clap::Parser;

/// containers-common's default profile: what Podman, Buildah and CRI-O apply, and
/// Docker's default profile in the same format (both derive from moby's).
pub const DEFAULT_BASE: &str = "/usr/share/containers/seccomp.json";

/// `lxcfs-rs seccomp-agent`'s default socket (the same constant there; a test checks).
pub const AGENT_SOCKET: &str = "/run/lxcfs-rs/seccomp.sock";

/// The capabilities `runc spec` gives a container, which decide the base profile's
/// capability-conditional rules in the `--oci` object.
pub const RUNC_SPEC_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

#[derive(Debug, Parser)]
#[command(
    name = "lxcfs-rs seccomp-profile",
    bin_name = "lxcfs-rs seccomp-profile",
    version,
    about = "Print a seccomp profile that sends containers' sysinfo(2) to the lxcfs-rs seccomp agent",
    long_about = "Print the runtime's default seccomp profile (read from BASE, by default \
containers-common's /usr/share/containers/seccomp.json, which Podman and CRI-O apply) with \
sysinfo(2) changed to SCMP_ACT_NOTIFY and listenerPath set to the agent's socket, in the same \
format, for `podman run --security-opt seccomp=FILE`, `docker run --security-opt seccomp=FILE` or \
a Kubernetes Localhost profile. With --oci, print the OCI linux.seccomp object instead (the \
profile resolved for this machine's architecture, kernel and the given capabilities, as a runtime \
resolves it), ready to replace linux.seccomp in a runc or crun config.json.",
    after_help = "Exit status: 0 when the profile was printed; 1 when BASE cannot be read or is not \
a seccomp profile; 2 on a usage error."
)]
pub struct Args {
    /// The profile to start from.
    #[arg(long = "base", value_name = "BASE", default_value = DEFAULT_BASE)]
    pub base: PathBuf,

    /// The agent's socket (`lxcfs-rs seccomp-agent --socket`).
    #[arg(long, value_name = "PATH", default_value = AGENT_SOCKET)]
    pub socket: PathBuf,

    /// Print the OCI `linux.seccomp` object for a config.json.
    #[arg(long)]
    pub oci: bool,

    /// With --oci: the container's capabilities, which decide the base profile's
    /// capability-conditional rules (default: those of `runc spec`). Repeat or separate
    /// with commas.
    #[arg(
        long = "cap",
        value_name = "CAP",
        value_delimiter = ',',
        requires = "oci"
    )]
    pub caps: Vec<String>,
}
