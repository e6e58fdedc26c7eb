//! Checking the mountpoint before mounting, and clearing a dead FUSE mount left there.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use rustix::io::Errno;
use rustix::mount::{UnmountFlags, unmount};

/// What is at the mountpoint.
pub enum State {
    /// Nothing of ours: mount here.
    Free(PathBuf),
    /// A live lxcfs-rs mount (no supervisor holds the pidfile: its workers are orphans).
    Served(PathBuf),
}

/// Returns the canonical mountpoint and whether lxcfs-rs already serves it.
pub fn prepare(path: &Path) -> Result<State> {
    // statfs always reaches the filesystem; stat may be answered from attributes the
    // kernel cached while the daemon was alive, and miss that it is dead.
    let probe = match rustix::fs::statfs(path) {
        Err(e) => Err(e),
        Ok(_) => rustix::fs::stat(path).map(|_| ()),
    };
    match probe {
        // A FUSE mount whose daemon died answers ENOTCONN (ECONNABORTED when the
        // connection was aborted with abort-error semantics): detach it so we can mount.
        Err(Errno::NOTCONN | Errno::CONNABORTED) => {
            unmount(path, UnmountFlags::DETACH).map_err(|e| {
                anyhow::anyhow!(
                    "{} is a dead FUSE mount and unmounting it failed: {e}",
                    path.display()
                )
            })?;
            tracing::info!("removed the dead FUSE mount at {}", path.display());
        }
        Err(Errno::NOENT) => bail!(
            "mountpoint {} does not exist (create it first, e.g. mkdir -p {})",
            path.display(),
            path.display()
        ),
        Err(e) => bail!("cannot use mountpoint {}: {e}", path.display()),
        Ok(_) => {}
    }
    let meta = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot use mountpoint {}: {e}", path.display()))?;
    if !meta.is_dir() {
        bail!("mountpoint {} is not a directory", path.display());
    }
    let canonical = std::fs::canonicalize(path)?;
    if let Some((fstype, source)) = live_fuse_mount(&canonical) {
        if source == connection::SOURCE || fstype == connection::FSTYPE {
            return Ok(State::Served(canonical));
        }
        // Debian's lxcfs package serves the same default mountpoint; mounting over it
        // would hide it from new containers while old ones keep LXCFS's files.
        if fstype == "fuse.lxcfs" || source == "lxcfs" {
            bail!(
                "{} is served by LXCFS; lxcfs-rs does not mount over another daemon. To switch, \
                 stop and disable LXCFS (systemctl disable --now lxcfs; containers started with \
                 its files need a restart), then start lxcfs-rs",
                canonical.display()
            );
        }
        bail!(
            "{} is already a live {fstype} mount (from {source}); unmount it first",
            canonical.display()
        );
    }
    Ok(State::Free(canonical))
}

/// Type and source of the topmost mount at `path` if it is a FUSE filesystem.
pub fn live_fuse_mount(path: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let target = path.to_str()?;
    procfile::mountinfo::entries(&text)
        .filter(|m| m.mount_point == target)
        .last()
        .filter(|m| m.fstype == "fuse" || m.fstype.starts_with("fuse."))
        .map(|m| (m.fstype.to_string(), m.source.to_string()))
}

/// Whether an lxcfs-rs mount is (still) at `path`.
pub fn is_ours(path: &Path) -> bool {
    live_fuse_mount(path).is_some_and(|(t, s)| t == connection::FSTYPE || s == connection::SOURCE)
}
