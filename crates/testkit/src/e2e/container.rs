//! Groups with limits and the "containers" that run in them: a new pid + mount
//! namespace in the group with the virtual files bind-mounted over `/proc`.

use std::fs;
use std::io::{BufRead, BufReader};
use std::ops::Deref;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rustix::process::Signal;

use super::{DEADLINE, Output, require_env, run_deadline, unique};
use crate::cgroup::{Group, Limit};
use crate::proc::signal;

/// A group of the host's layout (v1 hierarchies or cgroup2) with limits; its processes
/// are killed and its directories removed on drop, even on panic.
#[derive(Debug)]
pub struct Cgroup(Group);

impl Deref for Cgroup {
    type Target = Group;
    fn deref(&self) -> &Group {
        &self.0
    }
}

impl Cgroup {
    /// A new group at the root of the hierarchy, with `limits` set in order.
    pub fn new(tag: &str, limits: &[Limit]) -> Cgroup {
        require_env();
        let rel = unique(tag);
        Cgroup(Group::create(&rel, limits).unwrap_or_else(|e| panic!("cgroup {rel}: {e}")))
    }

    /// A group made under the name `rel` of one removed before (a runtime restarting
    /// a container under its name).
    pub fn again(rel: &str, limits: &[Limit]) -> Cgroup {
        require_env();
        Cgroup(Group::create(rel, limits).unwrap_or_else(|e| panic!("cgroup {rel} again: {e}")))
    }

    /// A group below this one.
    pub fn child(&self, tag: &str, limits: &[Limit]) -> Cgroup {
        Cgroup(
            self.0
                .child(tag, limits)
                .unwrap_or_else(|e| panic!("cgroup {}/{tag}: {e}", self.rel)),
        )
    }

    /// A group whose only limit is memory, in bytes.
    pub fn with_memory_limit(tag: &str, bytes: u64) -> Cgroup {
        Cgroup::new(tag, &[Limit::Memory(bytes)])
    }

    /// Change a limit of a running group.
    pub fn set(&self, limit: &Limit) {
        self.0
            .set(limit)
            .unwrap_or_else(|e| panic!("cgroup {}: {e}", self.rel));
    }
}

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
