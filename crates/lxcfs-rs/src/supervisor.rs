//! The supervisor: the process users and systemd know (the pidfile's). It owns the
//! mount and the `/dev/fuse` connection and runs workers that serve it, so a worker
//! that crashes, is killed or is upgraded never breaks a container's files: requests
//! wait in the kernel until the next worker reads them, and those the dead worker had
//! taken are put back with `FUSE_NOTIFY_RESEND` (Linux 6.9+) or, on older kernels,
//! answered by the next worker from the in-flight table ([`connection::Inflight`]).
//!
//! It does no filesystem work itself, in one thread (a second only writes its log).

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustix::io::FdFlags;
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use connection::counters::StartCause;
use connection::{Inflight, Shared, WorkerArgs};

use crate::cli::Cli;
use crate::crashloop::{self, CrashLoop};
use crate::notify::{self, Notifier};

mod service;

/// How long a new worker (restart or upgrade) may take to say it serves.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const TICK: Duration = Duration::from_millis(20);

/// For the restart tests (debug builds only): behave as on a kernel without
/// `FUSE_NOTIFY_RESEND` (before 6.9), so that the next worker answers what a dead one
/// had taken from the in-flight table on any kernel.
pub const NO_RESEND_ENV: &str = "LXCFS_RS_NO_RESEND";

fn resend_forced_off() -> bool {
    cfg!(debug_assertions) && std::env::var_os(NO_RESEND_ENV).is_some()
}

impl Worker {
    /// Signal the worker; one that already exited is no error worth reporting.
    fn signal(&self, sig: rustix::process::Signal) {
        let _ = rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), sig);
    }
}

struct Worker {
    child: Child,
    generation: u64,
    started: Instant,
    /// Read end of the pipe on which the worker says it serves.
    ready_pipe: std::fs::File,
    ready: bool,
    /// It serves the host's files because workers kept dying (see `crashloop`).
    safe: bool,
}

pub struct Supervisor<'a> {
    cli: &'a Cli,
    exe: PathBuf,
    mountpoint: PathBuf,
    fuse: OwnedFd,
    /// The connection's shared state, handed to every worker.
    shared: Shared,
    /// What each worker's threads took and have not answered (`None`: it could not be
    /// made; a dead worker's requests then wait for their readers on kernels before 6.9).
    inflight: Option<Inflight>,
    /// The last workers that crashed (not killed from outside), newest last: the next
    /// worker counts a request they held against replaying it.
    crashed: Vec<u32>,
    /// The daemon's counters (workers add to them) and what the metrics endpoint
    /// shows besides.
    metrics: std::sync::Arc<crate::metrics::State>,
    /// Why the next worker will be started.
    next_cause: StartCause,
    /// Some worker said it serves (or the connection was adopted): a SIGUSR1 may start
    /// a replacement.
    initialized: bool,
    /// Every reader is served the host's own files (SIGUSR2).
    host_files: bool,
    generation: u64,
    current: Option<Worker>,
    /// A worker from SIGUSR1 waiting to become ready before the current one goes.
    upgrading: Option<Worker>,
    /// Workers told to stop, still to be reaped.
    retiring: Vec<Worker>,
    /// Workers of a dead supervisor we took the connection from, to replace.
    orphans: Vec<rustix::process::Pid>,
    crash: CrashLoop,
    restart_at: Option<Instant>,
    resend_supported: bool,
    notifier: Notifier,
    /// READY=1 was sent: later workers are news for STATUS= only.
    announced: bool,
    /// RELOADING=1 was sent for a SIGUSR1 upgrade: READY=1 must follow, whether the
    /// new worker serves or the old one keeps serving.
    reloading: bool,
}

impl<'a> Supervisor<'a> {
    pub fn new(
        cli: &'a Cli,
        mountpoint: PathBuf,
        fuse: OwnedFd,
        orphans: Vec<rustix::process::Pid>,
        shared: Shared,
        metrics: std::sync::Arc<crate::metrics::State>,
    ) -> Result<Supervisor<'a>> {
        // The binary on disk now, not this process's image: SIGUSR1 upgrades to it.
        let exe = std::env::current_exe().context("cannot find our own executable")?;
        // Workers inherit the connection by number.
        rustix::io::fcntl_setfd(&fuse, FdFlags::empty())
            .context("cannot share the FUSE descriptor")?;
        for fd in shared.fds() {
            rustix::io::fcntl_setfd(fd, FdFlags::empty())
                .context("cannot share the connection's state")?;
        }
        rustix::io::fcntl_setfd(metrics.counters.fd(), FdFlags::empty())
            .context("cannot share the counters")?;
        let inflight = Inflight::create()
            .and_then(|t| {
                rustix::io::fcntl_setfd(t.fd(), FdFlags::empty())
                    .map(|()| t)
                    .map_err(Into::into)
            })
            .inspect_err(|e| {
                tracing::warn!(
                    "supervisor: cannot make the in-flight table ({e}): before Linux 6.9, a \
                     request a dying worker had taken waits until its reader is interrupted"
                )
            })
            .ok();
        let resend_supported = !resend_forced_off();
        if !resend_supported {
            tracing::warn!(
                "supervisor: {NO_RESEND_ENV} set: answering what dead workers had taken from \
                 the in-flight table, as before Linux 6.9"
            );
        }
        if !orphans.is_empty() {
            // An adopted connection was initialised by the orphans' first worker.
            shared.set_initialized();
        }
        Ok(Supervisor {
            cli,
            exe,
            mountpoint,
            fuse,
            initialized: !orphans.is_empty(),
            shared,
            inflight,
            crashed: Vec::new(),
            metrics,
            next_cause: if orphans.is_empty() {
                StartCause::First
            } else {
                StartCause::Adopt
            },
            host_files: false,
            generation: 0,
            current: None,
            upgrading: None,
            retiring: Vec::new(),
            orphans,
            crash: CrashLoop::default(),
            restart_at: Some(Instant::now()),
            resend_supported,
            notifier: Notifier::default(),
            announced: false,
            reloading: false,
        })
    }

    /// Number our workers after those of an adopted connection.
    pub fn after_generation(mut self, generation: u64) -> Self {
        self.generation = self.generation.max(generation);
        self
    }

    pub fn run(mut self, mut signals: Signals) -> Result<()> {
        loop {
            for sig in signals.pending() {
                match sig {
                    SIGTERM | SIGINT => return self.shutdown(sig),
                    SIGUSR1 => self.begin_upgrade(),
                    SIGUSR2 => self.toggle_host_files(),
                    SIGCHLD => {}
                    _ => tracing::info!("supervisor: signal {sig} ignored"),
                }
            }
            self.reap()?;
            self.check_ready();
            self.try_virtualizing_again();
            if self.restart_at.is_some_and(|t| Instant::now() >= t) {
                self.restart_at = None;
                match self.spawn(self.crash.safe(), self.next_cause) {
                    Ok(w) => self.current = Some(w),
                    Err(e) => {
                        tracing::error!("supervisor: cannot start a worker: {e:#}");
                        self.schedule_restart();
                    }
                }
            }
            if self.current.is_none() && self.restart_at.is_none() && self.upgrading.is_none() {
                self.schedule_restart();
            }
            std::thread::sleep(TICK);
        }
    }

    /// In safe mode: start a virtualizing worker when it is time to try one, and leave
    /// safe mode once one has lasted.
    fn try_virtualizing_again(&mut self) {
        let now = Instant::now();
        if let Some(w) = &self.current {
            if !w.safe && w.ready && self.crash.serving(w.started.elapsed()) {
                tracing::warn!(
                    "supervisor: worker {} has served for {}s: virtualizing again",
                    w.child.id(),
                    crashloop::STABLE.as_secs()
                );
            }
        }
        let safe_serving = self.current.as_ref().is_some_and(|w| w.safe && w.ready);
        if safe_serving && self.upgrading.is_none() && self.crash.retry_due(now) {
            tracing::info!("supervisor: trying a virtualizing worker again");
            match self.spawn(false, StartCause::Retry) {
                Ok(w) => {
                    self.crash.retry_started();
                    self.upgrading = Some(w);
                }
                Err(e) => {
                    tracing::error!("supervisor: cannot start a worker: {e:#}");
                    self.crash.retry_failed(now);
                }
            }
        }
    }

    /// Start a worker; a `safe` one serves every reader the host's files.
    fn spawn(&mut self, safe: bool, cause: StartCause) -> Result<Worker> {
        self.generation += 1;
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        rustix::io::fcntl_setfd(&write, FdFlags::empty())?;
        rustix::fs::fcntl_setfl(&read, rustix::fs::OFlags::NONBLOCK)?;
        let args = WorkerArgs {
            fuse_fd: self.fuse.as_raw_fd(),
            ready_fd: write.as_raw_fd(),
            generation: self.generation,
            // Also said by the shared state; on the command line for those who read it.
            initialized: self.shared.initialized(),
            shared_fds: self.shared.fds().iter().map(|f| f.as_raw_fd()).collect(),
            counters_fd: Some(self.metrics.counters.fd().as_raw_fd()),
            inflight_fd: self.inflight.as_ref().map(|t| t.fd().as_raw_fd()),
            replay: !self.resend_supported,
            crashed: self.crashed.clone(),
            host_files: self.host_files || safe,
            serve: self.cli.serve_options(),
            mountpoint: self.mountpoint.clone(),
        };
        let mut cmd = Command::new(&self.exe);
        cmd.args(args.to_args());
        // Only the supervisor speaks for the service (see `notify`).
        cmd.env_remove(notify::ENV);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", self.exe.display()))?;
        drop(write);
        self.metrics.counters.worker_started(cause, self.generation);
        tracing::info!(
            "supervisor: started worker {} (generation {}){}",
            child.id(),
            self.generation,
            if safe {
                ", serving the host's files (safe mode)"
            } else {
                ""
            }
        );
        Ok(Worker {
            child,
            generation: self.generation,
            started: Instant::now(),
            ready_pipe: std::fs::File::from(read),
            ready: false,
            safe,
        })
    }

    fn check_ready(&mut self) {
        let mut now_serving = None;
        for w in [self.current.as_mut(), self.upgrading.as_mut()]
            .into_iter()
            .flatten()
        {
            if w.ready {
                continue;
            }
            let mut b = [0u8; 1];
            if matches!(w.ready_pipe.read(&mut b), Ok(1)) {
                w.ready = true;
                self.initialized = true;
                self.metrics
                    .worker
                    .store(w.child.id(), std::sync::atomic::Ordering::Relaxed);
                now_serving = Some((w.child.id(), w.generation, w.safe));
                tracing::info!("supervisor: worker {} is serving", w.child.id());
                for pid in &self.orphans {
                    tracing::info!(
                        "supervisor: stopping orphaned worker {}",
                        pid.as_raw_nonzero()
                    );
                    let _ = rustix::process::kill_process(*pid, rustix::process::Signal::TERM);
                }
            } else if w.started.elapsed() > READY_TIMEOUT {
                tracing::error!(
                    "supervisor: worker {} did not start serving within {}s; killing it",
                    w.child.id(),
                    READY_TIMEOUT.as_secs()
                );
                let _ = w.child.kill();
            }
        }
        // An upgrade completes when the new worker serves: the old one may go.
        if self.upgrading.as_ref().is_some_and(|w| w.ready) {
            if let Some(mut old) = self.current.take() {
                tracing::info!("supervisor: upgrade: stopping worker {}", old.child.id());
                old.signal(rustix::process::Signal::TERM);
                old.ready = true;
                self.retiring.push(old);
            }
            let retry =
                self.upgrading.as_ref().is_some_and(|w| !w.safe) && self.crash.safe_retrying();
            self.current = self.upgrading.take();
            if !retry {
                self.crash.upgraded();
            }
        }
        if let Some((pid, generation, safe)) = now_serving {
            self.metrics.set_reads(self.shared.reads());
            let status =
                notify::serving(&self.mountpoint, pid, generation, self.host_files || safe);
            self.announce(&status);
        }
    }

    /// Collect exited workers; after any exit, requests it had read are resent.
    fn reap(&mut self) -> Result<()> {
        let mut died = false;
        if let Some(w) = self.current.as_mut() {
            if let Some(status) = w.child.try_wait()? {
                died = true;
                let lived = w.started.elapsed();
                let (pid, generation, w_safe) = (w.child.id(), w.generation, w.safe);
                self.current = None;
                if status.success() && !self.still_mounted() {
                    tracing::warn!(
                        "supervisor: the filesystem was unmounted from outside; exiting"
                    );
                    crate::logging::flush(crate::EXIT_FLUSH);
                    std::process::exit(0);
                }
                self.next_cause = cause_after(status);
                if crashed(status) {
                    self.note_crash(pid);
                }
                let next = self
                    .crash
                    .died(w_safe, crashed(status), lived, Instant::now());
                let delay = next.delay;
                tracing::error!(
                    "supervisor: worker {pid} (generation {generation}) {} after {:.1}s; {}",
                    describe(status),
                    lived.as_secs_f64(),
                    if delay.is_zero() {
                        "starting another now".to_string()
                    } else {
                        format!(
                            "starting another in {:.1}s ({} failed starts in a row)",
                            delay.as_secs_f64(),
                            self.crash.failures()
                        )
                    }
                );
                if next.entered_safe_mode {
                    tracing::error!(
                        "supervisor: {} workers in a row died within {}s: serving every reader \
                         the host's own files until a virtualizing worker lasts (next try in {}s)",
                        self.crash.failures(),
                        crashloop::STABLE.as_secs(),
                        crashloop::RETRY_FIRST.as_secs()
                    );
                }
                self.restart_at = Some(Instant::now() + delay);
            }
        }
        if let Some(w) = self.upgrading.as_mut() {
            if let Some(status) = w.child.try_wait()? {
                died = true;
                let line = format!(
                    "the new worker {} {} before serving; keeping the current one",
                    w.child.id(),
                    describe(status)
                );
                tracing::error!("supervisor: {line}");
                if !w.safe {
                    self.crash.retry_failed(Instant::now());
                }
                if crashed(status) {
                    let pid = w.child.id();
                    self.note_crash(pid);
                }
                self.upgrading = None;
                if self.reloading {
                    self.reload_failed(&line);
                }
            }
        }
        let orphans = self.orphans.len();
        self.orphans.retain(|pid| alive(*pid));
        if self.orphans.len() != orphans {
            died = true;
            tracing::info!("supervisor: orphaned worker exited");
        }
        let before = self.retiring.len();
        self.retiring
            .retain_mut(|w| !matches!(w.child.try_wait(), Ok(Some(_))));
        if self.retiring.len() != before {
            died = true;
            tracing::info!("supervisor: old worker exited");
        }
        if died {
            self.resend();
            self.wake_pollers();
        }
        Ok(())
    }

    fn resend(&mut self) {
        if !self.resend_supported {
            return;
        }
        match connection::notify_resend(self.fuse.as_fd()) {
            Ok(()) => tracing::debug!("supervisor: asked the kernel to resend unanswered requests"),
            Err(e) => {
                self.resend_supported = false;
                tracing::warn!(
                    "supervisor: this kernel cannot resend requests a dead worker had taken \
                     (FUSE_NOTIFY_RESEND needs Linux 6.9+: {e}); {}",
                    if self.inflight.is_some() {
                        "the next worker answers them from the in-flight table"
                    } else {
                        "readers caught in such a request wait until they are interrupted"
                    }
                );
            }
        }
    }

    /// Wake the PSI pollers a dead worker had promised a notification (it cannot any
    /// more): they poll again and the next worker answers them.
    fn wake_pollers(&mut self) {
        let pollers = self.shared.take_pollers();
        let mut woken = 0;
        for kh in &pollers {
            match connection::notify_poll(self.fuse.as_fd(), *kh) {
                Ok(()) => woken += 1,
                Err(e) => tracing::debug!("supervisor: FUSE_NOTIFY_POLL {kh}: {e}"),
            }
        }
        if woken > 0 {
            tracing::info!(
                "supervisor: woke {woken} PSI trigger pollers a dead worker left waiting"
            );
        }
    }

    fn note_crash(&mut self, pid: u32) {
        const KEPT: usize = 16;
        self.crashed.push(pid);
        if self.crashed.len() > KEPT {
            self.crashed.remove(0);
        }
    }

    fn schedule_restart(&mut self) {
        self.restart_at = Some(Instant::now() + self.crash.start_failed());
    }

    fn begin_upgrade(&mut self) {
        if self.upgrading.is_some() {
            tracing::warn!("supervisor: SIGUSR1: an upgrade is already in progress");
            return;
        }
        if !self.initialized {
            tracing::warn!("supervisor: SIGUSR1 before the first worker served; ignored");
            return;
        }
        tracing::info!(
            "supervisor: SIGUSR1: starting {} to replace the worker",
            self.exe.display()
        );
        self.reloading = true;
        self.notifier.reloading(&format!(
            "live upgrade: starting {} to serve {}",
            self.exe.display(),
            self.mountpoint.display()
        ));
        match self.spawn(self.crash.safe(), StartCause::Upgrade) {
            Ok(w) => self.upgrading = Some(w),
            Err(e) => {
                let line = format!("upgrade failed: {e:#}; keeping the current worker");
                tracing::error!("supervisor: {line}");
                self.reload_failed(&line);
            }
        }
    }

    fn toggle_host_files(&mut self) {
        self.host_files = !self.host_files;
        self.metrics
            .host_files
            .store(self.host_files, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            "supervisor: SIGUSR2: {}",
            if self.host_files {
                "serving the host's files to every reader"
            } else {
                "virtualizing again"
            }
        );
        // A safe worker keeps serving the host's files whatever the switch says.
        for w in [self.current.as_ref(), self.upgrading.as_ref()]
            .into_iter()
            .flatten()
            .filter(|w| !w.safe)
        {
            w.signal(rustix::process::Signal::USR2);
        }
    }

    /// Stop workers, unmount, and close the connection so that bind mounts left in
    /// containers fail at once rather than hang.
    fn shutdown(mut self, sig: i32) -> Result<()> {
        if self.cli.keep_serving_on_exit {
            return self.leave_serving(sig);
        }
        self.notifier.stopping(&format!(
            "stopping: unmounting {}",
            self.mountpoint.display()
        ));
        tracing::info!("supervisor: signal {sig}: unmounting");
        let mut all: Vec<Worker> = self.retiring.drain(..).collect();
        all.extend(self.current.take());
        all.extend(self.upgrading.take());
        for w in &all {
            w.signal(rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for w in &mut all {
            while matches!(w.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(TICK);
            }
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
        connection::unmount(&self.mountpoint)
            .with_context(|| format!("cannot unmount {}", self.mountpoint.display()))?;
        drop(self.fuse);
        tracing::info!("supervisor: unmounted; exiting");
        Ok(())
    }

    fn still_mounted(&self) -> bool {
        crate::mountpoint::is_ours(&self.mountpoint)
    }
}

/// Whether a process that is not our child still runs (its exit leaves a zombie until
/// its own parent reaps it, which `kill(pid, 0)` would count as alive).
fn alive(pid: rustix::process::Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero()))
        .ok()
        .and_then(|s| procfile::pid::parse_stat(&s))
        .is_some_and(|st| st.state != b'Z' && st.state != b'X')
}

/// Whether a worker ended by a fault of its own, not killed or stopped from outside.
fn crashed(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(s) => ![libc::SIGKILL, libc::SIGTERM, libc::SIGINT, libc::SIGHUP].contains(&s),
        None => !status.success(),
    }
}

/// Why the worker after one that ended with `status` is started.
fn cause_after(status: ExitStatus) -> StartCause {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(libc::SIGKILL) => StartCause::Killed,
        Some(_) => StartCause::Crash,
        None => StartCause::Exit,
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!(
            "was killed by signal {s}{}",
            match s {
                9 => " (SIGKILL: killed, or the OOM killer)",
                6 => " (SIGABRT: it aborted, e.g. a panic)",
                11 => " (SIGSEGV)",
                _ => "",
            }
        ),
        _ => "ended".to_string(),
    }
}
