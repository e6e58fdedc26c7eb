//! Debian's LXCFS, the reference, mounted for a test: the oracle side by side with
//! lxcfs-rs, and the other daemon the coexistence and LXC tests meet.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::{DEADLINE, require_env, unique, wait_deadline, which};
use crate::mounts::{force_unmount, is_mounted};
use crate::proc::signal;

/// A running reference LXCFS on its own mountpoint.
pub struct Lxcfs {
    child: Child,
    pub mnt: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Lxcfs {
    /// Debian's `lxcfs` on a fresh mountpoint; fails, saying so, when it is missing or
    /// does not mount.
    pub fn start() -> Lxcfs {
        require_env();
        let bin = which("lxcfs").unwrap_or_else(|| {
            panic!("the reference lxcfs is not installed (apt-get install lxcfs): it is the oracle")
        });
        let dir = tempfile::Builder::new()
            .prefix(&unique("lxcfs"))
            .tempdir()
            .expect("lxcfs's dir");
        let base = fs::canonicalize(dir.path()).expect("lxcfs's dir");
        let mnt = base.join("mnt");
        fs::create_dir(&mnt).expect("lxcfs's dir");
        let log = base.join("log");
        // LXCFS 5 stays in the foreground unless told otherwise.
        let child = Command::new(bin)
            .arg("-p")
            .arg(base.join("lxcfs.pid"))
            .arg(&mnt)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).expect("lxcfs's dir"))
            .stderr(fs::File::create(base.join("stderr")).expect("lxcfs's dir"))
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

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it printed.
    pub fn output(&self) -> String {
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
