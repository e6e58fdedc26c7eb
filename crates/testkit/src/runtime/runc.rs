//! OCI bundles run by runc or crun directly.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::{CdiMount, Rootfs, remove_cgroups, unmount_under};
use crate::e2e::{DEADLINE, Output, run_deadline, unique};

/// The OCI runtime a bundle runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oci {
    /// Debian's runc (1.1.5): it refuses binds under /proc outside its allow-list.
    Runc,
    /// Debian's crun (1.8.1), which has no such list. On a hybrid host it runs with
    /// the cgroup2 mount hidden from it ([`crun_command`]).
    Crun,
}

impl Oci {
    pub fn name(self) -> &'static str {
        match self {
            Oci::Runc => "runc",
            Oci::Crun => "crun",
        }
    }

    /// The runtime's binary, as this host lets it run.
    pub fn command(self) -> Command {
        match self {
            Oci::Runc => Command::new("runc"),
            Oci::Crun => crun_command(Command::new("crun")),
        }
    }
}

/// The cgroup2 mount of a hybrid host (v1 controllers under a tmpfs, cgroup2 beside
/// them), if this is one.
const HYBRID_UNIFIED: &str = "/sys/fs/cgroup/unified";

/// `cmd`, which runs crun (itself, or Podman or conmon calling it), made to run on this
/// host. crun 1.8 refuses a hybrid host whose cgroup2 hierarchy still has controllers
/// ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2": here
/// `hugetlb`, the one controller no v1 hierarchy took). With the cgroup2 mount
/// unmounted in a mount namespace of its own it sees a legacy (v1-only) host and runs
/// there, placing the container in the v1 hierarchies as runc does. Elsewhere (pure v2,
/// pure v1, or every controller on v1) `cmd` unchanged.
pub fn crun_command(cmd: Command) -> Command {
    let hybrid = crate::mounts::mounts()
        .iter()
        .any(|m| m.mount_point == HYBRID_UNIFIED && m.fstype == "cgroup2");
    if !hybrid {
        return cmd;
    }
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(format!("umount {HYBRID_UNIFIED} && exec \"$@\""))
        .arg("sh")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// An OCI bundle: `config.json` from the runtime's `spec`, edited; its own state
/// directory (`--root`), so nothing it does touches other containers. Drop deletes the
/// container (if still there), its cgroups and the bundle.
pub struct Bundle {
    dir: tempfile::TempDir,
    oci: Oci,
    pub id: String,
    pub config: Value,
}

impl Bundle {
    /// A runc container of `rootfs` running `sh -c script`, in cgroup `/<id>` of every
    /// hierarchy (runc's cgroupfs driver).
    pub fn new(rootfs: &Rootfs, script: &str) -> Bundle {
        Bundle::with(Oci::Runc, rootfs, script)
    }

    /// Like [`Bundle::new`], run by `oci`, its `config.json` from `oci spec`.
    pub fn with(oci: Oci, rootfs: &Rootfs, script: &str) -> Bundle {
        let id = unique(oci.name());
        let dir = tempfile::Builder::new()
            .prefix(&id)
            .tempdir()
            .expect("create the bundle dir");
        fs::create_dir(dir.path().join("state")).expect("create the runtime's state dir");
        run_deadline(
            Command::new(oci.name()).arg("spec").current_dir(dir.path()),
            DEADLINE,
        )
        .ok();
        let text = fs::read_to_string(dir.path().join("config.json")).expect("the spec's file");
        let mut config: Value = serde_json::from_str(&text).expect("the spec's JSON");
        config["root"] = json!({ "path": rootfs.path, "readonly": true });
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["/bin/sh", "-c", script]);
        config["hostname"] = json!(format!("{}-e2e", oci.name()));
        config["linux"]["cgroupsPath"] = json!(format!("/{id}"));
        Bundle {
            dir,
            oci,
            id,
            config,
        }
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
    /// cgroup (`kill --all`), then `delete`.
    pub fn kill_all(&self) {
        run_deadline(
            self.oci
                .command()
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
        let mut c = self.oci.command();
        c.arg("--root").arg(self.dir.path().join("state")).arg(verb);
        // pivot_root(2) refuses the initial ramfs as the old root (EINVAL): on a host
        // running from its initramfs (the pure-v2 VM) the runtime must chroot instead.
        if root_is_initramfs() {
            c.arg("--no-pivot");
        }
        c.arg("--bundle").arg(self.dir.path()).arg(&self.id);
        c
    }

    /// `run` to completion (the container's exit status is the runtime's).
    pub fn run(&self, timeout: Duration) -> Output {
        run_deadline(&mut self.command("run"), timeout)
    }

    /// `run` in the background, its output piped.
    pub fn spawn(&self) -> Child {
        self.command("run")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {} run: {e}", self.oci.name()))
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // `run` removes an exited container and its cgroups itself; this is for a test
        // that panicked while it ran.
        let _ = self
            .oci
            .command()
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

/// The memory nodes of the root cpuset (v1 or v2), for a cpuset the runtime must fill.
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

/// Whether `/` is the kernel's initial rootfs (the initramfs, never switched from).
fn root_is_initramfs() -> bool {
    crate::mounts::mounts()
        .iter()
        .rev()
        .find(|m| m.mount_point == "/")
        .is_some_and(|m| m.fstype == "rootfs" || m.fstype == "ramfs")
}
