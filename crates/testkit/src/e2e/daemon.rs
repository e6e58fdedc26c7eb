//! A mounted lxcfs-rs for one test: started on a fresh mountpoint, stopped (and its
//! mount detached) on drop, its log shown when the test fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::{DEADLINE, lxcfs_rs, require_env, unique, wait_deadline};
use crate::mounts::{force_unmount, fuse_mounts_at, is_mounted};
use crate::proc::{is_running, rss_kib, signal, thread_states, worker_pids};

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
        let bin = lxcfs_rs();
        let child = Command::new(&bin)
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
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
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

    /// A live upgrade (SIGUSR1): returns once one worker serves, not one of those before,
    /// and those before are gone.
    pub fn upgrade(&self) {
        let old = self.workers();
        self.signal(Signal::USR1);
        super::poll(
            DEADLINE,
            "the upgraded worker to replace the old one",
            || {
                let now = self.workers();
                (now.len() == 1 && !old.contains(&now[0]) && !old.iter().any(|&p| is_running(p)))
                    .then_some(())
            },
        );
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
        rss_kib(self.pid).unwrap_or_else(|e| panic!("the daemon's VmRSS: {e}"))
    }
}

fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"))
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
