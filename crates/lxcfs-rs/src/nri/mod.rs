//! `lxcfs-rs nri`: the NRI plugin (crate `nri`) wired to this node's mount: the probe
//! that says whether the mount serves and what, and the lists of files by runtime.

mod args;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustix::io::Errno;

pub use args::Args;
// `::nri` is the crate; this module is `crate::nri`.
use ::nri::plugin::{Gate, Policy, Probe};
use ::nri::session::Identity;

use crate::cdi::{CPU_DIR, OTHER_PROC, RUNC_SAFE_PROC};

/// How long a check of the mount may take before the container is created without the
/// files: well inside NRI's default 2 s request timeout, past which the runtime fails
/// the container creation.
pub(crate) const PROBE_DEADLINE: Duration = Duration::from_millis(1000);
/// Between attempts to reach the runtime (not started yet, restarting).
const RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// The mount as this process sees it (also the device plugin's health check).
pub(crate) struct Mount {
    pub(crate) path: PathBuf,
}

impl Probe for Mount {
    /// Serves when: a live lxcfs-rs FUSE mount is at the path, it answers a read of
    /// proc/meminfo, and it has every file the default set binds. The list is what
    /// exists of the known files (pressure files only where the host has PSI).
    fn served(&self) -> std::result::Result<Vec<String>, String> {
        let p = &self.path;
        // statfs reaches the daemon: a dead one answers ENOTCONN.
        match rustix::fs::statfs(p) {
            Err(Errno::NOTCONN | Errno::CONNABORTED) => {
                return Err(format!("{} is a dead FUSE mount", p.display()));
            }
            Err(e) => return Err(format!("{}: {e}", p.display())),
            Ok(_) => {}
        }
        if !crate::mountpoint::is_ours(p) {
            return Err(format!("{} is not an lxcfs-rs mount", p.display()));
        }
        match std::fs::read(p.join("proc/meminfo")) {
            Ok(b) if b.starts_with(b"MemTotal:") => {}
            Ok(_) => return Err("proc/meminfo does not start with MemTotal:".into()),
            Err(e) => return Err(format!("reading proc/meminfo: {e}")),
        }
        let served = crate::cdi::served(p);
        if let Some(missing) = default_files()
            .into_iter()
            .find(|f| !served.contains(&f.as_str()))
        {
            return Err(format!("{} lacks {missing}", p.display()));
        }
        Ok(served.into_iter().map(String::from).collect())
    }
}

/// What every runtime accepts: runc's and youki's /proc allow-list, and the CPU
/// directory (not under /proc, so unchecked).
fn default_files() -> Vec<String> {
    RUNC_SAFE_PROC
        .iter()
        .chain(std::iter::once(&CPU_DIR))
        .map(|s| s.to_string())
        .collect()
}

fn all_files() -> Vec<String> {
    RUNC_SAFE_PROC
        .iter()
        .chain(OTHER_PROC.iter())
        .chain(std::iter::once(&CPU_DIR))
        .map(|s| s.to_string())
        .collect()
}

/// NRI's rules for a plugin's name and index (the runtime refuses others).
fn identity(args: &Args) -> Result<Identity> {
    let name_ok = !args.plugin_name.is_empty()
        && args
            .plugin_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
    if !name_ok {
        bail!(
            "plugin name {:?}: NRI takes letters, digits and -_.+ only",
            args.plugin_name
        );
    }
    let index = &args.plugin_index;
    if index.len() != 2 || !index.bytes().all(|b| b.is_ascii_digit()) {
        bail!("plugin index {index:?}: NRI takes two digits");
    }
    Ok(Identity {
        name: args.plugin_name.clone(),
        index: index.clone(),
    })
}

/// HOST_ROOT/MOUNTPOINT, however MOUNTPOINT is spelled.
pub(crate) fn probe_path(host_root: &Path, mountpoint: &Path) -> PathBuf {
    host_root.join(mountpoint.strip_prefix("/").unwrap_or(mountpoint))
}

/// Run `lxcfs-rs nri`; returns the exit status.
pub fn run(args: &Args) -> u8 {
    match run_inner(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("lxcfs-rs nri: {e:#}");
            1
        }
    }
}

fn run_inner(args: &Args) -> Result<()> {
    let identity = identity(args)?;
    if !args.mountpoint.is_absolute() {
        bail!(
            "--mountpoint {}: the runtime needs an absolute path",
            args.mountpoint.display()
        );
    }
    let policy = Policy {
        mountpoint: args.mountpoint.clone(),
        default_files: default_files(),
        all_files: all_files(),
        all_files_handlers: args.all_files_handlers.clone(),
        namespaces: args.namespaces.clone(),
    };
    let probe: Arc<dyn Probe> = Arc::new(Mount {
        path: probe_path(&args.host_root, &args.mountpoint),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the plugin's event loop")?;
    tracing::info!(
        "lxcfs-rs {} NRI plugin: binds {} into pods labelled {}={}",
        env!("CARGO_PKG_VERSION"),
        args.mountpoint.display(),
        ::nri::plugin::OPT_IN_LABEL,
        ::nri::plugin::OPT_IN_VALUE
    );
    let mut said_waiting = false;
    loop {
        let gate = Gate::new(probe.clone(), PROBE_DEADLINE);
        match rt.block_on(::nri::session::run(
            &args.socket,
            &identity,
            policy.clone(),
            gate,
        )) {
            Ok(()) => {
                tracing::info!("the runtime closed the connection; connecting again");
                said_waiting = false;
            }
            Err(e @ ::nri::session::Error::Connect { .. }) => {
                // A runtime not (yet) running NRI: said once, then retried quietly.
                if !said_waiting {
                    tracing::warn!("{e}; retrying every {}s", RECONNECT_DELAY.as_secs());
                    said_waiting = true;
                }
            }
            Err(e) => {
                tracing::warn!("{e}; connecting again");
                said_waiting = false;
            }
        }
        std::thread::sleep(RECONNECT_DELAY);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(name: &str, index: &str) -> Args {
        use clap::Parser;
        Args::parse_from([
            "lxcfs-rs nri",
            "--plugin-name",
            name,
            "--plugin-index",
            index,
        ])
    }

    #[test]
    fn identity_follows_nri_rules() {
        assert!(identity(&args("lxcfs-rs", "40")).is_ok());
        assert!(identity(&args("lxcfs rs", "40")).is_err());
        assert!(identity(&args("lxcfs-rs", "4")).is_err());
        assert!(identity(&args("lxcfs-rs", "4x")).is_err());
    }

    #[test]
    fn the_default_set_is_what_runc_accepts() {
        let d = default_files();
        assert_eq!(d.len(), 8);
        assert!(d.iter().all(|f| {
            !f.contains("pressure") && !f.contains("slabinfo") && !f.contains("vmstat")
        }));
        assert_eq!(all_files().len(), 13);
    }

    #[test]
    fn the_probe_path_is_under_the_host_root() {
        assert_eq!(
            probe_path(Path::new("/host"), Path::new("/var/lib/lxcfs")),
            Path::new("/host/var/lib/lxcfs")
        );
        assert_eq!(
            probe_path(Path::new("/"), Path::new("/var/lib/lxcfs")),
            Path::new("/var/lib/lxcfs")
        );
    }

    #[test]
    fn a_directory_that_is_not_a_mount_does_not_serve() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mount {
            path: dir.path().into(),
        };
        assert!(m.served().unwrap_err().contains("not an lxcfs-rs mount"));
        let m = Mount {
            path: dir.path().join("absent"),
        };
        assert!(m.served().is_err());
    }
}
