//! End to end, side by side with the reference: Debian's LXCFS mounted next to lxcfs-rs,
//! both read from inside the same container, must agree where the reference is right.
//!
//! Needs root, /dev/fuse, writable cgroups (v1, hybrid or v2) and `lxcfs` (the Debian package):
//! fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rustix::process::Signal;

/// A running reference LXCFS on its own mountpoint.
struct Lxcfs {
    child: Child,
    mnt: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Lxcfs {
    fn start() -> Lxcfs {
        require_env();
        let bin = which("lxcfs").unwrap_or_else(|| {
            panic!("the reference lxcfs is not installed (apt-get install lxcfs): it is the oracle")
        });
        let dir = tempfile::Builder::new()
            .prefix(&unique("lxcfs"))
            .tempdir()
            .unwrap();
        let base = fs::canonicalize(dir.path()).unwrap();
        let mnt = base.join("mnt");
        fs::create_dir(&mnt).unwrap();
        let log = base.join("log");
        // LXCFS 5 stays in the foreground unless told otherwise.
        let child = Command::new(bin)
            .arg("-p")
            .arg(base.join("lxcfs.pid"))
            .arg(&mnt)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::create(base.join("stderr")).unwrap())
            .spawn()
            .expect("start lxcfs");
        let mut l = Lxcfs {
            child,
            mnt,
            log,
            _dir: dir,
        };
        let start = Instant::now();
        while !(is_mounted(&l.mnt) && fs::File::open(l.mnt.join("proc/meminfo")).is_ok()) {
            if let Ok(Some(st)) = l.child.try_wait() {
                panic!("lxcfs exited ({st}) before mounting:\n{}", l.output());
            }
            if start.elapsed() > DEADLINE {
                panic!("lxcfs did not mount within {DEADLINE:?}:\n{}", l.output());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        l
    }

    fn output(&self) -> String {
        let err = fs::read_to_string(self.log.with_file_name("stderr")).unwrap_or_default();
        let out = fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- stderr\n{err}--- stdout\n{out}")
    }
}

impl Drop for Lxcfs {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = signal(self.child.id(), Signal::TERM);
            if wait_deadline(&mut self.child, Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        force_unmount(&self.mnt);
        if std::thread::panicking() {
            eprintln!("--- lxcfs output ---\n{}", self.output());
        }
    }
}

#[test]
fn meminfo_agrees_with_lxcfs_in_a_256mib_container() {
    let d = Daemon::start(&[]);
    let l = Lxcfs::start();
    let cg = Cgroup::with_memory_limit("oracle", 256 * MIB);
    let out = run_env(
        &cg,
        &d.mnt,
        "cat /proc/meminfo; echo ---; cat \"$LXCFS_MNT/proc/meminfo\"; echo ---\n\
         cat /proc/swaps; echo ---; cat \"$LXCFS_MNT/proc/swaps\"",
        &[
            ("LXCFS_MNT", &l.mnt.to_string_lossy()),
            ("E2E_KEEP", &l.mnt.to_string_lossy()),
        ],
    );
    let s = sections(out.ok());
    let (ours, theirs) = (&s[0], &s[1]);
    assert_eq!(
        meminfo_value(theirs, "MemTotal"),
        256 * 1024,
        "lxcfs:\n{theirs}"
    );
    assert_eq!(
        meminfo_value(ours, "MemTotal"),
        meminfo_value(theirs, "MemTotal"),
        "MemTotal: lxcfs-rs vs lxcfs"
    );
    for k in ["SwapTotal", "SwapFree", "Buffers", "SwapCached"] {
        assert_eq!(
            meminfo_value(ours, k),
            meminfo_value(theirs, k),
            "{k}: lxcfs-rs vs lxcfs"
        );
    }
    // Usage moves between the two reads: bounds, not equality.
    for k in ["MemFree", "MemAvailable"] {
        let (a, b) = (meminfo_value(ours, k), meminfo_value(theirs, k));
        assert!(
            a.abs_diff(b) < 16 * 1024,
            "{k}: lxcfs-rs {a} kB, lxcfs {b} kB"
        );
    }
    assert_eq!(
        meminfo_labels(ours),
        meminfo_labels(theirs),
        "meminfo labels"
    );
    assert_eq!(
        s[2].lines().count(),
        s[3].lines().count(),
        "/proc/swaps:\nlxcfs-rs:\n{}lxcfs:\n{}",
        s[2],
        s[3]
    );
}
