//! The Kubernetes DaemonSet's entry point (`lxcfs-rs node install`, deploy/kubernetes/)
//! at node level, with a real runtime: runc runs it as the kubelet would run the
//! DaemonSet's pod (host pid namespace, privileged, the binary inside the container's
//! own root), while other runc containers with the mount's files bound read them in a
//! loop. Across the install, a rollout to a new binary (the old pod's cgroup killed,
//! a new pod started with the new image) and the deletion of the pod, no read fails:
//! the daemon lives outside the pod, and a new image live-upgrades it.
//!
//! This machine's init is not systemd, so the entry point runs the daemon detached (a
//! cgroup and session of its own); the systemd path cannot run here. The "node" is
//! this test process's namespaces (`--host-pid`): pid 1 here is not ours to enter.
//!
//! Needs root, /dev/fuse, cgroups, runc and busybox-static: fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::*;
use testkit::proc::is_running;
use testkit::runtime::{Bundle, CdiSpec, Rootfs};

fn require_runc() {
    require_env();
    if let Err(e) = require_tools(&["runc", "busybox", "tar"], "runc busybox-static") {
        panic!("runc tests cannot run here: {e}");
    }
}

/// The node's paths, all under one temporary directory (never the host's
/// /var/lib/lxcfs), and the cgroup a detached daemon moves to.
struct Node {
    _dir: tempfile::TempDir,
    base: PathBuf,
    mnt: PathBuf,
    cgroup: String,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::Builder::new()
            .prefix(&unique("node"))
            .tempdir()
            .unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let mnt = base.join("var/lib/lxcfs");
        std::fs::create_dir_all(&mnt).unwrap();
        Node {
            _dir: dir,
            base,
            mnt,
            cgroup: unique("lxcfs-rs"),
        }
    }

    /// `node SUBCOMMAND` options naming this node.
    fn options(&self) -> Vec<String> {
        let p = |rel: &str| self.base.join(rel).display().to_string();
        vec![
            "--host-pid".into(),
            std::process::id().to_string(),
            "--mountpoint".into(),
            self.mnt.display().to_string(),
            "--install-dir".into(),
            p("var/lib/lxcfs-rs"),
            "--runtime-dir".into(),
            p("run"),
            "--cdi-dir".into(),
            p("etc/cdi"),
            // Never the host's /etc/systemd/system, even by accident.
            "--unit-dir".into(),
            p("etc/systemd/system"),
        ]
    }

    fn installed(&self) -> PathBuf {
        self.base.join("var/lib/lxcfs-rs/lxcfs-rs")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.base.join("var/log/lxcfs-rs.log")).unwrap_or_default()
    }

    /// The DaemonSet's pod: `image` (a binary) bound into a busybox root, running the
    /// entry point in the host's pid namespace, privileged.
    fn pod(&self, rootfs: &Rootfs, image: &Path) -> (Bundle, Child) {
        self.pod_with(rootfs, image, &[])
    }

    /// A pod whose daemon gets `daemon_args` (the DaemonSet's args after `--`).
    fn pod_with(&self, rootfs: &Rootfs, image: &Path, daemon_args: &[&str]) -> (Bundle, Child) {
        let mut args = vec![
            "exec".to_string(),
            "/lxcfs-rs".into(),
            "node".into(),
            "install".into(),
            "--manager".into(),
            "detached".into(),
        ];
        args.extend(self.options());
        args.extend([
            "--log".into(),
            self.base.join("var/log/lxcfs-rs.log").display().to_string(),
            "--cgroup".into(),
            self.cgroup.clone(),
            "--watch-interval".into(),
            "1".into(),
            "--".into(),
        ]);
        args.extend(daemon_args.iter().map(|a| a.to_string()));
        let mut b = Bundle::new(rootfs, &args.join(" "));
        // The binary is linked against glibc: the image's libraries are the host's /usr.
        b.host_pid_privileged()
            .bind(image, "/lxcfs-rs", &["bind", "ro"])
            .bind(Path::new("/usr"), "/usr", &["rbind", "ro"]);
        let child = b.spawn();
        (b, child)
    }

    /// The node's view of the mount: its supervisor, the binary its worker runs, and
    /// whether that binary is the one installed now.
    fn serving(&self) -> Option<(u32, Vec<u8>)> {
        let workers: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|pid: &u32| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                cmd.contains("--worker") && cmd.ends_with(&format!("{}\0", self.mnt.display()))
            })
            .collect();
        let [w] = workers[..] else { return None };
        let exe = std::fs::read(format!("/proc/{w}/exe")).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{w}/status")).ok()?;
        let ppid = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))?
            .trim()
            .parse()
            .ok()?;
        std::fs::read(self.mnt.join("proc/meminfo"))
            .ok()
            .filter(|m| m.starts_with(b"MemTotal:"))?;
        Some((ppid, exe))
    }

    fn node_cmd(&self, sub: &str) -> Command {
        let mut c = Command::new(lxcfs_rs());
        c.arg("node").arg(sub).args(self.options());
        c
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Uninstall whatever is left (also when the test failed), then the cgroup.
        let _ = self.node_cmd("uninstall").output();
        for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            let _ = std::fs::remove_dir(Path::new(root).join(&self.cgroup));
        }
        testkit::mounts::force_unmount(&self.mnt);
    }
}

/// Reads every file of the default device until /out/stop appears; a failed read, or a
/// meminfo without the container's 256 MiB, counts as a failure.
const READ_LOOP: &str = r#"
n=0; f=0
while [ ! -e /out/stop ]; do
    for p in /proc/meminfo /proc/cpuinfo /proc/stat /proc/uptime /proc/loadavg \
             /proc/diskstats /proc/swaps /sys/devices/system/cpu/online; do
        cat $p >/dev/null || { f=$((f+1)); echo "ERR $p"; }
    done
    v=$(head -1 /proc/meminfo) || v=failed
    case "$v" in *262144*) ;; *) f=$((f+1)); echo "BAD $v";; esac
    n=$((n+1)); echo $n >/out/n
done
echo "reads=$n failed=$f"
"#;

struct Reader {
    out: tempfile::TempDir,
    bundle: Bundle,
    child: Child,
}

impl Reader {
    fn start(rootfs: &Rootfs, mnt: &Path) -> Reader {
        let spec = CdiSpec::of(mnt);
        let out = tempfile::tempdir().unwrap();
        let mut bundle = Bundle::new(rootfs, READ_LOOP);
        bundle
            .memory_limit(256 * MIB)
            .cdi(&spec.device("default"))
            .bind(out.path(), "/out", &["rbind", "rw"]);
        let child = bundle.spawn();
        let r = Reader { out, bundle, child };
        r.wait_loops(3);
        r
    }

    fn loops(&self) -> u64 {
        std::fs::read_to_string(self.out.path().join("n"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn wait_loops(&self, more: u64) {
        let from = self.loops();
        poll(DEADLINE, "a reader's loops to go on", || {
            (self.loops() >= from + more).then_some(())
        });
    }

    /// (reads, failed, its output)
    fn finish(mut self) -> (u64, u64, String) {
        std::fs::write(self.out.path().join("stop"), "").unwrap();
        let status = wait_deadline(&mut self.child, DEADLINE).expect("the reader to stop");
        let mut stdout = String::new();
        std::io::Read::read_to_string(self.child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(status.success(), "{status}: {stdout}\n{stderr}");
        let tally = stdout.lines().last().unwrap_or_default();
        let (reads, failed) = tally
            .strip_prefix("reads=")
            .and_then(|r| r.split_once(" failed="))
            .unwrap_or_else(|| panic!("no tally: {stdout}\n{stderr}"));
        drop(self.bundle);
        (reads.parse().unwrap(), failed.parse().unwrap(), stdout)
    }
}

/// A "new image": the binary with bytes appended (an ELF ignores them), elsewhere.
fn new_image(dir: &Path) -> PathBuf {
    let p = dir.join("lxcfs-rs");
    let mut bytes = std::fs::read(lxcfs_rs()).unwrap();
    bytes.extend_from_slice(b"\0image 2\0");
    std::fs::write(&p, bytes).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&p).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

/// Polls `f` while the pod runs; a pod that exits fails the test with its output.
fn while_pod_runs<T>(
    node: &Node,
    pod: &mut (Bundle, Child),
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    poll(DEADLINE, what, || {
        if let Ok(Some(status)) = pod.1.try_wait() {
            let mut out = String::new();
            let _ = std::io::Read::read_to_string(pod.1.stdout.as_mut().unwrap(), &mut out);
            let _ = std::io::Read::read_to_string(pod.1.stderr.as_mut().unwrap(), &mut out);
            panic!(
                "the pod exited ({status}) waiting for {what}:\n{out}\n--- daemon\n{}",
                node.log_text()
            );
        }
        f()
    })
}

/// Pod deletion: SIGKILL to the pod's whole cgroup, as the runtime does; the pod's
/// `runc run` then exits.
fn delete_pod(pod: (Bundle, Child)) {
    let (bundle, mut child) = pod;
    bundle.kill_all();
    wait_deadline(&mut child, DEADLINE).expect("the pod's runc to exit after kill --all");
    drop(bundle);
}

#[test]
fn install_rollout_and_pod_deletion_never_fail_a_read() {
    require_runc();
    let node = Node::new();
    let rootfs = Rootfs::busybox();

    // Install: the first pod puts the daemon on the node.
    let mut pod1 = node.pod(&rootfs, &lxcfs_rs());
    let (supervisor, exe1) =
        while_pod_runs(&node, &mut pod1, "the first pod's daemon to serve", || {
            node.serving()
        });
    assert_eq!(std::fs::read(node.installed()).unwrap(), exe1);
    let r1 = Reader::start(&rootfs, &node.mnt);
    let r2 = Reader::start(&rootfs, &node.mnt);

    // Rollout to a new image: the old pod deleted, a new one started with it.
    delete_pod(pod1);
    assert!(
        is_running(supervisor),
        "the pod's deletion killed the daemon\n{}",
        node.log_text()
    );
    r1.wait_loops(3);
    let image = tempfile::tempdir().unwrap();
    let new = new_image(image.path());
    let want = std::fs::read(&new).unwrap();
    let mut pod2 = node.pod(&rootfs, &new);
    while_pod_runs(&node, &mut pod2, "the new image's worker to serve", || {
        node.serving().filter(|(_, exe)| *exe == want)
    });
    let (sup2, _) = node.serving().unwrap();
    assert_eq!(
        sup2,
        supervisor,
        "the supervisor was replaced, not upgraded\n{}",
        node.log_text()
    );
    assert!(node.log_text().contains("SIGUSR1"), "{}", node.log_text());
    r1.wait_loops(3);
    r2.wait_loops(3);

    // Pod deletion (the DaemonSet deleted, or the node drained): the daemon serves on.
    delete_pod(pod2);
    r1.wait_loops(3);
    r2.wait_loops(3);
    let (sup3, exe3) = node.serving().expect("serving after the pod's deletion");
    assert_eq!((sup3, exe3 == want), (supervisor, true));

    // New daemon options in the DaemonSet: the supervisor is restarted with them (it
    // adopts the worker, then replaces it), the mount stays.
    let mut pod3 = node.pod_with(&rootfs, &new, &["--enable-cfs"]);
    let (sup4, _) = while_pod_runs(
        &node,
        &mut pod3,
        "a supervisor with the new options",
        || {
            let (sup, exe) = node.serving()?;
            let cmd = std::fs::read(format!("/proc/{sup}/cmdline")).ok()?;
            (exe == want && String::from_utf8_lossy(&cmd).contains("--enable-cfs"))
                .then_some((sup, exe))
        },
    );
    assert_ne!(sup4, supervisor);
    r1.wait_loops(3);
    r2.wait_loops(3);
    delete_pod(pod3);
    r1.wait_loops(2);

    for r in [r1, r2] {
        let (reads, failed, out) = r.finish();
        assert!(reads >= 12, "{out}");
        assert_eq!(failed, 0, "{out}\n--- daemon\n{}", node.log_text());
    }

    // The explicit uninstall: mount detached, supervisor stopped, binary gone.
    let out = node.node_cmd("uninstall").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_running(sup4));
    assert!(!node.installed().exists());
    assert!(!testkit::mounts::is_mounted(&node.mnt));
}

/// After a crash of supervisor and worker together (the mount left dead, "Transport
/// endpoint is not connected"), the DaemonSet's pod still starts (it has no volume at
/// the mount for the kubelet to trip on), `node ready` says the mount does not serve,
/// and the entry point detaches the dead mount and serves again.
#[test]
fn a_dead_mount_is_cleaned_and_served_again_by_the_next_pod() {
    require_runc();
    let node = Node::new();
    let rootfs = Rootfs::busybox();
    let mut pod1 = node.pod(&rootfs, &lxcfs_rs());
    let (supervisor, _) =
        while_pod_runs(&node, &mut pod1, "the first pod's daemon to serve", || {
            node.serving()
        });
    // A container that bound the files, reading them every 100 ms.
    let out = tempfile::tempdir().unwrap();
    let mut reader = Bundle::new(
        &rootfs,
        "while [ ! -e /out/stop ]; do
           if head -1 /proc/meminfo >/dev/null && cat /sys/devices/system/cpu/online >/dev/null
           then echo ok >/out/s; else echo fail >/out/s; fi; sleep 0.1; done",
    );
    reader
        .memory_limit(256 * MIB)
        .cdi(&CdiSpec::of(&node.mnt).device("default"))
        .bind(out.path(), "/out", &["rbind", "rw"]);
    let mut reader_run = reader.spawn();
    let state = || std::fs::read_to_string(out.path().join("s")).unwrap_or_default();
    poll(DEADLINE, "the reader to read", || {
        (state().trim() == "ok").then_some(())
    });
    delete_pod(pod1);
    // Both processes die at once (a node-wide OOM kill, `pkill -9`).
    let worker: Vec<u32> = testkit::proc::worker_pids(supervisor);
    for pid in std::iter::once(supervisor).chain(worker.iter().copied()) {
        let _ = testkit::proc::signal(pid, rustix::process::Signal::KILL);
    }
    poll(DEADLINE, "the reader's binds to be dead", || {
        (state().trim() == "fail").then_some(())
    });
    poll(DEADLINE, "the mount to be dead", || {
        let e = std::fs::read(node.mnt.join("proc/meminfo")).err()?;
        (e.raw_os_error() == Some(libc::ENOTCONN)).then_some(())
    });
    let ready = node.node_cmd("ready").output().unwrap();
    assert!(!ready.status.success());
    let said = String::from_utf8_lossy(&ready.stderr);
    assert!(said.contains("dead FUSE mount"), "{said}");

    let mut pod2 = node.pod(&rootfs, &lxcfs_rs());
    let (sup2, _) = while_pod_runs(&node, &mut pod2, "the next pod's daemon to serve", || {
        node.serving()
    });
    assert_ne!(sup2, supervisor);
    assert!(
        node.log_text().contains("removed the dead FUSE mount"),
        "{}",
        node.log_text()
    );
    let ready = node.node_cmd("ready").output().unwrap();
    assert!(
        ready.status.success(),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
    // One mount at the mountpoint, not one stacked over the dead one.
    assert_eq!(testkit::mounts::fuse_mounts_at(&node.mnt).len(), 1);
    // The container's dead binds were replaced by the new mount's files, without a
    // restart of the container.
    poll(DEADLINE, "the reader's binds to be revived", || {
        (state().trim() == "ok").then_some(())
    });
    std::fs::write(out.path().join("stop"), "").unwrap();
    wait_deadline(&mut reader_run, DEADLINE).expect("the reader to stop");
    drop(reader);
    delete_pod(pod2);
}

/// A container started before the daemon serves (after a reboot, before the
/// DaemonSet's pod ran) with binds of the mount's files: runc refuses it, and creates
/// nothing at the missing sources, so the mountpoint stays an empty directory the
/// daemon can mount on, and the container starts once the files exist. (It is the
/// runtime's or the kubelet's creating a missing source as a directory that leaves
/// "not a directory" behind; hostPath `type: File` makes the kubelet check instead.)
#[test]
fn binds_of_an_unserved_mount_fail_without_creating_anything() {
    require_runc();
    let node = Node::new();
    let rootfs = Rootfs::busybox();
    let bind_all = |b: &mut Bundle| {
        for f in [
            "cpuinfo",
            "diskstats",
            "meminfo",
            "stat",
            "swaps",
            "uptime",
            "loadavg",
        ] {
            b.bind(
                &node.mnt.join("proc").join(f),
                &format!("/proc/{f}"),
                &["bind", "ro"],
            );
        }
        b.bind(
            &node.mnt.join("sys/devices/system/cpu"),
            "/sys/devices/system/cpu",
            &["bind", "ro"],
        );
    };
    let mut early = Bundle::new(&rootfs, "head -1 /proc/meminfo");
    early.memory_limit(256 * MIB);
    bind_all(&mut early);
    let out = early.run(DEADLINE);
    assert!(
        !out.status.success(),
        "runc ran a container whose bind sources are missing"
    );
    assert_eq!(
        std::fs::read_dir(&node.mnt).unwrap().count(),
        0,
        "the runtime created something at the unserved mountpoint"
    );
    drop(early);

    let mut pod = node.pod(&rootfs, &lxcfs_rs());
    while_pod_runs(&node, &mut pod, "the daemon to serve", || node.serving());
    let mut retry = Bundle::new(&rootfs, "head -1 /proc/meminfo");
    retry.memory_limit(256 * MIB);
    bind_all(&mut retry);
    let text = retry.run(DEADLINE).ok().to_string();
    assert_eq!(meminfo_value(&text, "MemTotal"), 256 * 1024, "{text}");
    delete_pod(pod);
}

/// A stand-in for `systemctl`, enough for `node install` and `node uninstall`: the
/// unit's ExecStart runs as a background process, `reload` is the unit's ExecReload
/// (SIGUSR1), `restart` and `stop` signal the main process only (KillMode=process).
/// Every call is logged. It is no systemd (no notify socket, no cgroup of the unit):
/// it checks the command sequence and the unit's command line, not systemd itself.
const SYSTEMCTL: &str = r#"#!/bin/sh
echo "$*" >> "$STANDIN/calls"
unit="$UNIT_DIR/lxcfs-rs.service"
alive() { p=$(cat "$STANDIN/pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }
start() {
    cmd=$(sed -n 's/^ExecStart=//p' "$unit")
    setsid $cmd >>"$STANDIN/log" 2>&1 </dev/null &
    echo $! >"$STANDIN/pid"
}
stop() {
    alive || return 0
    p=$(cat "$STANDIN/pid"); kill "$p"
    while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
}
case "$1" in
    is-active) alive ;;
    start) start ;;
    reload) kill -USR1 "$(cat "$STANDIN/pid")" ;;
    restart) stop; start ;;
    disable) [ "$2" = --now ] && stop ;;
esac
"#;

/// The systemd way of `node install`, with the stand-in above on PATH (this machine's
/// init is not systemd): install, upgrade to a new binary, new options, uninstall, the
/// calls each makes, and 0 failed reads in a runc container throughout.
#[test]
fn the_systemd_way_makes_the_calls_a_unit_needs_and_no_read_fails() {
    require_runc();
    let node = Node::new();
    let rootfs = Rootfs::busybox();
    let standin = node.base.join("standin");
    std::fs::create_dir_all(standin.join("bin")).unwrap();
    let units = node.base.join("etc/systemd/system");
    let systemctl = standin.join("bin/systemctl");
    std::fs::write(&systemctl, SYSTEMCTL).unwrap();
    std::fs::set_permissions(
        &systemctl,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        standin.join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    let calls = || {
        let text = std::fs::read_to_string(standin.join("calls")).unwrap_or_default();
        std::fs::remove_file(standin.join("calls")).ok();
        text
    };
    let install = |image: &Path, daemon_args: &[&str]| {
        let mut c = Command::new(image);
        c.args(["node", "install"])
            .args(node.options())
            .args(["--manager", "systemd", "--once", "--"])
            .args(daemon_args)
            .env("PATH", &path)
            .env("UNIT_DIR", &units)
            .env("STANDIN", &standin);
        let out = run_deadline(&mut c, DEADLINE);
        assert!(
            out.status.success(),
            "{}\n{}\n--- daemon\n{}",
            out.stdout,
            out.stderr,
            std::fs::read_to_string(standin.join("log")).unwrap_or_default()
        );
    };

    install(&lxcfs_rs(), &[]);
    assert_eq!(
        calls(),
        "daemon-reload\nenable lxcfs-rs.service\nis-active --quiet lxcfs-rs.service\nstart lxcfs-rs.service\n"
    );
    let unit = std::fs::read_to_string(units.join("lxcfs-rs.service")).unwrap();
    assert!(
        unit.contains("\nType=notify\n") && unit.contains("\nKillMode=process\n"),
        "{unit}"
    );
    let (supervisor, _) = node.serving().expect("the unit's daemon serves");
    let r = Reader::start(&rootfs, &node.mnt);

    // The same image again: nothing to do but check.
    install(&lxcfs_rs(), &[]);
    assert_eq!(
        calls(),
        "enable lxcfs-rs.service\nis-active --quiet lxcfs-rs.service\n"
    );

    // A new image: `systemctl reload`, the live upgrade.
    let image = tempfile::tempdir().unwrap();
    let new = new_image(image.path());
    install(&new, &[]);
    assert_eq!(
        calls(),
        "enable lxcfs-rs.service\nis-active --quiet lxcfs-rs.service\nreload lxcfs-rs.service\n"
    );
    let want = std::fs::read(&new).unwrap();
    assert_eq!(
        node.serving().map(|(s, exe)| (s, exe == want)),
        Some((supervisor, true))
    );
    r.wait_loops(3);

    // New options: a changed unit, `systemctl restart`; the worker is adopted.
    install(&new, &["--enable-cfs"]);
    assert_eq!(
        calls(),
        "daemon-reload\nenable lxcfs-rs.service\nis-active --quiet lxcfs-rs.service\nrestart lxcfs-rs.service\n"
    );
    // The new supervisor adopts the old worker, then replaces it with one of its own.
    let (sup2, _) = poll(DEADLINE, "one worker of the restarted supervisor", || {
        node.serving().filter(|(s, _)| *s != supervisor)
    });
    r.wait_loops(3);

    let (reads, failed, out) = r.finish();
    assert!(reads >= 6, "{out}");
    assert_eq!(failed, 0, "{out}");

    let mut c = node.node_cmd("uninstall");
    c.args(["--manager", "systemd"])
        .env("PATH", &path)
        .env("UNIT_DIR", &units)
        .env("STANDIN", &standin);
    run_deadline(&mut c, DEADLINE).ok();
    assert_eq!(calls(), "disable --now lxcfs-rs.service\ndaemon-reload\n");
    assert!(!units.join("lxcfs-rs.service").exists());
    // `disable --now` stops the unit; its main process exits on its own time.
    poll(DEADLINE, "the stopped unit's supervisor to exit", || {
        (!is_running(sup2)).then_some(())
    });
    assert!(!testkit::mounts::is_mounted(&node.mnt));
}
