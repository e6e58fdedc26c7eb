//! Shared harness of the end-to-end tests: a mounted daemon, real cgroup v1 groups with
//! limits, and "containers" (a new pid + mount namespace in those groups with the
//! virtual files bind-mounted over `/proc`, as a runtime does).
//!
//! These tests need root, `/dev/fuse`, writable cgroup v1 hierarchies and a few tools.
//! When something is missing they fail with a message saying what: they never skip.
//!
//! Every test makes its own names (pid + counter), so the tests of one binary run in
//! parallel threads. Nothing sleeps to synchronize: everything polls with a deadline.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use procfile::mountinfo::unescape;
use rustix::mount::{UnmountFlags, unmount};
use rustix::process::{Pid, Signal, kill_process};

pub const BIN: &str = env!("CARGO_BIN_EXE_lxcfs-rs");

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

/// The v1 hierarchies a container is put in.
pub const CONTROLLERS: [&str; 6] = ["cpu", "cpuacct", "cpuset", "memory", "pids", "blkio"];

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

pub const MIB: u64 = 1024 * 1024;

/// Generous: the machine is small and tests run in parallel.
pub const DEADLINE: Duration = Duration::from_secs(30);

const TOOLS: [&str; 15] = [
    "sh", "unshare", "nsenter", "mount", "umount", "free", "top", "dd", "wc", "cat", "head",
    "sleep", "stat", "grep", "cut",
];

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
    for c in CONTROLLERS {
        let procs = Path::new(CGROUP_ROOT).join(c).join("cgroup.procs");
        if !procs.exists() {
            return Err(format!(
                "no cgroup v1 {c} hierarchy at {} (these tests need a v1 or hybrid host)",
                procs.display()
            ));
        }
    }
    Ok(())
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

pub fn signal(pid: u32, sig: Signal) -> rustix::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(rustix::io::Errno::SRCH)?;
    kill_process(pid, sig)
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

// ---------------------------------------------------------------------------------------
// Mounts

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone)]
pub struct MountEntry {
    pub id: u64,
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
}

pub fn mounts() -> Vec<MountEntry> {
    let text = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some(MountEntry {
                id: pre.first()?.parse().ok()?,
                mount_point: unescape(pre.get(4)?),
                fstype: post.first()?.to_string(),
                source: unescape(post.get(1)?),
            })
        })
        .collect()
}

/// The FUSE mounts at `path`, bottom first.
pub fn fuse_mounts_at(path: &Path) -> Vec<MountEntry> {
    let target = path.to_string_lossy();
    mounts()
        .into_iter()
        .filter(|m| m.mount_point == target && m.fstype.starts_with("fuse"))
        .collect()
}

pub fn is_mounted(path: &Path) -> bool {
    !fuse_mounts_at(path).is_empty()
}

/// Detach every FUSE mount at `path` (the `umount -l` of a cleanup).
pub fn force_unmount(path: &Path) {
    for _ in 0..8 {
        if !is_mounted(path) {
            return;
        }
        if let Err(e) = unmount(path, UnmountFlags::DETACH) {
            eprintln!("umount -l {}: {e}", path.display());
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// The daemon

pub struct Daemon {
    child: Option<Child>,
    pub pid: u32,
    pub mnt: PathBuf,
    pub pidfile: PathBuf,
    pub log: PathBuf,
    /// Owned by the daemon that made it; restarts on the same mountpoint borrow the path.
    dir: Option<tempfile::TempDir>,
}

impl Daemon {
    /// Mount lxcfs-rs on a fresh mountpoint with `args` and wait until it is mounted.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::start_env(args, &[])
    }

    /// Like [`Daemon::start`], with extra environment variables for the daemon.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::start_full(args, env, None)
    }

    /// Like [`Daemon::start`], with the daemon's stderr going to `stderr` instead of the
    /// log file (which then stays empty).
    pub fn start_stderr(args: &[&str], stderr: Stdio) -> Daemon {
        Daemon::start_full(args, &[], Some(stderr))
    }

    fn start_full(args: &[&str], env: &[(&str, &str)], stderr: Option<Stdio>) -> Daemon {
        require_env();
        let dir = tempfile::Builder::new()
            .prefix(&unique("mnt"))
            .tempdir()
            .expect("create a temp dir");
        let base = fs::canonicalize(dir.path()).expect("canonicalize the temp dir");
        let mnt = base.join("mnt");
        fs::create_dir(&mnt).expect("create the mountpoint");
        let mut d = Daemon::spawn(
            &mnt,
            &base.join("lxcfs-rs.pid"),
            &base.join("log"),
            args,
            env,
            stderr,
        );
        d.dir = Some(dir);
        d.wait_mounted();
        d
    }

    /// Start another daemon on this one's mountpoint (after this one died), with its own
    /// log, the same pidfile, and wait until its own mount is there.
    pub fn restart(&self, args: &[&str]) -> Daemon {
        let log = self.log.with_extension(unique("restart"));
        let mut d = Daemon::spawn(&self.mnt, &self.pidfile, &log, args, &[], None);
        d.wait_mounted();
        d
    }

    fn spawn(
        mnt: &Path,
        pidfile: &Path,
        log: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        stderr: Option<Stdio>,
    ) -> Daemon {
        let logf = fs::File::create(log).expect("create the daemon log");
        let stderr = stderr.unwrap_or_else(|| logf.into());
        let child = Command::new(BIN)
            .envs(env.iter().copied())
            .arg("-p")
            .arg(pidfile)
            .args(args)
            .arg(mnt)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        Daemon {
            pid: child.id(),
            child: Some(child),
            mnt: mnt.to_path_buf(),
            pidfile: pidfile.to_path_buf(),
            log: log.to_path_buf(),
            dir: None,
        }
    }

    /// Wait for a live FUSE mount at our mountpoint: listed in mountinfo and answering
    /// (a dead one, left by a killed daemon, answers ENOTCONN; mount ids are reused, so
    /// they cannot tell the two apart). Opens a file, the one request the kernel never
    /// answers from its caches, rather than stat'ing the root, so that the root's
    /// attributes are not cached: tests choose when that happens.
    fn wait_mounted(&mut self) {
        let start = Instant::now();
        loop {
            if is_mounted(&self.mnt) && fs::File::open(self.mnt.join("proc/meminfo")).is_ok() {
                return;
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "lxcfs-rs exited ({st}) before mounting {}:\n{}",
                    self.mnt.display(),
                    self.log_text()
                );
            }
            if start.elapsed() > DEADLINE {
                panic!(
                    "lxcfs-rs did not mount {} within {DEADLINE:?}:\n{}",
                    self.mnt.display(),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The worker processes serving for this daemon (its supervisor is `self.pid`).
    pub fn workers(&self) -> Vec<u32> {
        worker_pids(self.pid)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    pub fn log_text(&self) -> String {
        read_log(&self.log)
    }

    pub fn signal(&self, sig: Signal) {
        signal(self.pid, sig).unwrap_or_else(|e| panic!("signal the daemon: {e}"));
    }

    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Send `sig` and wait for the exit; panics if it does not exit within the deadline.
    pub fn stop_with(&mut self, sig: Signal) -> ExitStatus {
        self.stop_within(sig, DEADLINE)
    }

    /// Send `sig` and wait at most `timeout` for the exit, else panic showing where the
    /// daemon's threads are blocked.
    pub fn stop_within(&mut self, sig: Signal, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("the daemon was already reaped");
        if let Ok(Some(st)) = child.try_wait() {
            return st;
        }
        let _ = signal(self.pid, sig);
        match wait_deadline(child, timeout) {
            Some(st) => st,
            None => panic!(
                "lxcfs-rs did not exit within {timeout:?} of signal {sig:?}. Threads:\n{}log:\n{}",
                thread_states(self.pid),
                read_log(&self.log)
            ),
        }
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with(Signal::TERM)
    }

    /// `VmRSS` in kB.
    pub fn rss_kb(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("read the daemon's status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in the daemon's status")
    }
}

fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"))
}

/// Where each thread of `pid` is blocked: for a daemon that does not exit.
pub fn thread_states(pid: u32) -> String {
    let mut out = String::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("(pid {pid} is gone)\n");
    };
    for t in tasks.flatten() {
        let p = t.path();
        let read = |f: &str| fs::read_to_string(p.join(f)).unwrap_or_default();
        let state = read("status")
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap_or("")
            .to_string();
        out.push_str(&format!(
            "thread {} {} {state} wchan={}\n{}",
            t.file_name().to_string_lossy(),
            read("comm").trim(),
            read("wchan"),
            read("stack")
        ));
    }
    out
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = signal(self.pid, Signal::TERM);
                if wait_deadline(child, Duration::from_secs(10)).is_none() {
                    eprintln!(
                        "lxcfs-rs (pid {}) ignored SIGTERM for 10 s; killing it. Threads:\n{}\
                         mounts: {:?}\nlog:\n{}",
                        self.pid,
                        thread_states(self.pid),
                        fuse_mounts_at(&self.mnt),
                        read_log(&self.log)
                    );
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        force_unmount(&self.mnt);
        if std::thread::panicking() {
            eprintln!(
                "--- lxcfs-rs log ({}) ---\n{}--- end of log ---",
                self.log.display(),
                read_log(&self.log)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// cgroup v1 groups

/// A group of the same relative path in every v1 hierarchy of [`CONTROLLERS`]; its
/// processes are killed and the directories removed on drop, even on panic.
pub struct Cgroup {
    pub rel: String,
}

impl Cgroup {
    /// A new group at the root of each hierarchy. `settings` are
    /// `(controller, file, value)`, written in order.
    pub fn v1(tag: &str, settings: &[(&str, &str, &str)]) -> Cgroup {
        require_env();
        Cgroup::create(unique(tag), settings)
    }

    /// A group below this one.
    pub fn child(&self, tag: &str, settings: &[(&str, &str, &str)]) -> Cgroup {
        Cgroup::create(format!("{}/{tag}", self.rel), settings)
    }

    /// A group whose only setting is a memory limit in bytes.
    pub fn with_memory_limit(tag: &str, bytes: u64) -> Cgroup {
        Cgroup::v1(
            tag,
            &[("memory", "memory.limit_in_bytes", &bytes.to_string())],
        )
    }

    fn create(rel: String, settings: &[(&str, &str, &str)]) -> Cgroup {
        let cg = Cgroup { rel };
        for c in CONTROLLERS {
            let dir = cg.dir(c);
            match fs::create_dir(&dir) {
                Ok(()) => {}
                // Co-mounted hierarchies (cpu,cpuacct) are one directory.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => panic!("mkdir {}: {e}", dir.display()),
            }
            if c == "cpuset" {
                // A new cpuset has no CPUs and no memory nodes: copy the parent's.
                let parent = dir.parent().expect("cpuset group has a parent");
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let v = fs::read_to_string(parent.join(f))
                        .unwrap_or_else(|e| panic!("read {}: {e}", parent.join(f).display()));
                    cg.write("cpuset", f, v.trim());
                }
            }
        }
        for (c, f, v) in settings {
            cg.write(c, f, v);
        }
        cg
    }

    pub fn dir(&self, controller: &str) -> PathBuf {
        Path::new(CGROUP_ROOT).join(controller).join(&self.rel)
    }

    pub fn write(&self, controller: &str, file: &str, value: &str) {
        let p = self.dir(controller).join(file);
        fs::write(&p, value).unwrap_or_else(|e| panic!("write {value:?} to {}: {e}", p.display()));
    }

    pub fn procs_files(&self) -> Vec<PathBuf> {
        CONTROLLERS
            .iter()
            .map(|c| self.dir(c).join("cgroup.procs"))
            .collect()
    }

    /// Every process in the group, across hierarchies.
    pub fn pids(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self
            .procs_files()
            .iter()
            .filter_map(|p| fs::read_to_string(p).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let start = Instant::now();
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                let _ = signal(p, Signal::KILL);
            }
            if start.elapsed() > Duration::from_secs(10) {
                eprintln!("cgroup {}: processes survive SIGKILL", self.rel);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for c in CONTROLLERS {
            let dir = self.dir(c);
            loop {
                match fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if start.elapsed() > Duration::from_secs(10) => {
                        eprintln!("rmdir {}: {e}", dir.display());
                        break;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Containers

/// Mount setup inside the new namespaces, then the test's script.
///
/// After the binds, the copies of other FUSE mounts that `unshare -m` made are detached
/// (ours, `$E2E_MNT`, stays for scripts that bind more of it; so do those in
/// `$E2E_KEEP`), as a runtime's `pivot_root` drops the host's mounts: a copy would keep
/// that daemon's FUSE connection alive after it unmounts, and the tests run in
/// parallel, each with its own daemon.
fn inner_script(script: &str) -> String {
    let mut s = String::from(
        "set -e\nmount -t proc proc /proc\n\
         for f in meminfo swaps cpuinfo stat uptime loadavg diskstats; do\n\
         mount --bind \"$E2E_MNT/proc/$f\" \"/proc/$f\"\ndone\n\
         mount --bind \"$E2E_MNT/sys/devices/system/cpu/online\" /sys/devices/system/cpu/online\n\
         grep ' - fuse' /proc/self/mountinfo | cut -d' ' -f5 | while read -r m; do\n\
         case \"$m\" in /proc/*|/sys/*) continue;; esac\n\
         case \" $E2E_MNT $E2E_KEEP \" in *\" $m \"*) continue;; esac\n\
         umount -l \"$m\" 2>/dev/null || true\n\
         done\n\
         set +e\n",
    );
    s.push_str(script);
    s
}

/// Join the cgroup, then a new pid + mount namespace (what a runtime does).
fn container_command(cg: &Cgroup, mnt: &Path, inner: &str, env: &[(&str, &str)]) -> Command {
    let procs: Vec<String> = cg
        .procs_files()
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(
            // One path a line: group names may hold spaces (never a newline).
            "printf '%s\\n' \"$E2E_PROCS\" | while IFS= read -r f; do\n\
               echo $$ > \"$f\" || exit 98\n\
             done || exit 98\n\
             exec unshare -p -f -m --propagation private sh -c \"$E2E_INNER\"",
        )
        .env("E2E_PROCS", procs.join("\n"))
        .env("E2E_INNER", inner)
        .env("E2E_MNT", mnt)
        .env("TERM", "dumb")
        .env("LC_ALL", "C");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Run `script` in a new container of group `cg` whose `/proc` files come from the
/// lxcfs mount at `mnt`; returns when the container is gone.
pub fn run(cg: &Cgroup, mnt: &Path, script: &str) -> Output {
    run_env(cg, mnt, script, &[])
}

/// Like [`run`], for scripts that take longer than [`DEADLINE`].
pub fn run_timeout(cg: &Cgroup, mnt: &Path, script: &str, timeout: Duration) -> Output {
    run_deadline(
        &mut container_command(cg, mnt, &inner_script(script), &[]),
        timeout,
    )
}

pub fn run_env(cg: &Cgroup, mnt: &Path, script: &str, env: &[(&str, &str)]) -> Output {
    run_deadline(
        &mut container_command(cg, mnt, &inner_script(script), env),
        DEADLINE,
    )
}

/// A long-running container (its init sleeps) that readers enter with `nsenter`, as
/// `docker exec` does: their parent is outside the container's pid namespace.
pub struct Running {
    child: Child,
    /// The host pid of the container's init.
    pub init: u32,
}

impl Running {
    pub fn start(cg: &Cgroup, mnt: &Path) -> Running {
        let inner = inner_script("echo ready\nexec sleep 1000000\n");
        let mut child = container_command(cg, mnt, &inner, &[])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a container");
        let stdout = child.stdout.take().expect("container stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running = Running { child, init: 0 };
        match rx.recv_timeout(DEADLINE) {
            Ok(l) if l == "ready" => {}
            other => panic!("the container did not start: {other:?}"),
        }
        // The outer shell exec'd unshare, whose only child is the namespace's init.
        let unshare = running.child.id();
        let children = fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
            .expect("read unshare's children (CONFIG_PROC_CHILDREN)");
        running.init = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("unshare has a child");
        running
    }

    /// Run `script` in the container with `nsenter -t <init> -p -m`.
    pub fn exec(&self, script: &str) -> Output {
        run_deadline(
            Command::new("nsenter")
                .arg("-t")
                .arg(self.init.to_string())
                .args(["-p", "-m", "--", "sh", "-c", script])
                .env("TERM", "dumb")
                .env("LC_ALL", "C"),
            DEADLINE,
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The init's death takes the whole pid namespace with it.
        if self.init != 0 {
            let _ = signal(self.init, Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Parsing what tools print

/// The value of `key` in a meminfo text (kB for most keys).
pub fn meminfo_value(text: &str, key: &str) -> u64 {
    meminfo_get(text, key).unwrap_or_else(|| panic!("no {key} in meminfo:\n{text}"))
}

pub fn meminfo_get(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, rest) = l.split_once(':')?;
        if k != key {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The labels, in order.
pub fn meminfo_labels(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.to_string()))
        .collect()
}

/// Every line is `Label:<spaces>number[ kB]`.
pub fn assert_meminfo_well_formed(text: &str) {
    assert!(text.ends_with('\n'), "meminfo does not end with a newline");
    for l in text.lines() {
        let (k, rest) = l
            .split_once(':')
            .unwrap_or_else(|| panic!("meminfo line without ':': {l:?}"));
        assert!(
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_()".contains(c)),
            "bad label in {l:?}"
        );
        let mut words = rest.split_whitespace();
        let n = words.next().unwrap_or("");
        assert!(
            !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()),
            "bad value in {l:?}"
        );
        match words.next() {
            None | Some("kB") => {}
            Some(w) => panic!("unexpected {w:?} in {l:?}"),
        }
        assert!(words.next().is_none(), "trailing text in {l:?}");
    }
}

/// The `total` column of `free`'s `Mem:` line.
pub fn free_total(free_output: &str) -> u64 {
    free_column(free_output, "Mem:", 0)
}

/// Column `i` (0 = total) of the line starting with `label` in `free`'s output.
pub fn free_column(free_output: &str, label: &str, i: usize) -> u64 {
    free_output
        .lines()
        .find(|l| l.starts_with(label))
        .and_then(|l| l.split_whitespace().nth(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {label} column {i} in free's output:\n{free_output}"))
}

/// The parts of `text` separated by lines `---`.
pub fn sections(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for l in text.lines() {
        if l == "---" {
            out.push(String::new());
        } else if let Some(last) = out.last_mut() {
            last.push_str(l);
            last.push('\n');
        }
    }
    out
}

pub fn host_meminfo() -> String {
    fs::read_to_string("/proc/meminfo").expect("read the host's /proc/meminfo")
}

pub fn host_mem_total_kb() -> u64 {
    meminfo_value(&host_meminfo(), "MemTotal")
}

/// The effective memory limit (bytes) of this test process's own v1 memory cgroup,
/// `None` when unlimited.
pub fn own_memory_limit() -> Option<u64> {
    let cg = fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
    let path = cg.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let _id = parts.next()?;
        let ctrl = parts.next()?;
        let path = parts.next()?;
        ctrl.split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    })?;
    let mut dir = Path::new(CGROUP_ROOT)
        .join("memory")
        .join(path.trim_start_matches('/'));
    let root = Path::new(CGROUP_ROOT).join("memory");
    let mut limit: Option<u64> = None;
    loop {
        if let Ok(v) = fs::read_to_string(dir.join("memory.limit_in_bytes")) {
            if let Ok(v) = v.trim().parse::<u64>() {
                if v < 1 << 62 {
                    limit = Some(limit.map_or(v, |l| l.min(v)));
                }
            }
        }
        if dir == root || !dir.pop() {
            break;
        }
    }
    limit
}

/// Pids of the worker processes whose parent is `supervisor`.
pub fn worker_pids(supervisor: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").expect("list /proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(status) = fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let ppid = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse::<u32>().ok());
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        if ppid == Some(supervisor) && cmdline.split(|&b| b == 0).any(|a| a == b"--worker") {
            out.push(pid);
        }
    }
    out
}

/// Alive and not a zombie.
pub fn is_running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next())
        })
        .is_some_and(|c| c != 'Z' && c != 'X')
}
