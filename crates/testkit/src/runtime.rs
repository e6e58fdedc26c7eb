//! Real container runtimes for the end-to-end tests: a busybox-static root filesystem,
//! the CDI spec a running mount gives (`lxcfs-rs cdi`), runc bundles made from
//! `runc spec`, and Podman on private storage.
//!
//! Everything a test makes here (bundles, runc state, cgroups, Podman's storage and
//! images, CDI spec files) is removed when its value is dropped, also when the test
//! panics. Nothing is fetched from a registry: the one image is the busybox rootfs.
//! Like the rest of the harness, helpers panic with what failed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::e2e::{DEADLINE, Output, lxcfs_rs, run_deadline, unique, which};
use crate::mounts::{force_unmount, mounts};

// ---------------------------------------------------------------------------------------
// The root filesystem

/// The busybox applets the tests call inside containers.
const APPLETS: [&str; 17] = [
    "sh", "cat", "head", "nproc", "free", "top", "ls", "grep", "sleep", "touch", "echo", "wc",
    "cut", "tr", "uptime", "mkdir", "rm",
];

/// A root filesystem of one static busybox and its applets' symlinks; deleted on drop.
pub struct Rootfs {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Rootfs {
    /// Built from the host's `busybox` (Debian: `busybox-static`); fails, saying so,
    /// when it is missing or dynamically linked (it would not start in a bare rootfs).
    pub fn busybox() -> Rootfs {
        let busybox = which("busybox")
            .unwrap_or_else(|| panic!("no busybox on PATH (install busybox-static)"));
        let elf = fs::read(&busybox).expect("read busybox");
        assert!(
            !has_interpreter(&elf),
            "{} is dynamically linked: it cannot run in a bare rootfs (install busybox-static)",
            busybox.display()
        );
        let dir = tempfile::Builder::new()
            .prefix(&unique("rootfs"))
            .tempdir()
            .expect("create the rootfs dir");
        let path = fs::canonicalize(dir.path()).expect("canonicalize the rootfs dir");
        for d in [
            "bin", "proc", "sys", "dev", "etc", "tmp", "out", "usr", "run",
        ] {
            fs::create_dir(path.join(d)).expect("create a rootfs dir");
        }
        fs::copy(&busybox, path.join("bin/busybox")).expect("copy busybox");
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", path.join("bin").join(a))
                .expect("link an applet");
        }
        // Debian's merged /usr: with the host's /usr bound read-only, its dynamically
        // linked programs (procps free) find their loader and libraries.
        for l in ["lib", "lib64"] {
            std::os::unix::fs::symlink(format!("usr/{l}"), path.join(l)).expect("link lib");
        }
        fs::write(path.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").expect("passwd");
        fs::write(path.join("etc/group"), "root:x:0:\n").expect("group");
        Rootfs { _dir: dir, path }
    }

    /// The rootfs as an uncompressed tarball at `to` (for `podman import`).
    pub fn tarball(&self, to: &Path) {
        run_deadline(
            Command::new("tar")
                .arg("-C")
                .arg(&self.path)
                .arg("-cf")
                .arg(to)
                .arg("."),
            DEADLINE,
        )
        .ok();
    }
}

/// Whether an ELF image has a `PT_INTERP` program header (is dynamically linked).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    assert!(
        elf.starts_with(b"\x7fELF\x02\x01"),
        "busybox is not a little-endian 64-bit ELF"
    );
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        panic!("truncated ELF header in busybox");
    };
    (0..usize::from(phnum)).any(|i| {
        let o = phoff as usize + i * usize::from(phentsize);
        elf.get(o..o + 4) == Some(&3u32.to_le_bytes()[..])
    })
}

// ---------------------------------------------------------------------------------------
// CDI

/// One bind of a CDI device.
#[derive(Debug, Clone, PartialEq)]
pub struct CdiMount {
    pub host_path: String,
    pub container_path: String,
    pub options: Vec<String>,
}

/// The spec `lxcfs-rs cdi MOUNTPOINT` prints.
pub struct CdiSpec {
    pub text: String,
    pub json: Value,
}

impl CdiSpec {
    pub fn of(mnt: &Path) -> CdiSpec {
        let out = run_deadline(Command::new(lxcfs_rs()).arg("cdi").arg(mnt), DEADLINE);
        let text = out.ok().to_string();
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("lxcfs-rs cdi printed no JSON ({e}):\n{text}"));
        CdiSpec { text, json }
    }

    pub fn kind(&self) -> &str {
        self.json["kind"].as_str().expect("the spec's kind")
    }

    /// The mounts of device `name`.
    pub fn device(&self, name: &str) -> Vec<CdiMount> {
        let dev = self.json["devices"]
            .as_array()
            .expect("the spec's devices")
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("no device {name} in {:#}", self.json));
        dev["containerEdits"]["mounts"]
            .as_array()
            .expect("the device's mounts")
            .iter()
            .map(|m| CdiMount {
                host_path: m["hostPath"].as_str().expect("hostPath").into(),
                container_path: m["containerPath"].as_str().expect("containerPath").into(),
                options: m["options"]
                    .as_array()
                    .expect("options")
                    .iter()
                    .map(|o| o.as_str().expect("an option").to_string())
                    .collect(),
            })
            .collect()
    }
}

/// The directory of dynamically generated CDI specs Podman (and containerd, CRI-O)
/// read besides `/etc/cdi`, with priority over it. Podman 4.3 reads no other.
pub const CDI_RUN_DIR: &str = "/var/run/cdi";

/// The spec of a mount written (by `lxcfs-rs cdi --write`) where runtimes look;
/// deleted on drop. One at a time per kind: the caller serializes.
pub struct InstalledSpec {
    pub path: PathBuf,
}

impl InstalledSpec {
    pub fn write(mnt: &Path) -> InstalledSpec {
        let path = Path::new(CDI_RUN_DIR).join("lxcfs-rs.io-proc.json");
        assert!(
            !path.exists(),
            "{} exists: another lxcfs-rs spec is installed (a test left it, or a daemon \
             serves with --dir {CDI_RUN_DIR}); remove it",
            path.display()
        );
        let out = run_deadline(
            Command::new(lxcfs_rs())
                .args(["cdi", "--write", "--dir", CDI_RUN_DIR])
                .arg(mnt),
            DEADLINE,
        );
        out.ok();
        InstalledSpec { path }
    }
}

impl Drop for InstalledSpec {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

// ---------------------------------------------------------------------------------------
// runc

/// A runc bundle: `config.json` from `runc spec`, edited; its own runc state directory
/// (`runc --root`), so nothing it does touches other containers. Drop deletes the
/// container (if still there), its cgroups and the bundle.
pub struct Bundle {
    dir: tempfile::TempDir,
    pub id: String,
    pub config: Value,
}

impl Bundle {
    /// A container of `rootfs` running `sh -c script`, in cgroup `/<id>` of every
    /// hierarchy (runc's cgroupfs driver).
    pub fn new(rootfs: &Rootfs, script: &str) -> Bundle {
        let id = unique("runc");
        let dir = tempfile::Builder::new()
            .prefix(&id)
            .tempdir()
            .expect("create the bundle dir");
        fs::create_dir(dir.path().join("state")).expect("create the runc state dir");
        run_deadline(
            Command::new("runc").arg("spec").current_dir(dir.path()),
            DEADLINE,
        )
        .ok();
        let text = fs::read_to_string(dir.path().join("config.json")).expect("runc spec's file");
        let mut config: Value = serde_json::from_str(&text).expect("runc spec's JSON");
        config["root"] = json!({ "path": rootfs.path, "readonly": true });
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["/bin/sh", "-c", script]);
        config["hostname"] = json!("runc-e2e");
        config["linux"]["cgroupsPath"] = json!(format!("/{id}"));
        Bundle { dir, id, config }
    }

    fn resources(&mut self) -> &mut Value {
        let linux = &mut self.config["linux"];
        if linux.get("resources").is_none() {
            linux["resources"] = json!({});
        }
        &mut linux["resources"]
    }

    pub fn memory_limit(&mut self, bytes: u64) -> &mut Self {
        self.resources()["memory"] = json!({ "limit": bytes });
        self
    }

    /// `cpus` as cpuset.cpus takes it; the memory nodes of the host's root.
    pub fn cpuset(&mut self, cpus: &str) -> &mut Self {
        let mems = host_mems();
        let cpu = &mut self.resources()["cpu"];
        if cpu.is_null() {
            *cpu = json!({});
        }
        cpu["cpus"] = json!(cpus);
        cpu["mems"] = json!(mems);
        self
    }

    pub fn cpu_quota(&mut self, quota: i64, period: u64) -> &mut Self {
        let cpu = &mut self.resources()["cpu"];
        if cpu.is_null() {
            *cpu = json!({});
        }
        cpu["quota"] = json!(quota);
        cpu["period"] = json!(period);
        self
    }

    pub fn bind(&mut self, host: &Path, dest: &str, options: &[&str]) -> &mut Self {
        let mounts = self.config["mounts"]
            .as_array_mut()
            .expect("runc spec has mounts");
        mounts.push(json!({
            "destination": dest,
            "type": "bind",
            "source": host,
            "options": options,
        }));
        self
    }

    /// As a Kubernetes pod with `hostPID: true` and `privileged: true` runs: in the
    /// host's pid namespace, with every capability, nothing masked or read-only.
    pub fn host_pid_privileged(&mut self) -> &mut Self {
        let linux = &mut self.config["linux"];
        if let Some(ns) = linux["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "pid");
        }
        linux["maskedPaths"] = json!([]);
        // Every device, /dev/fuse included (the devices controller on v1, eBPF on v2).
        self.resources()["devices"] = json!([{ "allow": true, "access": "rwm" }]);
        let linux = &mut self.config["linux"];
        linux["readonlyPaths"] = json!([]);
        // Every capability we hold, as a runtime gives a privileged container its own.
        let bounding = fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapBnd:"))
                    .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
            })
            .expect("CapBnd in /proc/self/status");
        let all: Vec<String> = (0..=40)
            .filter(|n| bounding & (1u64 << n) != 0)
            .filter_map(cap_name)
            .map(String::from)
            .collect();
        let caps = &mut self.config["process"]["capabilities"];
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            caps[set] = json!(all);
        }
        self.config["process"]["noNewPrivileges"] = json!(false);
        self
    }

    /// What a runtime does to delete a container: SIGKILL to every process in its
    /// cgroup (`runc kill --all`), then `runc delete`.
    pub fn kill_all(&self) {
        run_deadline(
            Command::new("runc")
                .arg("--root")
                .arg(self.dir.path().join("state"))
                .args(["kill", "--all"])
                .arg(&self.id)
                .arg("KILL"),
            DEADLINE,
        )
        .ok();
    }

    /// The binds of a CDI device, as a CDI runtime adds them to the OCI spec.
    pub fn cdi(&mut self, mounts: &[CdiMount]) -> &mut Self {
        for m in mounts {
            let opts: Vec<&str> = m.options.iter().map(String::as_str).collect();
            self.bind(Path::new(&m.host_path), &m.container_path, &opts);
        }
        self
    }

    fn command(&self, verb: &str) -> Command {
        fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_string_pretty(&self.config).expect("serialize config.json"),
        )
        .expect("write config.json");
        let mut c = Command::new("runc");
        c.arg("--root")
            .arg(self.dir.path().join("state"))
            .arg(verb)
            .arg("--bundle")
            .arg(self.dir.path())
            .arg(&self.id);
        c
    }

    /// `runc run` to completion (the container's exit status is runc's).
    pub fn run(&self, timeout: Duration) -> Output {
        run_deadline(&mut self.command("run"), timeout)
    }

    /// `runc run` in the background, its output piped.
    pub fn spawn(&self) -> Child {
        self.command("run")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start runc run")
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // runc run removes an exited container and its cgroups itself; this is for a
        // test that panicked while it ran.
        let _ = Command::new("runc")
            .arg("--root")
            .arg(self.dir.path().join("state"))
            .args(["delete", "--force"])
            .arg(&self.id)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        remove_cgroups(&self.id);
        unmount_under(self.dir.path());
    }
}

/// The capabilities runc 1.1 knows, by number (linux/capability.h).
fn cap_name(n: u32) -> Option<&'static str> {
    const NAMES: [&str; 41] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    NAMES.get(n as usize).copied()
}

/// The memory nodes of the root cpuset (v1 or v2), for a cpuset runc must fill.
fn host_mems() -> String {
    for p in [
        "/sys/fs/cgroup/cpuset/cpuset.mems",
        "/sys/fs/cgroup/cpuset.mems.effective",
    ] {
        if let Ok(s) = fs::read_to_string(p) {
            return s.trim().to_string();
        }
    }
    "0".into()
}

/// rmdir `/<name>` in every cgroup hierarchy where it is left.
fn remove_cgroups(name: &str) {
    for m in mounts() {
        if m.fstype == "cgroup" || m.fstype == "cgroup2" {
            let _ = fs::remove_dir(Path::new(&m.mount_point).join(name));
        }
    }
}

/// Detach whatever a runtime left mounted under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let mut left: Vec<String> = mounts()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    left.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in left {
        force_unmount(Path::new(&p));
    }
}

// ---------------------------------------------------------------------------------------
// Podman

/// Podman with storage, run state and the one image (the busybox rootfs, imported) of
/// its own in a temporary directory; the global flags this machine needs (no systemd:
/// cgroupfs and file events) on every call. Drop removes containers, image and storage.
pub struct Podman {
    dir: tempfile::TempDir,
    pub image: String,
    /// `--cgroup-parent` of its containers: with the cgroupfs manager Podman leaves
    /// `<parent>/conmon` behind (`/libpod_parent/conmon` without one), so drop removes it.
    cgroup_parent: String,
}

impl Podman {
    pub fn new(rootfs: &Rootfs) -> Podman {
        let dir = tempfile::Builder::new()
            .prefix(&unique("podman"))
            .tempdir()
            .expect("create podman's dir");
        let p = Podman {
            dir,
            image: format!("localhost/{}", unique("busybox")),
            cgroup_parent: unique("podman"),
        };
        let tar = p.dir.path().join("rootfs.tar");
        rootfs.tarball(&tar);
        let image = p.image.clone();
        run_deadline(p.cmd().arg("import").arg(&tar).arg(&image), DEADLINE).ok();
        p
    }

    /// `podman` with this instance's global flags.
    pub fn cmd(&self) -> Command {
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

    /// `podman run --rm` of the image with `flags`, running `sh -c script`: runc (crun
    /// refuses this hybrid host), no network (nothing touches the host's interfaces or
    /// firewall), the rlimits this sandbox allows.
    pub fn run(&self, flags: &[&str], script: &str, timeout: Duration) -> Output {
        run_deadline(
            self.cmd()
                .args(["run", "--rm", "--runtime", "runc", "--network", "none"])
                .args([
                    "--ulimit",
                    "nofile=1024:1024",
                    "--ulimit",
                    "nproc=1024:1024",
                ])
                .arg(format!("--cgroup-parent=/{}", self.cgroup_parent))
                .args(flags)
                .arg(&self.image)
                .args(["/bin/sh", "-c", script]),
            timeout,
        )
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

// ---------------------------------------------------------------------------------------
// Docker

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
        run_deadline(
            self.cmd()
                .args(["run", "--rm", "--network", "none"])
                .args(flags)
                .arg(&self.image)
                .args(["/bin/sh", "-c", script]),
            timeout,
        )
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

// ---------------------------------------------------------------------------------------
// LXC

/// An LXC container (Debian's lxc 5.0) of the busybox rootfs, with a config written
/// here and its own lxcpath, run to completion with `lxc-execute`. Drop removes its
/// directory and the cgroups LXC leaves.
pub struct Lxc {
    dir: tempfile::TempDir,
    pub name: String,
    lines: Vec<String>,
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
        Lxc { dir, name, lines }
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

    /// The binds of a CDI device as `lxc.mount.entry` lines (destinations relative to
    /// the rootfs; created when the rootfs lacks them).
    pub fn cdi(&mut self, mounts: &[CdiMount]) -> &mut Self {
        for m in mounts {
            let create = if Path::new(&m.host_path).is_dir() {
                "dir"
            } else {
                "file"
            };
            self.line(&format!(
                "lxc.mount.entry = {} {} none bind,ro,create={create} 0 0",
                m.host_path,
                m.container_path.trim_start_matches('/')
            ));
        }
        self
    }

    /// `lxc-execute` of `sh -c script`, to completion.
    pub fn run(&self, script: &str, timeout: Duration) -> Output {
        fs::write(
            self.dir.path().join(&self.name).join("config"),
            self.lines.join("\n") + "\n",
        )
        .expect("write the LXC config");
        run_deadline(
            Command::new("lxc-execute")
                .arg("-n")
                .arg(&self.name)
                .arg("-P")
                .arg(self.dir.path())
                .arg("-o")
                .arg(self.dir.path().join("log"))
                .args(["-l", "INFO", "--", "/bin/sh", "-c", script]),
            timeout,
        )
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
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
