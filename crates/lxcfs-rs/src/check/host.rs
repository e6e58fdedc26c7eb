//! What the host offers: each probe is one [`Finding`], saying what is lost without it.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::Arc;

use hostview::cgroup::{Backend, Controller, Hierarchies};
use hostview::{Host, Layout, Options};

use super::{Finding, Level};

/// The kernel's release string (`uname -r`).
pub fn kernel_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// Every finding, and the host as the daemon would read it (for `--pid`), when its
/// cgroups can be read.
pub fn check() -> (Vec<Finding>, Option<Arc<Host>>) {
    let release = kernel_release();
    let version = procfile::kernel::release_version(&release);
    let mut out = vec![root(), namespaces(), dev_fuse()];
    let host = Host::open(
        Path::new("/"),
        Options {
            loadavg: true,
            ..Options::default()
        },
    );
    let host = match host {
        Ok(h) => Arc::new(h),
        Err(e) => {
            out.push(
                Finding::new("cgroups", Level::Missing, format!("cannot be read: {e}"))
                    .meaning("lxcfs-rs cannot start: it finds containers by their cgroups"),
            );
            out.extend([
                psi(None),
                passthrough(version, &release),
                resend(version),
                pidfd_getfd(version),
            ]);
            return (out, None);
        }
    };
    // The sampler makes loadavg per container, as in the daemon by default; without
    // it `--pid` would report the host's loadavg where the daemon serves the container's.
    if let Err(e) = host.start_loadavg() {
        out.push(
            Finding::new("load sampler", Level::Limited, format!("cannot start: {e}"))
                .meaning("loadavg would be the host's"),
        );
    }
    let hier = host.hierarchies();
    out.push(Finding::new(
        "cgroup layout",
        Level::Ok,
        format!("{}: {}", host.layout(), hier.describe()),
    ));
    out.extend(controllers(hier, host.layout()));
    out.push(swap_accounting(hier));
    out.push(host_swap());
    out.push(psi(Some(host.layout())));
    out.push(passthrough(version, &release));
    out.push(resend(version));
    out.push(pidns_ioctl(host.has_pidns_ioctl()));
    out.push(pidfd_getfd(version));
    (out, Some(host))
}

fn root() -> Finding {
    if rustix::process::geteuid().is_root() {
        Finding::new("root", Level::Ok, "running as root")
    } else {
        Finding::new("root", Level::Missing, "not root")
            .meaning("lxcfs-rs must run as root; this check reads less without it")
    }
}

fn namespaces() -> Finding {
    match crate::preflight::require_host_namespaces() {
        Ok(()) => Finding::new(
            "host namespaces",
            Level::Ok,
            "in the host's pid, cgroup and mount namespaces",
        ),
        Err(e) => Finding::new("host namespaces", Level::Missing, format!("{e:#}"))
            .meaning("lxcfs-rs refuses to start here without --skip-namespace-check"),
    }
}

fn dev_fuse() -> Finding {
    match std::fs::metadata("/dev/fuse") {
        Ok(m) if m.file_type().is_char_device() => Finding::new("/dev/fuse", Level::Ok, "present"),
        Ok(_) => Finding::new("/dev/fuse", Level::Missing, "not a character device")
            .meaning("nothing can be mounted"),
        Err(e) => Finding::new("/dev/fuse", Level::Missing, format!("{e}"))
            .meaning("nothing can be mounted (modprobe fuse)"),
    }
}

/// Where each controller lives, and what its absence costs.
fn controllers(hier: &Hierarchies, layout: Layout) -> Vec<Finding> {
    let mut out = Vec::new();
    let list: &[(Controller, Level, &str)] = &[
        (
            Controller::Memory,
            Level::Missing,
            "meminfo and swaps show the host's memory to every container",
        ),
        (
            Controller::Cpuset,
            Level::Missing,
            "cpuinfo, stat and the CPU directory list every host CPU",
        ),
        (
            Controller::Cpu,
            Level::Limited,
            "CFS quotas cannot be read: --enable-cfs has no effect and stat's idle assumes the whole cpuset",
        ),
        (
            Controller::Io,
            Level::Limited,
            "diskstats shows the host's devices and counts",
        ),
    ];
    for &(c, absent, meaning) in list {
        let name = match c {
            Controller::Memory => "memory controller",
            Controller::Cpuset => "cpuset controller",
            Controller::Cpu => "cpu controller",
            _ => "io controller",
        };
        out.push(match hier.backend(c) {
            Some(b) => Finding::new(name, Level::Ok, where_is(hier, b)),
            None => Finding::new(name, absent, "not mounted or not enabled").meaning(meaning),
        });
    }
    // v1 keeps CPU time in cpuacct; v2 in cpu.stat, which every group has.
    if layout != Layout::Unified {
        out.push(match hier.backend(Controller::Cpuacct) {
            Some(b) => Finding::new("cpuacct controller", Level::Ok, where_is(hier, b)),
            None => Finding::new("cpuacct controller", Level::Limited, "not mounted")
                .meaning("stat cannot show the container's CPU time"),
        });
    }
    out
}

fn where_is(hier: &Hierarchies, b: Backend) -> String {
    match b {
        Backend::V1(i) => hier.v1.get(i).map_or_else(
            || "cgroup v1".into(),
            |h| format!("cgroup v1 at {}", h.mount_point),
        ),
        Backend::V2 => hier.v2.as_ref().map_or_else(
            || "cgroup v2".into(),
            |h| format!("cgroup v2 at {}", h.mount_point),
        ),
    }
}

/// Whether the kernel accounts swap per cgroup (`swapaccount`).
fn swap_accounting(hier: &Hierarchies) -> Finding {
    const NAME: &str = "swap accounting";
    const WITHOUT: &str = "containers are shown no swap (boot with swapaccount=1)";
    match hier.backend(Controller::Memory) {
        None => Finding::new(NAME, Level::Limited, "no memory controller")
            .meaning("containers are shown no swap"),
        Some(Backend::V1(i)) => {
            let has = hier
                .v1
                .get(i)
                .and_then(|h| h.dir.read_optional("memory.memsw.limit_in_bytes").ok())
                .flatten()
                .is_some();
            if has {
                Finding::new(NAME, Level::Ok, "cgroup v1 memory.memsw.*")
            } else {
                Finding::new(NAME, Level::Limited, "no memory.memsw.* files").meaning(WITHOUT)
            }
        }
        Some(Backend::V2) => {
            // The v2 root has no memory.swap.* files: look at the groups below it.
            let Some(v2) = &hier.v2 else {
                return Finding::new(NAME, Level::Limited, "no cgroup2 mount");
            };
            let mut with_memory = false;
            let mut with_swap = false;
            for e in std::fs::read_dir(&v2.mount_point)
                .into_iter()
                .flatten()
                .flatten()
            {
                let p = e.path();
                with_memory |= p.join("memory.max").exists();
                with_swap |= p.join("memory.swap.max").exists();
            }
            match (with_swap, with_memory) {
                (true, _) => Finding::new(NAME, Level::Ok, "cgroup v2 memory.swap.*"),
                (false, true) => {
                    Finding::new(NAME, Level::Limited, "no memory.swap.* files").meaning(WITHOUT)
                }
                (false, false) => Finding::new(
                    NAME,
                    Level::Ok,
                    "unknown: no group below the root has the memory controller yet",
                ),
            }
        }
    }
}

/// The host's own swap: with none, every container shows none, which is right.
fn host_swap() -> Finding {
    let devices = std::fs::read_to_string("/proc/swaps")
        .map(|s| s.lines().skip(1).filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0);
    Finding::new(
        "host swap",
        Level::Ok,
        if devices == 0 {
            "none: containers show none either".to_string()
        } else {
            format!("{devices} device(s)")
        },
    )
}

/// Pressure stall information: the host's files, and per-cgroup files on cgroup2.
fn psi(layout: Option<Layout>) -> Finding {
    const NAME: &str = "PSI";
    if std::fs::read_to_string("/proc/pressure/cpu").is_err() {
        return Finding::new(NAME, Level::Limited, "no /proc/pressure").meaning(
            "reads of proc/pressure/* fail (kernel without CONFIG_PSI, or booted with psi=0)",
        );
    }
    match layout {
        Some(Layout::Legacy) => Finding::new(NAME, Level::Limited, "no cgroup2 hierarchy")
            .meaning("proc/pressure/* is the host's for every container"),
        _ => Finding::new(
            NAME,
            Level::Ok,
            "/proc/pressure and per-cgroup pressure on cgroup2",
        ),
    }
}

/// FUSE passthrough (Linux 6.9+, `CONFIG_FUSE_PASSTHROUGH`). Only a FUSE connection's
/// handshake tells for sure; the kernel's version and build options are what can be
/// read without mounting.
fn passthrough(version: Option<(u32, u32)>, release: &str) -> Finding {
    const NAME: &str = "FUSE passthrough";
    const WITHOUT: &str = "a private mmap of a served file is filled through the page cache \
        instead of refused (README, Limits), and --fuse-passthrough serves every read itself";
    if version.is_none_or(|v| v < (6, 9)) {
        return Finding::new(NAME, Level::Limited, "needs Linux 6.9").meaning(WITHOUT);
    }
    if version.is_some_and(|v| v < (6, 12)) {
        return Finding::new(
            NAME,
            Level::Limited,
            "Linux 6.9 to 6.11: --fuse-passthrough works, the unmappable backing file needs 6.12",
        )
        .meaning(
            "a private mmap of a served file is filled through the page cache instead of \
             refused (README, Limits)",
        );
    }
    let config = std::fs::read_to_string(format!("/boot/config-{release}")).ok();
    match config
        .as_deref()
        .map(|c| c.lines().any(|l| l == "CONFIG_FUSE_PASSTHROUGH=y"))
    {
        Some(true) => Finding::new(NAME, Level::Ok, "Linux 6.9+ with CONFIG_FUSE_PASSTHROUGH=y"),
        Some(false) => Finding::new(
            NAME,
            Level::Limited,
            "kernel built without CONFIG_FUSE_PASSTHROUGH",
        )
        .meaning(WITHOUT),
        None => Finding::new(
            NAME,
            Level::Ok,
            "Linux 6.9+ (its build options are not readable: the daemon logs whether the kernel offered it)",
        ),
    }
}

fn resend(version: Option<(u32, u32)>) -> Finding {
    const NAME: &str = "FUSE_NOTIFY_RESEND";
    if version.is_some_and(|v| v >= (6, 9)) {
        Finding::new(NAME, Level::Ok, "Linux 6.9+")
    } else {
        Finding::new(NAME, Level::Ok, "not offered (Linux 6.9+)").meaning(
            "the next worker answers the reads a dying worker had taken from the daemon's in-flight table",
        )
    }
}

fn pidns_ioctl(available: bool) -> Finding {
    const NAME: &str = "NS_GET_TGID_FROM_PIDNS";
    if available {
        Finding::new(NAME, Level::Ok, "a reader's container init in one ioctl")
    } else {
        Finding::new(NAME, Level::Limited, "not offered (Linux 6.11+)").meaning(
            "a container's init is found by a /proc walk, once per container (slower first read)",
        )
    }
}

fn pidfd_getfd(version: Option<(u32, u32)>) -> Finding {
    const NAME: &str = "pidfd_getfd";
    if version.is_some_and(|v| v >= (5, 6)) {
        Finding::new(NAME, Level::Ok, "Linux 5.6+")
    } else {
        Finding::new(NAME, Level::Limited, "needs Linux 5.6").meaning(
            "after the supervisor dies, a new lxcfs-rs cannot adopt its worker: restarting ends the mount",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_gates_say_what_is_lost() {
        assert_eq!(resend(Some((6, 9))).level, Level::Ok);
        let old = resend(Some((6, 1)));
        assert_eq!(old.level, Level::Ok, "the in-flight table stands in for it");
        assert!(old.meaning.contains("in-flight table"));
        assert!(!old.meaning.contains("wait"));
        assert_eq!(resend(None).level, Level::Ok);
        assert_eq!(pidfd_getfd(Some((5, 6))).level, Level::Ok);
        assert_eq!(pidfd_getfd(Some((5, 4))).level, Level::Limited);
        assert_eq!(passthrough(Some((6, 1)), "6.1.0").level, Level::Limited);
        assert_eq!(passthrough(Some((6, 10)), "6.10.0").level, Level::Limited);
        assert_eq!(pidns_ioctl(false).level, Level::Limited);
    }
}
