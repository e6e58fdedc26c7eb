//! `lxcfs-rs seccomp-agent`: answers containers' sysinfo(2) with their own numbers.
//!
//! No file can change what sysinfo(2) returns, and busybox `free` and `uptime`,
//! glibc's `sysconf(_SC_PHYS_PAGES)` and Go's `syscall.Sysinfo` all call it. A seccomp
//! profile whose action for `sysinfo` is `SCMP_ACT_NOTIFY` with a `listenerPath`
//! makes the runtime (runc >= 1.1, crun) connect to that unix socket when it starts a
//! container and send the filter's notification descriptor (SCM_RIGHTS) with the
//! container's state as JSON. From then on each sysinfo call of the container stops in
//! the kernel until this agent answers it: it works out the caller's container (its
//! pid namespace's init and that init's cgroups, as for a reader of the files), writes
//! the answer into the caller's buffer and lets the call return 0.
//!
//! Why a process of its own, not a thread of the FUSE worker: the notification
//! descriptors live as long as the process that holds them, and when the last copy is
//! closed the kernel fails every pending and later notified call of that filter with
//! ENOSYS (it never waits for a listener again). The FUSE workers are replaced on every
//! upgrade and crash and run under a system call filter made for serving files; this
//! agent does one small job, is not replaced when the daemon is, and answers from the
//! same hostview code, so its numbers are the files' numbers. It is upgraded in place
//! (SIGUSR1: `handover`), keeping every descriptor, so an upgrade or `systemctl reload`
//! loses no container. If it dies anyway, its containers' sysinfo fails fast (ENOSYS,
//! see above): no call hangs, and the containers started after it is back are served.

mod activation;
mod answer;
mod args;
mod handover;
mod intake;
mod registry;
mod sys;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use hostview::Host;

pub use args::Args;
#[cfg(test)]
pub use args::DEFAULT_SOCKET;
use registry::Registry;

pub fn run(args: &Args) -> Result<()> {
    crate::preflight::require_root()?;
    crate::preflight::require_host_namespaces()?;
    // One descriptor per container it answers for: see `limits`.
    crate::limits::raise_open_files();
    let opts = hostview::Options {
        swap: !args.disable_swap,
        loadavg: !args.disable_loadavg,
        host_uptime: args.host_uptime,
        ..hostview::Options::default()
    };
    let host = Arc::new(Host::open(Path::new("/"), opts).context("cannot read the host")?);
    // The binary on disk now, not this process's image: SIGUSR1 upgrades to it.
    let exe = std::env::current_exe().context("cannot find our own executable")?;
    let signals =
        Signals::new([SIGTERM, SIGINT, SIGUSR1]).context("cannot install signal handlers")?;
    let registry = Arc::new(Registry::new().context("cannot create the epoll instance")?);
    // A socket systemd holds (passed now, or to the program before an upgrade) is
    // systemd's to remove.
    let (listener, activated) = match &args.inherit {
        Some(spec) => {
            let (listener, held) = handover::take(spec)?;
            let n = held.len();
            for (fd, name) in held {
                registry
                    .add(fd, name.clone())
                    .with_context(|| format!("cannot watch container {name}'s listener"))?;
            }
            tracing::info!("live upgrade: serving on with {n} containers' descriptors");
            (
                std::os::unix::net::UnixListener::from(listener),
                args.socket_activated,
            )
        }
        None => match activation::listener(&args.socket)? {
            Some(l) => {
                tracing::info!("socket activated: serving on the socket systemd listens on");
                (l, true)
            }
            None => (intake::bind(&args.socket)?, false),
        },
    };
    // Kept for a live upgrade, which passes this copy on.
    let listener_fd: std::os::fd::OwnedFd = listener
        .try_clone()
        .context("cannot duplicate the socket")?
        .into();
    let busy = Arc::new(std::sync::Mutex::new(()));
    let _socket = (!activated).then(|| RemoveOnExit(args.socket.clone()));
    tracing::info!(
        "lxcfs-rs {} seccomp agent: answering sysinfo(2) for the containers whose profile names {}",
        env!("CARGO_PKG_VERSION"),
        args.socket.display()
    );
    tracing::info!("{}", host.features());
    let threads = args.threads.clamp(1, 64);
    let loadavg = !args.disable_loadavg;
    let (registry2, host2, busy2) = (registry.clone(), host.clone(), busy.clone());
    // The threads that read what containers and runtimes send start from one confined
    // thread, and so inherit its confinement; this one keeps what an upgrade's execve
    // needs (see `confine`).
    let started = std::thread::Builder::new()
        .name("confine".into())
        .spawn(move || -> Result<String> {
            let confined = confine();
            if loadavg {
                host2
                    .start_loadavg()
                    .context("cannot start the load average sampler")?;
            }
            {
                let (registry, busy) = (registry2.clone(), busy2);
                std::thread::Builder::new()
                    .name("intake".into())
                    .spawn(move || intake::accept_loop(&listener, &registry, &busy))
                    .context("cannot start the intake thread")?;
            }
            for i in 0..threads {
                let (registry, host) = (registry2.clone(), host2.clone());
                std::thread::Builder::new()
                    .name(format!("answer-{i}"))
                    .spawn(move || registry.serve(&host))
                    .context("cannot start an answering thread")?;
            }
            Ok(confined)
        })
        .context("cannot start the serving threads")?
        .join()
        .map_err(|_| anyhow::anyhow!("starting the serving threads panicked"))??;
    tracing::info!("{started}");
    let mut signals = signals;
    for sig in signals.forever() {
        if sig == SIGUSR1 {
            let mut pass = args.passthrough();
            if activated {
                pass.push("--socket-activated".into());
            }
            let e = handover::exec(&exe, &pass, &listener_fd, &registry, &busy);
            tracing::error!("live upgrade failed, serving on: {e:#}");
            continue;
        }
        tracing::info!("signal {sig}: exiting (the containers served get ENOSYS from sysinfo)");
        break;
    }
    Ok(())
}

/// What the threads that answer containers keep: the worker's capabilities and
/// `CAP_DAC_OVERRIDE`, for the caller's `/proc/<tid>/mem`, which is its owner's, mode
/// 0600 (a container process running as another user than root).
const ANSWER_CAPS: rustix::thread::CapabilitySet = rustix::thread::CapabilitySet::DAC_OVERRIDE;

/// Confine the calling thread, and so every thread it starts: the serving worker's
/// capabilities plus [`ANSWER_CAPS`], `no_new_privs`, and the worker's system call
/// allow-list plus [`crate::sandbox::EPOLL`] and [`crate::sandbox::AGENT`]. Capabilities, `no_new_privs` and filters
/// belong to threads, so the main thread, which only waits for signals and runs the
/// live upgrade, keeps what `execve` of the new binary needs: a filter would outlive
/// the exec and bind the new program to the old one's list (and stack a copy per
/// upgrade), a shrunken bounding set would leave the new program with less. Serving
/// unconfined beats not serving: a kernel that refuses either is logged. Says what it
/// kept, for the log.
pub fn confine() -> String {
    if let Err(e) = crate::privileges::drop_to_serving_with(ANSWER_CAPS) {
        tracing::error!("the agent's serving threads keep their capabilities: {e:#}");
    }
    let extra = [crate::sandbox::EPOLL, crate::sandbox::AGENT].concat();
    let calls = match crate::sandbox::confine_with(&extra) {
        Ok(()) => (crate::sandbox::ALLOWED.len() + extra.len()).to_string(),
        Err(e) => {
            tracing::error!("the agent serves without a system call filter: {e:#}");
            "0 (no filter)".into()
        }
    };
    format!(
        "serving threads confined: capabilities kept: {}; system calls allowed: {calls}",
        crate::privileges::describe()
    )
}

/// The log writer's confinement: [`confine`], quietly.
pub fn confine_log_writer() {
    let _ = confine();
}

/// The socket file goes with an agent that made it, so a runtime starting a container meanwhile is
/// refused at once ("connection refused") rather than left waiting.
struct RemoveOnExit(PathBuf);

impl Drop for RemoveOnExit {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
