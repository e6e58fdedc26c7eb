//! Start-up checks that turn a misconfiguration into a clear refusal instead of
//! silently wrong files.

use anyhow::{Result, bail};

/// Root is needed to mount, to use `allow_other`, and to read every process's
/// `/proc/<pid>/ns/pid` and cgroup files.
pub fn require_root() -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!(
            "lxcfs-rs must run as root (it mounts a FUSE filesystem and reads every container's /proc entries)"
        );
    }
    Ok(())
}

/// The kernel gives its initial namespaces fixed inode numbers (`PROC_PID_INIT_INO`,
/// `PROC_CGROUP_INIT_INO` in include/linux/proc_ns.h); the mount namespace has none.
const INIT_PID_NS: u64 = 0xEFFF_FFFC;
const INIT_CGROUP_NS: u64 = 0xEFFF_FFFB;

/// FUSE reports a reader as a thread id in the daemon's pid namespace, and
/// `/proc/<pid>/cgroup` paths are relative to the daemon's cgroup namespace, so both
/// must be the host's; the mount must be made in the host's mount namespace to be
/// visible to runtimes.
pub fn require_host_namespaces() -> Result<()> {
    const HINT: &str = "start it on the host, or with `nsenter -t 1 -m -p -C`, or pass \
                        --skip-namespace-check for a nested setup";
    for (ns, want) in [("pid", INIT_PID_NS), ("cgroup", INIT_CGROUP_NS)] {
        let ours = ns_inode(&format!("/proc/self/ns/{ns}"))?;
        if ours != want {
            bail!("lxcfs-rs must run in the host's {ns} namespace (ours is {ns}:[{ours}]); {HINT}");
        }
    }
    // Only comparable with pid 1's, which a confined root may not be allowed to read.
    match (
        std::fs::read_link("/proc/self/ns/mnt"),
        std::fs::read_link("/proc/1/ns/mnt"),
    ) {
        (Ok(a), Ok(b)) if a != b => bail!(
            "lxcfs-rs must run in the host's mount namespace (ours is {}, pid 1's is {}); {HINT}",
            a.display(),
            b.display()
        ),
        (Ok(_), Ok(_)) => {}
        (Err(e), _) => bail!("cannot read our mount namespace: {e}"),
        (_, Err(e)) => tracing::debug!("cannot compare the mount namespace with pid 1's: {e}"),
    }
    Ok(())
}

fn ns_inode(link: &str) -> Result<u64> {
    let target = std::fs::read_link(link)?;
    let s = target.to_string_lossy();
    s.split_once(":[")
        .and_then(|(_, rest)| rest.strip_suffix(']'))
        .and_then(procfile::value::parse_u64)
        .ok_or_else(|| anyhow::anyhow!("unexpected namespace link {link} -> {s}"))
}
