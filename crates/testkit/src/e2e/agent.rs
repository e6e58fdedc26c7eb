//! A `lxcfs-rs seccomp-agent` for one test: its own socket in a temporary directory,
//! killed on drop, its log shown when the test fails; and the OCI seccomp object
//! (`lxcfs-rs seccomp-profile --oci`) naming that socket.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::{DEADLINE, lxcfs_rs, poll, require_env, run_deadline, unique};

/// How an agent is started.
#[derive(Debug, Clone, Copy)]
enum Launch {
    Plain,
    Activated,
    OpenFiles(u64, u64),
}

pub struct Agent {
    child: Option<Child>,
    pub pid: u32,
    pub socket: PathBuf,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// Start an agent with `args` and wait until its socket accepts connections.
    pub fn start(args: &[&str]) -> Agent {
        Agent::spawn(Launch::Plain, args)
    }

    /// Like [`Agent::start`], under this limit on open descriptors (soft, hard), as a
    /// service manager would start it (systemd: 1 024, 524 288).
    pub fn start_with_open_files(soft: u64, hard: u64, args: &[&str]) -> Agent {
        Agent::spawn(Launch::OpenFiles(soft, hard), args)
    }

    /// A socket-activated agent, as a systemd `.socket` unit starts it:
    /// `systemd-socket-activate` listens on the socket at once and execs the agent
    /// (same pid, `LISTEN_FDS=1`) when the first runtime connects.
    pub fn start_activated(args: &[&str]) -> Agent {
        Agent::spawn(Launch::Activated, args)
    }

    fn spawn(launch: Launch, args: &[&str]) -> Agent {
        require_env();
        let dir = tempfile::Builder::new()
            .prefix(&unique("agent"))
            .tempdir()
            .expect("create a temp dir");
        let base = fs::canonicalize(dir.path()).expect("canonicalize the temp dir");
        let socket = base.join("seccomp.sock");
        let log = base.join("log");
        let mut cmd = match launch {
            Launch::Activated => {
                let mut c = Command::new("systemd-socket-activate");
                c.arg("-l").arg(&socket).arg("--").arg(lxcfs_rs());
                c
            }
            Launch::OpenFiles(soft, hard) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={soft}:{hard}"))
                    .arg("--")
                    .arg(lxcfs_rs());
                c
            }
            Launch::Plain => Command::new(lxcfs_rs()),
        };
        let child = cmd
            .arg("seccomp-agent")
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("create the agent's log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the seccomp agent ({launch:?}): {e}"));
        let pid = child.id();
        let mut a = Agent {
            child: Some(child),
            pid,
            socket,
            log,
            _dir: dir,
        };
        // The socket listens once it exists (bind and listen come together); a probe
        // connection would be a failed hand-over in the agent's log.
        poll(DEADLINE, "the agent's socket", || {
            use std::os::unix::fs::FileTypeExt;
            fs::symlink_metadata(&a.socket)
                .ok()
                .filter(|m| m.file_type().is_socket())
                .map(|_| ())
        });
        a.assert_alive();
        a
    }

    fn assert_alive(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                panic!("the agent exited ({st}):\n{}", self.log_text());
            }
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and wait for its exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(self.pid as i32).expect("a pid"),
                rustix::process::Signal::TERM,
            );
            let _ = c.wait();
        }
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `lxcfs-rs seccomp-profile --oci` naming this agent's socket: the default
    /// profile installed on this machine with sysinfo notified.
    pub fn oci_profile(&self) -> Value {
        let out = run_deadline(
            Command::new(lxcfs_rs())
                .arg("seccomp-profile")
                .arg("--oci")
                .arg("--socket")
                .arg(&self.socket),
            DEADLINE,
        );
        serde_json::from_str(out.ok()).expect("seccomp-profile prints JSON")
    }

    /// `lxcfs-rs seccomp-profile` (Docker/Podman format) naming this agent's socket.
    pub fn profile(&self) -> String {
        let out = run_deadline(
            Command::new(lxcfs_rs())
                .arg("seccomp-profile")
                .arg("--socket")
                .arg(&self.socket),
            DEADLINE,
        );
        out.ok().to_string()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- seccomp agent log ---\n{}", self.log_text());
        }
    }
}
