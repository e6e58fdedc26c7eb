//! Real container runtimes for the end-to-end tests: a busybox-static root filesystem,
//! the CDI spec a running mount gives (`lxcfs-rs cdi`), OCI bundles for runc and crun
//! ([`Bundle`]), Podman on private storage, a dockerd of the test's own, LXC with the
//! package's hook, and the read loop every runtime's container runs through a worker
//! kill and a live upgrade ([`ReadLoop`]).
//!
//! Everything a test makes here (bundles, runtime state, cgroups, Podman's and
//! Docker's storage and images, CDI spec files, LXC paths) is removed when its value is
//! dropped, also when the test panics. Nothing is fetched from a registry: the one image
//! is the busybox rootfs. Like the rest of the harness, helpers panic with what failed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::e2e::{DEADLINE, lxcfs_rs, run_deadline, unique, which};
use crate::mounts::{force_unmount, mounts};

mod docker;
mod lxc;
mod podman;
mod readloop;
mod runc;
pub mod tools;

pub use docker::{DOCKER, DOCKERD, Dockerd};
pub use lxc::{LXC_CONF, LXC_HOOK, LXC_MOUNTPOINT, Lxc};
pub use podman::Podman;
pub use readloop::ReadLoop;
pub use runc::{Bundle, Oci, crun_command};

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

    /// Copies the host's `tools` (found on PATH, dynamically linked ones with the
    /// libraries their loader lists) to `/usr/bin` of the rootfs, so that containers run
    /// the real ones (procps `free`, util-linux `lscpu`) without the host's `/usr`
    /// bound: hosts without `ldd` or a merged `/usr` (the pure-v2 VM) have them too.
    pub fn with_tools(self, tools: &[&str]) -> Rootfs {
        let usr_bin = self.path.join("usr/bin");
        // The targets of the rootfs's lib and lib64 links, where the loader looks.
        for d in ["usr/bin", "usr/lib", "usr/lib64"] {
            fs::create_dir_all(self.path.join(d)).expect("create a rootfs dir");
        }
        for t in tools {
            let bin = which(t).unwrap_or_else(|| panic!("no {t} on PATH to copy into the rootfs"));
            fs::copy(&bin, usr_bin.join(t)).expect("copy a tool");
            for lib in shared_libraries(&bin) {
                let to = self
                    .path
                    .join(lib.strip_prefix("/").expect("an absolute path"));
                if to.exists() {
                    continue;
                }
                fs::create_dir_all(to.parent().expect("a library's dir")).expect("mkdir");
                fs::copy(&lib, &to)
                    .unwrap_or_else(|e| panic!("copy {} into the rootfs: {e}", lib.display()));
            }
        }
        self
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

/// The shared libraries (and loader) `bin` loads, as its dynamic loader lists them when
/// asked to trace instead of run (what `ldd` does): `name => /path (0x...)` and
/// `/loader/path (0x...)` lines. None for a static binary.
fn shared_libraries(bin: &Path) -> Vec<PathBuf> {
    let out = Command::new(bin)
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .output()
        .unwrap_or_else(|e| panic!("run {} to list its libraries: {e}", bin.display()));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next(),
                None => l.split_whitespace().next(),
            }?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
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

/// The lock [`InstalledSpec`] takes: beside the runtimes' spec directories rather than
/// in one (runtimes read what is there).
pub const SPEC_LOCK: &str = "/run/lxcfs-rs-e2e-cdi.lock";

/// The spec of a mount written (by `lxcfs-rs cdi --write`) where runtimes look;
/// deleted on drop. One at a time on the machine: the spec's path is fixed, so test
/// processes (several worktrees, several binaries) take turns through an exclusive
/// lock on [`SPEC_LOCK`], held until drop.
pub struct InstalledSpec {
    pub path: PathBuf,
    _turn: fs::File,
}

impl InstalledSpec {
    pub fn write(mnt: &Path) -> InstalledSpec {
        fs::create_dir_all(CDI_RUN_DIR).expect("create the CDI spec directory");
        let turn = fs::File::create(SPEC_LOCK).expect("create the spec's lock file");
        rustix::fs::flock(&turn, rustix::fs::FlockOperation::LockExclusive)
            .expect("lock the spec's lock file");
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
        InstalledSpec { path, _turn: turn }
    }
}

impl Drop for InstalledSpec {
    fn drop(&mut self) {
        // Before the lock goes with `_turn`.
        let _ = fs::remove_file(&self.path);
    }
}

/// rmdir `/<name>` in every cgroup hierarchy where it is left.
pub(crate) fn remove_cgroups(name: &str) {
    for m in mounts() {
        if m.fstype == "cgroup" || m.fstype == "cgroup2" {
            let _ = fs::remove_dir(Path::new(&m.mount_point).join(name));
        }
    }
}

/// Detach whatever a runtime left mounted under `dir`, deepest first.
pub(crate) fn unmount_under(dir: &Path) {
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
