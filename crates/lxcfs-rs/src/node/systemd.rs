//! The daemon as a systemd service of the node, where systemd is the node's init: the
//! package's unit (deploy/lxcfs-rs.service) with this installation's paths. systemd
//! then starts it at boot before the container runtimes (so pods scheduled before
//! this DaemonSet's pod find the files), restarts it after a crash (adopting the
//! worker), and `systemctl reload` live-upgrades it.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

pub const UNIT: &str = "lxcfs-rs.service";

/// The package's unit; its comments say why each line is there.
const PACKAGED: &str = include_str!("../../../../deploy/lxcfs-rs.service");

/// systemd keeps `/run/systemd/system` while it is the init (sd_booted(3)).
pub fn is_init() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The packaged unit with `binary`, `mountpoint` and the daemon's extra options; its
/// ExecStart is the detached daemon's command line, so both ways run the same daemon.
pub fn unit(
    binary: &Path,
    runtime_dir: &Path,
    mountpoint: &Path,
    extra: &[String],
) -> Result<String> {
    let (bin, mnt) = (
        binary.display().to_string(),
        mountpoint.display().to_string(),
    );
    let dir = runtime_dir.display().to_string();
    for s in [&bin, &mnt, &dir].into_iter().chain(extra) {
        // systemd would split or expand these; our paths and options never need them.
        if s.is_empty()
            || s.chars()
                .any(|c| c.is_whitespace() || "\"'\\%$;".contains(c))
        {
            bail!("{s:?} cannot be written into a unit file as it is");
        }
    }
    let mut lines = Vec::new();
    let mut replaced = 0;
    for l in PACKAGED.lines() {
        let l = if l.starts_with("ExecStart=") {
            replaced += 1;
            let args = super::detached::command_line(runtime_dir, extra, mountpoint);
            let args: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
            format!("ExecStart={bin} {}", args.join(" "))
        } else if l.starts_with("ExecStartPre=") || l.starts_with("ExecStartPost=") {
            replaced += 1;
            l.replace("/usr/bin/lxcfs-rs", &bin)
                .replace("/var/lib/lxcfs", &mnt)
        } else if l.starts_with("# lxcfs-rs as a system service") {
            "# lxcfs-rs installed by its Kubernetes DaemonSet (lxcfs-rs node install); \
             remove it with lxcfs-rs node uninstall."
                .into()
        } else {
            l.to_string()
        };
        lines.push(l);
    }
    // ExecStartPre, ExecStart, ExecStartPost: a changed packaged unit must be looked at.
    if replaced != 3 {
        bail!("the packaged unit's Exec lines changed ({replaced} found): update node::systemd");
    }
    Ok(lines.join("\n") + "\n")
}

pub fn systemctl(args: &[&str]) -> Result<bool> {
    let status = Command::new("systemctl")
        .args(args)
        .status()
        .with_context(|| format!("cannot run systemctl {}", args.join(" ")))?;
    Ok(status.success())
}

fn must(args: &[&str]) -> Result<()> {
    if !systemctl(args)? {
        bail!("systemctl {} failed", args.join(" "));
    }
    Ok(())
}

/// Install the unit, then start it or, when its worker runs a replaced binary, reload
/// it (the live upgrade). `stale_worker`: the serving worker's binary was replaced.
pub fn apply(unit_dir: &Path, unit_text: &str, stale_worker: bool) -> Result<()> {
    let path = unit_dir.join(UNIT);
    let changed = super::host::install_file(&path, unit_text.as_bytes(), 0o644)?;
    if changed {
        must(&["daemon-reload"])?;
    }
    must(&["enable", UNIT])?;
    if systemctl(&["is-active", "--quiet", UNIT])? {
        if changed {
            // New options (or binary path) only take effect in a new supervisor. The
            // unit's KillMode=process and --keep-serving-on-exit make a restart leave
            // the worker serving for the new supervisor to adopt: no read fails.
            tracing::info!("restarting {UNIT} with its new command line (the mount stays)");
            must(&["restart", UNIT])?;
        } else if stale_worker {
            tracing::info!("live-upgrading {UNIT} (systemctl reload)");
            must(&["reload", UNIT])?;
        }
    } else {
        tracing::info!("starting {UNIT}");
        must(&["start", UNIT])?;
    }
    Ok(())
}

/// Stop and remove the unit (stopping leaves the worker serving: the caller has
/// detached the mount first).
pub fn remove(unit_dir: &Path) -> Result<()> {
    let path = unit_dir.join(UNIT);
    if !path.exists() {
        return Ok(());
    }
    must(&["disable", "--now", UNIT])?;
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    must(&["daemon-reload"])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_packaged_unit_with_our_paths() {
        let u = unit(
            Path::new("/var/lib/lxcfs-rs/lxcfs-rs"),
            Path::new("/run"),
            Path::new("/var/lib/lxcfs"),
            &["--enable-cfs".into()],
        )
        .unwrap();
        assert!(u.contains(
            "\nExecStart=/var/lib/lxcfs-rs/lxcfs-rs --keep-serving-on-exit --runtime-dir /run --enable-cfs /var/lib/lxcfs\n"
        ));
        assert!(
            u.contains("\nExecStartPost=-/var/lib/lxcfs-rs/lxcfs-rs cdi --write /var/lib/lxcfs\n")
        );
        assert!(u.contains("\nType=notify\n"));
        assert!(u.contains("\nKillMode=process\n"));
        assert!(u.contains("\nExecReload=/bin/kill -USR1 $MAINPID\n"));
        assert!(!u.contains("/usr/bin/lxcfs-rs"));
    }

    #[test]
    fn what_a_unit_cannot_hold_is_refused() {
        for extra in ["a b", "$X", "%n", "x;y", ""] {
            assert!(
                unit(
                    Path::new("/b/lxcfs-rs"),
                    Path::new("/run"),
                    Path::new("/m"),
                    &[extra.into()]
                )
                .is_err(),
                "{extra:?}"
            );
        }
    }
}
