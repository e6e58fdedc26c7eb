//! `lxcfs-rs node install|ready|uninstall`: lxcfs-rs on a Kubernetes node, run from a
//! privileged DaemonSet pod (deploy/kubernetes/).
//!
//! The daemon must outlive the pod: deleting a pod (a rollout, an eviction, `kubectl
//! delete`) kills every process in its container's cgroup, and a daemon killed with its
//! worker ends the FUSE connection, leaving every container's bound files answering
//! "Transport endpoint is not connected". So the pod does not run the daemon: it copies
//! its binary onto the node and starts it there, as a systemd unit where systemd is the
//! node's init (it then also starts at boot, before the runtimes), else in a cgroup and
//! session of its own (`detached`). A new image's pod finds the daemon's worker running
//! a binary replaced on disk and live-upgrades it (SIGUSR1, `systemctl reload`): the
//! mount never goes away. Only `uninstall` stops it.

mod args;
mod detached;
mod host;
mod systemd;

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustix::mount::{UnmountFlags, unmount};
use rustix::process::{Pid, Signal, kill_process};

pub use args::Args;
use args::{Command, Host, Manager};

use crate::check::mount::{MountReport, State, check};

/// How long a start or a live upgrade may take before install gives up (and the pod
/// restarts, trying again).
const SERVE_DEADLINE: Duration = Duration::from_secs(60);

/// Exit status: 0 done (install: stopped by SIGTERM), 1 failed.
pub fn run(args: &Args) -> u8 {
    let result = match &args.command {
        Command::Install {
            host,
            log,
            cgroup,
            watch_interval,
            once,
            daemon_args,
        } => install(
            host,
            log,
            cgroup,
            Duration::from_secs((*watch_interval).max(1)),
            *once,
            daemon_args,
        ),
        Command::Ready { host } => ready(host),
        Command::Remount { host } => {
            host::enter(host.host_pid).and_then(|()| crate::remount::run(&host.mountpoint))
        }
        Command::Uninstall { host, wait } => uninstall(host, *wait),
        Command::Launch { cgroup, exec } => detached::launch(cgroup, exec),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "lxcfs-rs node: {e:#}");
            1
        }
    }
}

fn uses_systemd(host: &Host) -> bool {
    match host.manager {
        Manager::Auto => systemd::is_init(),
        Manager::Systemd => true,
        Manager::Detached => false,
    }
}

fn install(
    host: &Host,
    log: &Path,
    cgroup: &str,
    interval: Duration,
    once: bool,
    daemon_args: &[String],
) -> Result<()> {
    // Read before leaving the container's mount namespace, where our image lives.
    let image = std::fs::read("/proc/self/exe").context("cannot read our own binary")?;
    host::enter(host.host_pid)?;
    let binary = host.binary();
    if host::install_file(&binary, &image, 0o755)? {
        tracing::info!("installed {}", binary.display());
    }
    drop(image);
    let report = check(&host.mountpoint, true);
    if report.state == State::Missing {
        std::fs::create_dir_all(&host.mountpoint)
            .with_context(|| format!("cannot create {}", host.mountpoint.display()))?;
    }
    let stale = report.daemon.as_ref().is_some_and(|d| d.binary_replaced);
    let systemd = uses_systemd(host);
    let mut child = None;
    if systemd {
        let text = systemd::unit(&binary, &host.runtime_dir, &host.mountpoint, daemon_args)?;
        systemd::apply(&host.unit_dir, &text, stale)?;
    } else {
        ensure_detached(host, &report, &binary, log, cgroup, daemon_args, &mut child)?;
    }
    let served = wait_serving(&host.mountpoint, SERVE_DEADLINE, child.as_mut())?;
    tracing::info!("{}: {}", host.mountpoint.display(), served.describe());
    if report.state == State::Dead {
        remount(&binary, &host.mountpoint);
    }
    write_cdi(host);
    if once {
        return Ok(());
    }
    watch(
        host,
        &binary,
        log,
        cgroup,
        daemon_args,
        interval,
        systemd,
        child,
    )
}

/// Start a daemon, or upgrade the running one, as `report` finds the mount.
fn ensure_detached(
    host: &Host,
    report: &MountReport,
    binary: &Path,
    log: &Path,
    cgroup: &str,
    daemon_args: &[String],
    child: &mut Option<std::process::Child>,
) -> Result<()> {
    let supervisor = report.daemon.as_ref().and_then(|d| d.pid);
    match (report.state, supervisor) {
        (State::LxcfsRs, Some(pid)) if runs_other_options(pid, binary, host, daemon_args) => {
            // Options only take effect in a new supervisor: this one exits without
            // unmounting (--keep-serving-on-exit), the next adopts its worker and
            // replaces it with one of its own options. No read fails on the way.
            tracing::info!("restarting supervisor {pid} with the new options (the mount stays)");
            stop(pid)?;
            *child = Some(detached::start(
                binary,
                cgroup,
                log,
                &host.runtime_dir,
                daemon_args,
                &host.mountpoint,
            )?);
            Ok(())
        }
        (State::LxcfsRs, Some(pid)) => {
            if report.daemon.as_ref().is_some_and(|d| d.binary_replaced) {
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
                let exe = exe.to_string_lossy();
                if exe.trim_end_matches(" (deleted)") != binary.to_string_lossy() {
                    tracing::warn!(
                        "{} is served by supervisor {pid} of {exe}, not of {}: not upgrading it",
                        host.mountpoint.display(),
                        binary.display()
                    );
                    return Ok(());
                }
                tracing::info!("live-upgrading supervisor {pid} to the new binary (SIGUSR1)");
                signal(pid, Signal::USR1)?;
            }
            Ok(())
        }
        // Orphaned workers (adopted by the new supervisor), a dead mount (detached by
        // it), or nothing.
        (State::LxcfsRs, None) | (State::Dead | State::NotMounted | State::Missing, _) => {
            tracing::info!(
                "{}: {}; starting {}",
                host.mountpoint.display(),
                report.describe(),
                binary.display()
            );
            *child = Some(detached::start(
                binary,
                cgroup,
                log,
                &host.runtime_dir,
                daemon_args,
                &host.mountpoint,
            )?);
            Ok(())
        }
        _ => bail!("{}: {}", host.mountpoint.display(), report.describe()),
    }
}

/// Whether supervisor `pid` runs our binary with other options than `daemon_args`
/// (then it must be restarted to take them). A daemon of another binary (a package's)
/// is not ours to restart.
fn runs_other_options(pid: u32, binary: &Path, host: &Host, daemon_args: &[String]) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let mut argv = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| std::ffi::OsStr::from_bytes(a).to_os_string());
    if argv.next().as_deref() != Some(binary.as_os_str()) {
        return false;
    }
    let want = detached::command_line(&host.runtime_dir, daemon_args, &host.mountpoint);
    argv.collect::<Vec<_>>() != want
}

/// SIGTERM, then wait (up to 10 s) until the process is gone.
fn stop(pid: u32) -> Result<()> {
    if std::fs::metadata(format!("/proc/{pid}")).is_err() {
        return Ok(());
    }
    signal(pid, Signal::TERM)?;
    let t0 = Instant::now();
    while std::fs::metadata(format!("/proc/{pid}")).is_ok() {
        if t0.elapsed() > Duration::from_secs(10) {
            bail!("supervisor {pid} did not exit within 10s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// After the mount was dead (supervisor and worker both gone), containers that had
/// bound its files hold dead binds: the new daemon's files are bound in their place
/// (`lxcfs-rs --remount`, in a process of its own: it switches mount namespaces).
fn remount(binary: &Path, mountpoint: &Path) {
    match std::process::Command::new(binary)
        .arg("--remount")
        .arg(mountpoint)
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => tracing::warn!("lxcfs-rs --remount {}: {s}", mountpoint.display()),
        Err(e) => tracing::warn!("cannot run lxcfs-rs --remount: {e}"),
    }
}

fn signal(pid: u32, sig: Signal) -> Result<()> {
    let p = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .with_context(|| format!("bad pid {pid}"))?;
    kill_process(p, sig).with_context(|| format!("cannot signal {pid}"))
}

/// Until the mount serves with a worker of the binary on disk.
fn wait_serving(
    mountpoint: &Path,
    deadline: Duration,
    mut child: Option<&mut std::process::Child>,
) -> Result<MountReport> {
    let t0 = Instant::now();
    loop {
        let r = check(mountpoint, true);
        if r.serves() && !r.daemon.as_ref().is_some_and(|d| d.binary_replaced) {
            return Ok(r);
        }
        if let Some(c) = child.as_deref_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                bail!("the daemon exited ({status}) before it served: see its log");
            }
        }
        if t0.elapsed() > deadline {
            bail!(
                "{} does not serve after {}s: {}",
                mountpoint.display(),
                deadline.as_secs(),
                r.describe()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write_cdi(host: &Host) {
    let Some(dir) = host.cdi_dir() else { return };
    let served = crate::cdi::served(&host.mountpoint);
    let spec = crate::cdi::spec(&host.mountpoint, &served);
    // A spec that cannot be written costs CDI users, not the mount: say so, go on.
    match crate::cdi::to_json(&spec).and_then(|t| crate::cdi::write_atomically(dir, &t)) {
        Ok(p) => tracing::info!("CDI spec {}", p.display()),
        Err(e) => tracing::warn!("cannot write the CDI spec: {e:#}"),
    }
}

fn term_flag() -> Result<Arc<AtomicBool>> {
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone()).context("cannot handle signals")?;
    }
    Ok(term)
}

/// Sleep `d`, or less when asked to stop; returns whether we were.
fn sleep_or_stop(term: &AtomicBool, d: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        if term.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    term.load(Ordering::Relaxed)
}

/// The pod's life after install: a detached supervisor that is gone is started again
/// (it adopts the worker); systemd restarts its unit itself, so there we only report.
/// SIGTERM (the pod's deletion) ends this and leaves the daemon serving.
#[allow(clippy::too_many_arguments)]
fn watch(
    host: &Host,
    binary: &Path,
    log: &Path,
    cgroup: &str,
    daemon_args: &[String],
    interval: Duration,
    systemd: bool,
    mut child: Option<std::process::Child>,
) -> Result<()> {
    let term = term_flag()?;
    let mut tail = (!systemd).then(|| detached::LogTail::at_end(log));
    let mut last_ok = true;
    loop {
        if sleep_or_stop(&term, interval) {
            tracing::info!("stopping; the daemon goes on serving");
            return Ok(());
        }
        if let Some(c) = child.as_mut() {
            // Reap a daemon that exited; one that moved on to its own session stays ours
            // to reap until this pod goes.
            if let Ok(Some(status)) = c.try_wait() {
                tracing::warn!("the daemon exited: {status}");
                child = None;
            }
        }
        if let Some(t) = tail.as_mut() {
            t.copy_new();
        }
        let r = check(&host.mountpoint, true);
        let ok = r.serves() && r.daemon.as_ref().is_some_and(|d| d.pid.is_some());
        if !ok && !systemd {
            tracing::warn!("{}: {}", host.mountpoint.display(), r.describe());
            // A mount that does not answer in time, or another daemon's, is said and
            // looked at again next time; the pod stays.
            if let Err(e) = ensure_detached(host, &r, binary, log, cgroup, daemon_args, &mut child)
            {
                tracing::warn!("{e:#}");
                last_ok = false;
                continue;
            }
            match wait_serving(&host.mountpoint, SERVE_DEADLINE, child.as_mut()) {
                Ok(_) if r.state == State::Dead => remount(binary, &host.mountpoint),
                Ok(_) => {}
                Err(e) => tracing::warn!("{e:#}"),
            }
        } else if ok != last_ok {
            tracing::info!("{}: {}", host.mountpoint.display(), r.describe());
        }
        last_ok = ok;
    }
}

/// A readiness probe: the node's mount serves.
fn ready(host: &Host) -> Result<()> {
    host::enter(host.host_pid)?;
    let r = check(&host.mountpoint, true);
    if !r.serves() {
        bail!("{}: {}", host.mountpoint.display(), r.describe());
    }
    println!("{}: {}", host.mountpoint.display(), r.describe());
    Ok(())
}

fn uninstall(host: &Host, wait: bool) -> Result<()> {
    host::enter(host.host_pid)?;
    let report = check(&host.mountpoint, true);
    let supervisor = report.daemon.as_ref().and_then(|d| d.pid);
    // First, so that no new container binds the files; containers that did keep them
    // (the worker serves until the last bind is gone).
    if crate::mountpoint::is_ours(&host.mountpoint) {
        unmount(&host.mountpoint, UnmountFlags::DETACH)
            .with_context(|| format!("cannot detach {}", host.mountpoint.display()))?;
        tracing::info!("detached {}", host.mountpoint.display());
    }
    if uses_systemd(host) || host.unit_dir.join(systemd::UNIT).exists() {
        systemd::remove(&host.unit_dir)?;
    }
    if let Some(pid) = supervisor {
        // The supervisor runs with --keep-serving-on-exit: it exits, its worker serves on.
        stop(pid)?;
        tracing::info!("stopped supervisor {pid}");
    }
    for f in [
        Some(host.binary()),
        host.cdi_dir().map(|d| d.join(crate::cdi::FILE_NAME)),
    ]
    .into_iter()
    .flatten()
    {
        match std::fs::remove_file(&f) {
            Ok(()) => tracing::info!("removed {}", f.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!("cannot remove {}: {e}", f.display()),
        }
    }
    tracing::info!("lxcfs-rs is uninstalled from this node");
    if wait {
        let term = term_flag()?;
        while !sleep_or_stop(&term, Duration::from_secs(3600)) {}
    }
    Ok(())
}
