//! The daemon as a process of the node outside any pod, where systemd is not the
//! node's init: started in a cgroup of its own in every hierarchy, in a session of its
//! own, so that killing the pod's cgroup (what a runtime does to delete a container)
//! does not reach it.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

/// A log longer than this is moved to `.1` when a daemon is started on it.
const LOG_ROTATE_BYTES: u64 = 8 << 20;

/// `lxcfs-rs node launch`: the first thing the started process does, before it becomes
/// the daemon, so that none of the daemon's processes is ever in the pod's cgroup.
pub fn launch(cgroup: &str, exec: &[OsString]) -> Result<()> {
    let (program, args) = exec.split_first().context("nothing to run")?;
    for dir in target_cgroups(cgroup)? {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        // "0": the writing process itself.
        std::fs::write(dir.join("cgroup.procs"), "0")
            .with_context(|| format!("cannot move into {}", dir.display()))?;
    }
    // Out of the pod's session and process group: a signal to those misses it.
    rustix::process::setsid().context("setsid")?;
    let err = Command::new(program).args(args).exec();
    bail!("cannot run {}: {err}", Path::new(program).display())
}

/// Where the daemon goes: `NAME` below the root of the unified hierarchy, and the root
/// of each v1 hierarchy (a v1 cpuset child would first need its cpus and mems copied).
fn target_cgroups(name: &str) -> Result<Vec<PathBuf>> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        bail!("cgroup name {name:?} must be one plain path component");
    }
    let text = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    let mut dirs = Vec::new();
    for m in procfile::mountinfo::entries(&text) {
        // Only mounts of a hierarchy's root: a bind of a subtree is not the node's view.
        if m.root != "/" {
            continue;
        }
        let at = PathBuf::from(m.mount_point);
        match m.fstype {
            "cgroup2" => dirs.push(at.join(name)),
            "cgroup" => dirs.push(at),
            _ => {}
        }
    }
    dirs.sort();
    dirs.dedup();
    if dirs.is_empty() {
        bail!("no cgroup hierarchy is mounted");
    }
    Ok(dirs)
}

/// Start `binary` as the daemon on `mountpoint`, logging to `log`; returns the child
/// (ours to reap until this pod goes).
pub fn start(
    binary: &Path,
    cgroup: &str,
    log: &Path,
    runtime_dir: &Path,
    daemon_args: &[String],
    mountpoint: &Path,
) -> Result<Child> {
    let out = open_log(log)?;
    let err = out.try_clone().context("duplicating the log descriptor")?;
    let child = Command::new(binary)
        .args(["node", "launch", "--cgroup", cgroup, "--"])
        .arg(binary)
        .args(command_line(runtime_dir, daemon_args, mountpoint))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    Ok(child)
}

/// The daemon's options: it keeps serving when its supervisor is stopped, so that the
/// next start (after a crash, or a new pod's) adopts the worker and no container's
/// files break.
pub fn command_line(runtime_dir: &Path, extra: &[String], mountpoint: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["--keep-serving-on-exit".into(), "--runtime-dir".into()];
    v.push(runtime_dir.into());
    v.extend(extra.iter().map(OsString::from));
    v.push(mountpoint.into());
    v
}

fn open_log(log: &Path) -> Result<File> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if std::fs::metadata(log).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let mut old = log.as_os_str().to_owned();
        old.push(".1");
        let _ = std::fs::rename(log, old);
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open the log {}", log.display()))
}

/// Copies what the daemon appends to its log to our stdout (the pod's log).
pub struct LogTail {
    path: PathBuf,
    offset: u64,
}

impl LogTail {
    /// From the log's current end: earlier lines were shown by earlier pods.
    pub fn at_end(path: &Path) -> LogTail {
        let offset = std::fs::metadata(path).map_or(0, |m| m.len());
        LogTail {
            path: path.to_path_buf(),
            offset,
        }
    }

    pub fn copy_new(&mut self) {
        let Ok(mut f) = File::open(&self.path) else {
            return;
        };
        let len = f.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            // Rotated: start over.
            self.offset = 0;
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if let Ok(n) = f.take(1 << 20).read_to_end(&mut buf) {
            self.offset += n as u64;
            let _ = std::io::stdout().write_all(&buf);
            let _ = std::io::stdout().flush();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cgroup_names_are_one_component() {
        for bad in ["", "a/b", "..", ".x"] {
            assert!(target_cgroups(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_daemon_keeps_serving_when_stopped() {
        let v = command_line(
            Path::new("/run"),
            &["--enable-cfs".into()],
            Path::new("/var/lib/lxcfs"),
        );
        assert_eq!(
            v,
            [
                "--keep-serving-on-exit",
                "--runtime-dir",
                "/run",
                "--enable-cfs",
                "/var/lib/lxcfs"
            ]
        );
    }
}
