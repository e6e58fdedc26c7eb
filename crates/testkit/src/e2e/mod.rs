//! The end-to-end harness: a mounted lxcfs-rs, real cgroups with limits (v1, hybrid or
//! pure v2), and "containers" (a new pid + mount namespace in those groups with the
//! virtual files bind-mounted over `/proc`, as a runtime does).
//!
//! These tests need root, `/dev/fuse`, writable cgroups and a few tools. When something
//! is missing they fail with a message saying what: they never skip.
//!
//! Every test makes its own names (pid + counter), so the tests of one binary run in
//! parallel threads. Nothing sleeps to synchronize: everything polls with a deadline.
//! Helpers panic with what failed: they are for tests.

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod agent;
mod container;
mod daemon;
mod lxcfs;
mod text;

pub use crate::cgroup::{CGROUP_ROOT, Layout, Limit};
pub use crate::mounts::{MountEntry, force_unmount, fuse_mounts_at, is_mounted, mounts};
pub use crate::proc::{assert_thread_confined, is_running, signal, thread_states, worker_pids};
pub use agent::Agent;
pub use container::{Cgroup, Running, run, run_env, run_timeout};
pub use daemon::Daemon;
pub use lxcfs::Lxcfs;
pub use text::*;

/// A child process a test started (a plugin, a helper daemon), killed and reaped when
/// dropped, however the test ends.
pub struct KilledOnDrop(pub Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The files a runtime bind-mounts over a container's `/proc`.
pub const PROC_FILES: [&str; 7] = [
    "meminfo",
    "swaps",
    "cpuinfo",
    "stat",
    "uptime",
    "loadavg",
    "diskstats",
];

pub const MIB: u64 = 1024 * 1024;

/// Generous: the machine is small and tests run in parallel.
pub const DEADLINE: Duration = Duration::from_secs(30);

const TOOLS: [&str; 15] = [
    "sh", "unshare", "nsenter", "mount", "umount", "free", "top", "dd", "wc", "cat", "head",
    "sleep", "stat", "grep", "cut",
];

/// The lxcfs-rs binary under test: `$LXCFS_RS_BIN`, else the one cargo built next to
/// the test binary (`target/<profile>/lxcfs-rs` for `target/<profile>/deps/<test>`), so
/// that test binaries copied elsewhere (the pure-v2 VM) find theirs.
pub fn lxcfs_rs() -> PathBuf {
    if let Some(p) = std::env::var_os("LXCFS_RS_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("lxcfs-rs"))
        .expect("the test binary lives in <target>/<profile>/deps");
    assert!(
        bin.is_file(),
        "no lxcfs-rs at {} (build it, or set LXCFS_RS_BIN)",
        bin.display()
    );
    bin
}

// ---------------------------------------------------------------------------------------
// Preconditions

/// Fails the calling test, with the reason, unless this machine can run the e2e tests.
pub fn require_env() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(why) = CHECK.get_or_init(check_env) {
        panic!("end-to-end tests cannot run here: {why}");
    }
}

fn check_env() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("they must run as root (they mount FUSE and create cgroups)".into());
    }
    match fs::metadata("/dev/fuse") {
        Ok(m) if m.file_type().is_char_device() => {}
        Ok(_) => return Err("/dev/fuse is not a character device".into()),
        Err(e) => return Err(format!("/dev/fuse is missing ({e}); load the fuse module")),
    }
    require_tools(&TOOLS, "util-linux and procps")?;
    Layout::host()
        .map(|_| ())
        .map_err(|e| format!("no usable cgroups: {e}"))
}

/// `Err` naming the `tools` not on `PATH`, and the packages (`install`) that have them.
pub fn require_tools(tools: &[&str], install: &str) -> Result<(), String> {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "missing tools: {} (install {install})",
        missing.join(", ")
    ))
}

/// Whether this kernel's release is at least `major.minor`: FUSE passthrough came in
/// 6.9, and a backing file that cannot be read (the unmappable one) is taken since 6.12.
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    let uname = rustix::system::uname();
    procfile::kernel::release_version(&uname.release().to_string_lossy())
        .is_some_and(|have| have >= (major, minor))
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

// ---------------------------------------------------------------------------------------
// Names, processes, deadlines

/// A name no other test (of any binary running at the same time) uses.
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "lxcfsrs-e2e-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Poll `f` until it returns `Some`, or panic with `what` after `timeout`.
pub fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Wait for `child` to exit, at most `timeout`; `None` if it is still running.
pub fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if start.elapsed() > timeout => return None,
            Ok(None) => {}
            Err(e) => panic!("waiting for pid {}: {e}", child.id()),
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Stdout of a command that must have succeeded.
    pub fn ok(&self) -> &str {
        assert!(
            self.status.success(),
            "command failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    /// Non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// Run `cmd` to completion with piped output; kill it and panic after `timeout`.
pub fn run_deadline(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    match wait_deadline(&mut child, timeout) {
        Some(status) => Output {
            status,
            stdout: out.recv().unwrap_or_default(),
            stderr: err.recv().unwrap_or_default(),
        },
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let so = out.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
            let se = err.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
            panic!(
                "{cmd:?} did not finish within {timeout:?} (a hung FUSE request?)\n\
                 --- stdout\n{so}\n--- stderr\n{se}"
            );
        }
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// Read a file in a helper thread: a hung daemon fails the test instead of hanging it.
pub fn read_deadline(path: &Path, timeout: Duration) -> std::io::Result<String> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(fs::read_to_string(p));
    });
    rx.recv_timeout(timeout).unwrap_or_else(|_| {
        panic!(
            "reading {} did not finish within {timeout:?}: the daemon hangs",
            path.display()
        )
    })
}
