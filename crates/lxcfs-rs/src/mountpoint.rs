//! Checking the mountpoint before mounting, and clearing a dead FUSE mount left there.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use rustix::io::Errno;
use rustix::mount::{UnmountFlags, unmount};

/// Returns the canonical mountpoint, ready to mount on.
pub fn prepare(path: &Path) -> Result<PathBuf> {
    match rustix::fs::stat(path) {
        // A FUSE mount whose daemon died answers ENOTCONN: detach it so we can mount.
        Err(Errno::NOTCONN) => {
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
        if source == "lxcfs-rs" {
            bail!(
                "{} is already served by a running lxcfs-rs; stop it first",
                canonical.display()
            );
        }
        bail!(
            "{} is already a live {fstype} mount (from {source}); unmount it first",
            canonical.display()
        );
    }
    Ok(canonical)
}

/// Type and source of the topmost mount at `path` if it is a FUSE filesystem.
fn live_fuse_mount(path: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let target = path.to_str()?;
    procfile::mountinfo::entries(&text)
        .filter(|m| m.mount_point == target)
        .last()
        .filter(|m| m.fstype == "fuse" || m.fstype.starts_with("fuse."))
        .map(|m| (m.fstype.to_string(), m.source.to_string()))
}
