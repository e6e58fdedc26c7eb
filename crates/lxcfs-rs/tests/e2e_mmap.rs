//! End to end: `mmap(2)` of a served file, by Python's `mmap` in a container, against
//! the kernel's own `/proc/meminfo` (the oracle: refused, shared and private alike, with
//! `EIO` on Linux 6.18; sysfs files answer `ENODEV`).
//!
//! FUSE never asks the server about `mmap` (see `fusefs::passthrough`, "mmap"), so what
//! a mapping gets is the kernel's choice:
//!
//! - direct I/O (the default): on Linux 6.12+ every open carries an
//!   unmappable backing file, so both kinds are refused (`ENODEV`); before, FUSE
//!   refuses `MAP_SHARED` (`ENODEV`) and fills `MAP_PRIVATE` through the inode's page
//!   cache by READ requests carrying the mapper's own handle, so a lone mapper sees its
//!   own rendering;
//! - passthrough (`--fuse-passthrough`): the mapping is of the backing memfd, which holds whatever the last
//!   pure open wrote (another container's rendering, or nothing: `SIGBUS`). That is the
//!   documented limit (README, "Limits"); its test is ignored with the reason.
//!
//! Needs root, /dev/fuse, writable cgroup v1 hierarchies and python3: fails, saying
//! why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;

use common::*;
use rustix::mm::{MapFlags, ProtFlags};

/// What the kernel's own file answers to a mapping of `flags` (the oracle). Python's
/// `mmap` refuses a file of size 0 before asking the kernel, so the oracle maps with
/// an explicit length.
fn kernel_answer(flags: MapFlags) -> String {
    let f = File::open("/proc/meminfo").unwrap();
    // SAFETY: a fresh read-only mapping at an address the kernel picks; unmapped at
    // once if it succeeds and never read.
    #[allow(unsafe_code)]
    let r = unsafe { rustix::mm::mmap(std::ptr::null_mut(), 4096, ProtFlags::READ, flags, &f, 0) };
    match r {
        Ok(p) => {
            // SAFETY: exactly the mapping just made.
            #[allow(unsafe_code)]
            let _ = unsafe { rustix::mm::munmap(p, 4096) };
            "mapped".to_string()
        }
        Err(e) => format!("errno {}", e.raw_os_error()),
    }
}

fn require_python() {
    require_env();
    if let Err(e) = require_tools(&["python3"], "python3") {
        panic!("{e}");
    }
}

/// Map `path` (its reported size, at most a page) in a container of `cg` with Python's
/// `mmap` (`MAP_SHARED` or `MAP_PRIVATE`): `errno N`, or the mapping's first line.
/// Panics, saying so, when the reader is killed by a signal. The length follows the
/// size because Python refuses, before asking the kernel, to map past it: before Linux
/// 6.12 an open sets a served file's size to its rendering's length.
fn python_maps(cg: &Cgroup, d: &Daemon, path: &str, flag: &str) -> String {
    let script = format!(
        "python3 -c '\n\
import mmap, os, sys\n\
fd = os.open(\"{path}\", os.O_RDONLY)\n\
n = min(os.fstat(fd).st_size, 4096) or 4096\n\
try:\n    m = mmap.mmap(fd, n, flags=mmap.{flag}, prot=mmap.PROT_READ)\n\
except OSError as e:\n    print(\"errno\", e.errno); sys.exit(0)\n\
print(bytes(m[:m.find(b\"\\n\")]).decode())\n'"
    );
    let out = run(cg, &d.mnt, &script);
    assert!(
        out.status.success(),
        "python mmap({flag}) of a served {path}: {} (a signal is a failure)\n{}",
        out.status,
        out.stderr
    );
    out.stdout.trim().to_string()
}

/// Direct I/O (the default), on this kernel: since Linux 6.12 (whose FUSE passthrough
/// takes a backing file that cannot be read) every open carries an unmappable backing
/// file (nsfs), so shared and
/// private mappings of every served file are refused with `ENODEV`, as sysfs refuses
/// them (`/proc` answers `EIO`), in two containers; reads still come to the daemon and
/// are each container's own. Without it, `MAP_SHARED` is refused (`ENODEV`, FUSE's
/// errno) and `MAP_PRIVATE` is filled through the inode's page cache by READ requests
/// carrying the mapper's own handle, so a lone mapper sees its own rendering.
#[test]
fn mmap_under_direct_io_is_refused_or_sees_only_the_mappers_view() {
    require_python();
    let d = Daemon::start(&[]);
    let a = Cgroup::with_memory_limit("mmap-a", 192 * MIB);
    let b = Cgroup::with_memory_limit("mmap-b", 320 * MIB);
    if kernel_at_least(6, 12) {
        refused_everywhere(&d, &a, &b);
    } else {
        private_sees_its_own(&d, &a, &b);
    }
    for (cg, kb) in [(&a, 192 * 1024), (&b, 320 * 1024)] {
        let out = run(cg, &d.mnt, "cat /proc/meminfo");
        assert_eq!(
            meminfo_get(&out.stdout, "MemTotal"),
            Some(kb),
            "{}",
            out.stdout
        );
    }
}

fn refused_everywhere(d: &Daemon, a: &Cgroup, b: &Cgroup) {
    assert!(
        d.log_text().contains("unmappable backing file"),
        "the daemon did not set up the unmappable backing:\n{}",
        d.log_text()
    );
    for (flag, flags) in [
        ("MAP_SHARED", MapFlags::SHARED),
        ("MAP_PRIVATE", MapFlags::PRIVATE),
    ] {
        let kernel = kernel_answer(flags);
        assert!(kernel.starts_with("errno "), "the kernel's file: {kernel}");
        for cg in [a, b] {
            for path in [
                "/proc/meminfo",
                "/proc/stat",
                "/proc/loadavg",
                "/sys/devices/system/cpu/online",
            ] {
                assert_eq!(
                    python_maps(cg, d, path, flag),
                    "errno 19",
                    "{flag} of {path} in {}",
                    cg.rel
                );
            }
        }
    }
}

fn private_sees_its_own(d: &Daemon, a: &Cgroup, b: &Cgroup) {
    let (ours, kernel) = (
        python_maps(a, d, "/proc/meminfo", "MAP_SHARED"),
        kernel_answer(MapFlags::SHARED),
    );
    assert!(
        ours == "errno 19" && kernel.starts_with("errno "),
        "MAP_SHARED: lxcfs-rs {ours:?}, the kernel's file {kernel:?}"
    );
    // One after the other, each private mapper sees its own container's rendering.
    for _ in 0..2 {
        for (cg, kb) in [(a, 192 * 1024), (b, 320 * 1024)] {
            let line = python_maps(cg, d, "/proc/meminfo", "MAP_PRIVATE");
            assert_eq!(
                meminfo_get(&line, "MemTotal"),
                Some(kb),
                "MAP_PRIVATE maps {line:?}"
            );
        }
    }
}

#[test]
#[ignore = "known limit (README, Limits): with --fuse-passthrough a mapping is of the \
            backing memfd; no kernel interface lets the server refuse it"]
fn mmap_under_passthrough_is_refused_like_the_kernels_file() {
    require_python();
    let d = Daemon::start(&["--fuse-passthrough"]);
    let a = Cgroup::with_memory_limit("mmap-pa", 192 * MIB);
    for (flag, flags) in [
        ("MAP_SHARED", MapFlags::SHARED),
        ("MAP_PRIVATE", MapFlags::PRIVATE),
    ] {
        let (ours, kernel) = (
            python_maps(&a, &d, "/proc/meminfo", flag),
            kernel_answer(flags),
        );
        assert!(
            ours.starts_with("errno ") && kernel.starts_with("errno "),
            "{flag}: lxcfs-rs {ours:?}, the kernel's file {kernel:?}"
        );
    }
}
