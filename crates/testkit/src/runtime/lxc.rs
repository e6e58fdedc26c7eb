//! LXC containers, with the LXC files of the Debian package where a user has them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Rootfs, remove_cgroups, unmount_under};
use crate::e2e::{Output, run_deadline, unique};

/// Where the Debian package installs its LXC mount hook (`crates/lxcfs-rs/Cargo.toml`).
pub const LXC_HOOK: &str = "/usr/share/lxcfs-rs/lxc.mount.hook";
/// Where it installs the config snippet enabling the hook; every config including
/// LXC's `common.conf` reads it.
pub const LXC_CONF: &str = "/usr/share/lxc/config/common.conf.d/00-lxcfs-rs.conf";
/// Where the hook looks for the mount (the unit's mountpoint, LXCFS's too).
pub const LXC_MOUNTPOINT: &str = "/var/lib/lxcfs";

/// The files as the repository has them, so tests run what the package ships.
const HOOK_TEXT: &str = include_str!("../../../../deploy/lxc/lxc.mount.hook");
const CONF_TEXT: &str = include_str!("../../../../deploy/lxc/00-lxcfs-rs.conf");

/// An LXC container (Debian's lxc 5.0) of the busybox rootfs, with a config written
/// here and its own lxcpath, run with `lxc-execute`, its log at DEBUG level (where LXC
/// puts what hooks print). Drop removes its directory and the cgroups LXC leaves.
pub struct Lxc {
    dir: tempfile::TempDir,
    pub name: String,
    lines: Vec<String>,
    /// Set by [`Lxc::installed`]: the host as the package makes it, in a mount
    /// namespace of the container's own.
    host: Option<Host>,
}

struct Host {
    /// What `LXC_MOUNTPOINT` is there: this mount bound, or nothing mounted.
    serving: Option<PathBuf>,
}

impl Lxc {
    /// No network (`lxc.net.0.type = empty`), the kernel's /proc and a read-only /sys
    /// as LXC mounts them, a /dev of its own.
    pub fn new(rootfs: &Rootfs) -> Lxc {
        let name = unique("lxc");
        let dir = tempfile::Builder::new()
            .prefix(&name)
            .tempdir()
            .expect("create the lxcpath");
        fs::create_dir(dir.path().join(&name)).expect("create the container's dir");
        let lines = vec![
            format!("lxc.uts.name = {name}"),
            format!("lxc.rootfs.path = dir:{}", rootfs.path.display()),
            "lxc.net.0.type = empty".into(),
            "lxc.mount.auto = proc:mixed sys:ro cgroup:mixed".into(),
            "lxc.autodev = 1".into(),
        ];
        Lxc {
            dir,
            name,
            lines,
            host: None,
        }
    }

    /// A config line as `lxc.container.conf(5)` writes it.
    pub fn line(&mut self, line: &str) -> &mut Self {
        self.lines.push(line.to_string());
        self
    }

    /// Memory limit and cpuset in the keys of this host's memory hierarchy (v1
    /// `lxc.cgroup.*`, v2 `lxc.cgroup2.*`).
    pub fn limits(&mut self, memory: u64, cpus: &str) -> &mut Self {
        if Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
            self.line(&format!("lxc.cgroup.memory.limit_in_bytes = {memory}"));
            self.line(&format!("lxc.cgroup.cpuset.cpus = {cpus}"))
        } else {
            self.line(&format!("lxc.cgroup2.memory.max = {memory}"));
            self.line(&format!("lxc.cgroup2.cpuset.cpus = {cpus}"))
        }
    }

    /// A CFS quota of `quota` µs per `period` µs, in this host's CPU controller's keys.
    pub fn cpu_quota(&mut self, quota: u64, period: u64) -> &mut Self {
        if Path::new("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists() {
            self.line(&format!("lxc.cgroup.cpu.cfs_period_us = {period}"));
            self.line(&format!("lxc.cgroup.cpu.cfs_quota_us = {quota}"))
        } else {
            self.line(&format!("lxc.cgroup2.cpu.max = {quota} {period}"))
        }
    }

    /// `host` bound read-write at `/out` in the container.
    pub fn out_dir(&mut self, host: &Path) -> &mut Self {
        self.line(&format!(
            "lxc.mount.entry = {} out none bind,create=dir 0 0",
            host.display()
        ))
    }

    /// Run the container on the host as a user with the package installed has it,
    /// without touching this host: in a mount namespace of its own, the package's
    /// hook and config snippet (this repository's `deploy/lxc/`) at [`LXC_HOOK`] and
    /// [`LXC_CONF`] (over the host's `/usr/share`, Debian's `lxcfs` files staying
    /// visible beside them), and at [`LXC_MOUNTPOINT`] the mount `serving` (a test
    /// daemon's) or, with `None`, nothing (whatever the host has there is detached).
    /// The config still has to include the snippet, as a user's does.
    pub fn installed(&mut self, serving: Option<&Path>) -> &mut Self {
        let up = self.dir.path().join("usr-share");
        let hook = up.join(LXC_HOOK.trim_start_matches("/usr/share/"));
        let conf = up.join(LXC_CONF.trim_start_matches("/usr/share/"));
        for (path, text, mode) in [(&hook, HOOK_TEXT, 0o755), (&conf, CONF_TEXT, 0o644)] {
            fs::create_dir_all(path.parent().expect("a parent")).expect("create the overlay");
            fs::write(path, text).expect("write a package file");
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
        }
        for d in ["usr-share.work", "var-lib/lxcfs", "var-lib.work"] {
            fs::create_dir_all(self.dir.path().join(d)).expect("create the overlay");
        }
        self.host = Some(Host {
            serving: serving.map(Path::to_path_buf),
        });
        self
    }

    fn command(&self, script: &str) -> Command {
        fs::write(
            self.dir.path().join(&self.name).join("config"),
            self.lines.join("\n") + "\n",
        )
        .expect("write the LXC config");
        let mut c = match &self.host {
            None => Command::new("lxc-execute"),
            Some(host) => {
                // Overlays, so the host's /usr/share and /var/lib stay as they are
                // and only this namespace sees the package's files.
                let d = self.dir.path().display();
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "--", "sh", "-euc"])
                    .arg(format!(
                        r#"
mount -t overlay overlay -o lowerdir=/usr/share,upperdir={d}/usr-share,workdir={d}/usr-share.work /usr/share
if [ ! -d {LXC_MOUNTPOINT} ]; then
    mount -t overlay overlay -o lowerdir=/var/lib,upperdir={d}/var-lib,workdir={d}/var-lib.work /var/lib
fi
while mountpoint -q {LXC_MOUNTPOINT}; do umount -l {LXC_MOUNTPOINT}; done
if [ -n "$1" ]; then mount --bind "$1" {LXC_MOUNTPOINT}; fi
shift
exec "$@"
"#
                    ))
                    .arg("sh")
                    .arg(host.serving.as_deref().unwrap_or(Path::new("")))
                    .arg("lxc-execute");
                c
            }
        };
        c.arg("-n")
            .arg(&self.name)
            .arg("-P")
            .arg(self.dir.path())
            .arg("-o")
            .arg(self.dir.path().join("log"))
            .args(["-l", "DEBUG", "--", "/bin/sh", "-c", script]);
        c
    }

    /// `lxc-execute` of `sh -c script`, to completion.
    pub fn run(&self, script: &str, timeout: Duration) -> Output {
        run_deadline(&mut self.command(script), timeout)
    }

    /// [`Lxc::run`] in the background, its output piped.
    pub fn spawn(&self, script: &str) -> Child {
        self.command(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lxc-execute")
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// What the mount hooks printed (LXC logs it at DEBUG level, one entry per hook
    /// run: `Script exec HOOK ARGS produced output: ...`).
    pub fn hook_output(&self, hook: &str) -> String {
        let log = self.log_text();
        let mark = format!("Script exec {hook} ");
        let Some(start) = log.find(&mark) else {
            return String::new();
        };
        let rest = &log[start..];
        let rest = rest
            .find("produced output: ")
            .map_or(rest, |i| &rest[i + "produced output: ".len()..]);
        // The entry ends where LXC's next log line starts.
        let end = rest.find("\nlxc-execute ").unwrap_or(rest.len());
        rest[..end].trim().to_string()
    }
}

impl Drop for Lxc {
    fn drop(&mut self) {
        let _ = Command::new("lxc-stop")
            .args(["-k", "-n", &self.name, "-P"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        unmount_under(self.dir.path());
        for c in ["payload", "monitor"] {
            remove_cgroups(&format!("lxc.{c}.{}", self.name));
        }
        // Where LXC's monitor moves itself on exit; shared, so only when empty.
        remove_cgroups("lxc.pivot");
    }
}
