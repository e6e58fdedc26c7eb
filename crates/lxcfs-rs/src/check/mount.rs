//! Is MOUNTPOINT served, by what, which version, and does it answer.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use rustix::io::Errno;
use serde::Serialize;

/// How long a read of the mount may take before it counts as not answering.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// The directory does not exist.
    Missing,
    NotMounted,
    /// A live lxcfs-rs mount that answered a read.
    LxcfsRs,
    /// LXCFS (the C daemon) serves it.
    Lxcfs,
    /// Another FUSE filesystem.
    OtherFuse,
    /// A FUSE mount whose daemon is gone (ENOTCONN).
    Dead,
    /// A FUSE mount that did not answer in time.
    NotAnswering,
}

/// The process(es) serving the mount.
#[derive(Debug, Clone, Serialize)]
pub struct Daemon {
    pub name: &'static str,
    /// The lxcfs-rs supervisor, or LXCFS's process; `None` for orphaned workers.
    pub pid: Option<u32>,
    /// lxcfs-rs workers serving it.
    pub workers: Vec<u32>,
    /// What the serving binary says with `--version`.
    pub version: Option<String>,
    /// The serving binary was replaced on disk since it started (an upgrade awaiting
    /// `systemctl reload lxcfs-rs`).
    pub binary_replaced: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MountReport {
    pub path: String,
    /// Named on the command line (its state then decides the exit status).
    pub requested: bool,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemon: Option<Daemon>,
    /// What the read of `proc/meminfo` through it gave, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MountReport {
    pub fn serves(&self) -> bool {
        self.state == State::LxcfsRs
    }

    #[cfg(test)]
    pub fn for_tests(path: &str, requested: bool, state: State) -> MountReport {
        MountReport {
            path: path.into(),
            requested,
            state,
            fstype: None,
            daemon: None,
            error: None,
        }
    }

    /// One or two lines for a person.
    pub fn describe(&self) -> String {
        let daemon = self.daemon.as_ref().map(|d| {
            let mut s = format!("{} {}", d.name, d.version.as_deref().unwrap_or("(version unknown)"));
            match (d.pid, d.workers.as_slice()) {
                (Some(p), []) => s += &format!(" (pid {p})"),
                (Some(p), w) => s += &format!(" (supervisor {p}, worker {})", join(w)),
                (None, w) => s += &format!(
                    " (orphaned worker {}: its supervisor is gone; start lxcfs-rs on this mountpoint to adopt it)",
                    join(w)
                ),
            }
            if d.binary_replaced {
                s += "\n  its binary was replaced on disk: `systemctl reload lxcfs-rs` (SIGUSR1) moves it onto the new one";
            }
            s
        });
        let daemon = daemon.unwrap_or_else(|| "a daemon not found".into());
        match self.state {
            State::Missing => "does not exist".into(),
            State::NotMounted => "not mounted: nothing serves it".into(),
            State::LxcfsRs => format!("served by {daemon}; proc/meminfo reads"),
            State::Lxcfs => format!(
                "served by LXCFS: {daemon}; lxcfs-rs refuses to mount over it (stop LXCFS first)"
            ),
            State::OtherFuse => format!(
                "another FUSE filesystem ({}): not lxcfs-rs",
                self.fstype.as_deref().unwrap_or("?")
            ),
            State::Dead => {
                "a dead FUSE mount (Transport endpoint is not connected): its daemon is gone; \
                 starting lxcfs-rs detaches it and serves anew, `lxcfs-rs --remount` then revives \
                 containers' binds"
                    .into()
            }
            State::NotAnswering => format!(
                "mounted by {daemon} but a read did not answer within {}s{}",
                ANSWER_TIMEOUT.as_secs(),
                self.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        }
    }
}

fn join(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn check(path: &Path, requested: bool) -> MountReport {
    let mut r = MountReport {
        path: path.display().to_string(),
        requested,
        state: State::NotMounted,
        fstype: None,
        daemon: None,
        error: None,
    };
    let canonical = match std::fs::canonicalize(path) {
        Ok(p) => p,
        // A dead FUSE mount cannot be resolved either: look it up as given.
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => path.to_path_buf(),
        Err(_) => {
            r.state = State::Missing;
            return r;
        }
    };
    r.path = canonical.display().to_string();
    let Some((fstype, source)) = crate::mountpoint::live_fuse_mount(&canonical) else {
        return r;
    };
    let ours = fstype == connection::FSTYPE || source == connection::SOURCE;
    let lxcfs = fstype == "fuse.lxcfs" || source == "lxcfs";
    r.fstype = Some(fstype);
    r.daemon = if ours {
        lxcfs_rs_daemon(&canonical)
    } else if lxcfs {
        lxcfs_daemon(&canonical)
    } else {
        None
    };
    r.state = match answers(&canonical) {
        Answer::Read => match (ours, lxcfs) {
            (true, _) => State::LxcfsRs,
            (_, true) => State::Lxcfs,
            _ => State::OtherFuse,
        },
        Answer::Dead => State::Dead,
        Answer::Failed(e) if !ours && !lxcfs => {
            // Not a tree of ours: that it has no proc/meminfo says nothing.
            let _ = e;
            State::OtherFuse
        }
        Answer::Failed(e) => {
            r.error = Some(e);
            State::NotAnswering
        }
        Answer::Timeout => State::NotAnswering,
    };
    r
}

enum Answer {
    Read,
    Dead,
    Failed(String),
    Timeout,
}

/// statfs reaches the daemon (a dead one: ENOTCONN), then a read of `proc/meminfo`
/// shows that it serves; both in a helper thread, so a hung daemon cannot hang us.
fn answers(path: &Path) -> Answer {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let a = match rustix::fs::statfs(&p) {
            Err(Errno::NOTCONN | Errno::CONNABORTED) => Answer::Dead,
            Err(e) => Answer::Failed(format!("statfs: {e}")),
            Ok(_) => match std::fs::read(p.join("proc/meminfo")) {
                Ok(b) if b.starts_with(b"MemTotal:") => Answer::Read,
                Ok(_) => Answer::Failed("proc/meminfo does not start with MemTotal:".into()),
                Err(e) => Answer::Failed(format!("reading proc/meminfo: {e}")),
            },
        };
        let _ = tx.send(a);
    });
    rx.recv_timeout(ANSWER_TIMEOUT).unwrap_or(Answer::Timeout)
}

fn argv(pid: u32) -> Vec<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// The lxcfs-rs workers serving `mountpoint` (as `orphan` finds them) and their
/// supervisor.
fn lxcfs_rs_daemon(mountpoint: &Path) -> Option<Daemon> {
    let mut workers = Vec::new();
    let mut supervisor = None;
    for pid in pids() {
        let a = argv(pid);
        let Some((argv0, rest)) = a.split_first() else {
            continue;
        };
        if !argv0.ends_with(b"lxcfs-rs") {
            continue;
        }
        let args: Vec<&std::ffi::OsStr> = rest
            .iter()
            .map(|v| std::ffi::OsStr::from_bytes(v))
            .collect();
        if !connection::args::is_worker(&args) {
            continue;
        }
        let Ok(w) = connection::WorkerArgs::from_args(&args) else {
            continue;
        };
        if w.mountpoint != mountpoint {
            continue;
        }
        workers.push(pid);
        let parent = parent(pid);
        if parent.is_some_and(|p| argv(p).first().is_some_and(|a| a.ends_with(b"lxcfs-rs"))) {
            supervisor = parent;
        }
    }
    let serving = *workers.first()?;
    let (version, binary_replaced) = version_of(serving);
    Some(Daemon {
        name: "lxcfs-rs",
        pid: supervisor,
        workers,
        version: version.map(|v| v.trim_start_matches("lxcfs-rs ").to_string()),
        binary_replaced,
    })
}

/// The LXCFS process whose command line names `mountpoint`.
fn lxcfs_daemon(mountpoint: &Path) -> Option<Daemon> {
    let want = mountpoint.as_os_str().as_bytes();
    let pid = pids().into_iter().find(|&pid| {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        comm.trim() == "lxcfs" && argv(pid).iter().any(|a| a == want)
    })?;
    let (version, binary_replaced) = version_of(pid);
    Some(Daemon {
        name: "lxcfs",
        pid: Some(pid),
        workers: Vec::new(),
        version,
        binary_replaced,
    })
}

fn parent(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    procfile::pid::parse_status(&status).ppid
}

/// What the binary `pid` runs says with `--version` (run through `/proc/<pid>/exe`, so
/// it is that binary even if the file was replaced since), and whether it was replaced.
/// Only called for lxcfs-rs and LXCFS processes, whose `--version` just prints.
fn version_of(pid: u32) -> (Option<String>, bool) {
    let exe = format!("/proc/{pid}/exe");
    let replaced =
        std::fs::read_link(&exe).is_ok_and(|t| t.as_os_str().as_bytes().ends_with(b" (deleted)"));
    let version = Command::new(&exe)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            // LXCFS prints its version, quoted, on stderr.
            let out = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&out)
                .lines()
                .next()
                .map(|l| l.trim().trim_matches('"').to_string())
        })
        .filter(|v| !v.is_empty());
    (version, replaced)
}
