//! A dockerd of the test's own.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Rootfs, remove_cgroups, unmount_under};
use crate::e2e::{DEADLINE, Output, run_deadline, unique};

/// A `dockerd` of its own (Debian's docker.io, started here: no systemd as pid 1), with
/// data, run state and socket in a temporary directory: no iptables rules, no bridge,
/// cgroupfs under a cgroup of its own, vfs storage; the busybox rootfs imported as its
/// one image. Drop stops it (and the containerd it started) and removes it all.
pub struct Dockerd {
    dir: tempfile::TempDir,
    child: Child,
    pub image: String,
    cgroup_parent: String,
}

/// Debian's client: `/usr/local/bin/docker`, when there, is a newer client only that
/// comes first in PATH.
pub const DOCKER: &str = "/usr/bin/docker";
pub const DOCKERD: &str = "/usr/sbin/dockerd";

impl Dockerd {
    pub fn start(rootfs: &Rootfs) -> Dockerd {
        for b in [DOCKER, DOCKERD] {
            assert!(Path::new(b).is_file(), "{b} is missing (install docker.io)");
        }
        // Short: the socket path must fit in sun_path.
        let dir = tempfile::Builder::new()
            .prefix("lxcfsrs-dockerd")
            .tempdir()
            .expect("create dockerd's dir");
        let cgroup_parent = unique("docker");
        let log = fs::File::create(dir.path().join("dockerd.log")).expect("dockerd's log");
        let child = Command::new(DOCKERD)
            .arg("--host")
            .arg(format!(
                "unix://{}",
                dir.path().join("docker.sock").display()
            ))
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("dockerd.pid"))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
                "--exec-opt=native.cgroupdriver=cgroupfs",
                "--default-ulimit=nofile=1024:1024",
                "--default-ulimit=nproc=1024:1024",
            ])
            .arg(format!("--cgroup-parent=/{cgroup_parent}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup the log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let d = Dockerd {
            dir,
            child,
            image: unique("busybox"),
            cgroup_parent,
        };
        crate::e2e::poll(DEADLINE, "dockerd to answer", || {
            let out = d.cmd().arg("version").output().ok()?;
            out.status.success().then_some(())
        });
        let tar = d.dir.path().join("rootfs.tar");
        rootfs.tarball(&tar);
        run_deadline(d.cmd().arg("import").arg(&tar).arg(&d.image), DEADLINE).ok();
        d
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// The client, talking to this daemon.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg("--host").arg(format!(
            "unix://{}",
            self.dir.path().join("docker.sock").display()
        ));
        c
    }

    /// `docker run --rm` of the image with `flags` (no network) running `sh -c script`.
    pub fn run(&self, flags: &[&str], script: &str, timeout: Duration) -> Output {
        run_deadline(&mut self.run_cmd(flags, script), timeout)
    }

    /// [`Dockerd::run`] in the background, its output piped.
    pub fn spawn(&self, flags: &[&str], script: &str) -> Child {
        self.run_cmd(flags, script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start docker run")
    }

    fn run_cmd(&self, flags: &[&str], script: &str) -> Command {
        let mut c = self.cmd();
        c.args(["run", "--rm", "--network", "none"])
            .args(flags)
            .arg(&self.image)
            .args(["/bin/sh", "-c", script]);
        c
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .args(["rm", "--force"])
            .args(
                self.cmd()
                    .args(["ps", "-aq"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid).expect("a child's pid"),
                rustix::process::Signal::TERM,
            );
        }
        if crate::e2e::wait_deadline(&mut self.child, DEADLINE).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        unmount_under(self.dir.path());
        remove_cgroups(&self.cgroup_parent);
    }
}
