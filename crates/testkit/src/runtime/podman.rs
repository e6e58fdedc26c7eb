//! Podman on private storage, with runc or crun.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Oci, Rootfs, remove_cgroups, unmount_under};
use crate::e2e::{DEADLINE, Output, run_deadline, unique};

/// Podman with storage, run state and the one image (the busybox rootfs, imported) of
/// its own in a temporary directory; the global flags this machine needs (no systemd:
/// cgroupfs and file events) on every call. Drop removes containers, image and storage.
pub struct Podman {
    dir: tempfile::TempDir,
    oci: Oci,
    pub image: String,
    /// `--cgroup-parent` of its containers: with the cgroupfs manager Podman leaves
    /// `<parent>/conmon` behind (`/libpod_parent/conmon` without one), so drop removes it.
    cgroup_parent: String,
}

impl Podman {
    /// Running its containers with runc.
    pub fn new(rootfs: &Rootfs) -> Podman {
        Podman::with(Oci::Runc, rootfs)
    }

    /// Running its containers with `oci` (`--runtime`).
    pub fn with(oci: Oci, rootfs: &Rootfs) -> Podman {
        let dir = tempfile::Builder::new()
            .prefix(&unique("podman"))
            .tempdir()
            .expect("create podman's dir");
        let p = Podman {
            dir,
            oci,
            image: format!("localhost/{}", unique("busybox")),
            cgroup_parent: unique("podman"),
        };
        let tar = p.dir.path().join("rootfs.tar");
        rootfs.tarball(&tar);
        let image = p.image.clone();
        run_deadline(p.cmd().arg("import").arg(&tar).arg(&image), DEADLINE).ok();
        p
    }

    /// `podman` with this instance's global flags (and, with crun, what lets crun run
    /// on this host: [`super::crun_command`]).
    pub fn cmd(&self) -> Command {
        let c = self.bare_cmd();
        match self.oci {
            Oci::Runc => c,
            Oci::Crun => super::crun_command(c),
        }
    }

    fn bare_cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            // vfs: plain directories, nothing mounted that could outlive a test.
            .arg("--storage-driver=vfs")
            // No systemd as pid 1 here: no systemd cgroups, no journald.
            .arg("--cgroup-manager=cgroupfs")
            .arg("--events-backend=file")
            .arg("--tmpdir")
            .arg(self.dir.path().join("tmp"));
        c
    }

    /// `podman run --rm` of the image with `flags`, running `sh -c script`: its
    /// runtime, no network (nothing touches the host's interfaces or firewall), the
    /// rlimits this sandbox allows.
    pub fn run(&self, flags: &[&str], script: &str, timeout: Duration) -> Output {
        run_deadline(&mut self.run_cmd(flags, script), timeout)
    }

    /// [`Podman::run`] in the background, its output piped.
    pub fn spawn(&self, flags: &[&str], script: &str) -> Child {
        self.run_cmd(flags, script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start podman run")
    }

    fn run_cmd(&self, flags: &[&str], script: &str) -> Command {
        let mut c = self.cmd();
        c.args([
            "run",
            "--rm",
            "--runtime",
            self.oci.name(),
            "--network",
            "none",
        ])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .arg(format!("--cgroup-parent=/{}", self.cgroup_parent))
        .args(flags)
        .arg(&self.image)
        .args(["/bin/sh", "-c", script]);
        c
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for args in [
            &["rm", "--all", "--force", "--time", "0"][..],
            &["rmi", "--all", "--force"][..],
        ] {
            let _ = self
                .cmd()
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        unmount_under(self.dir.path());
        remove_cgroups(&format!("{}/conmon", self.cgroup_parent));
        remove_cgroups(&self.cgroup_parent);
    }
}
