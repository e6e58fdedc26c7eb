//! The worker: serves the supervisor's FUSE connection until it ends or we are told to
//! stop. It may die at any moment (crash, OOM, upgrade); the supervisor keeps the
//! connection and starts another.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR2};
use signal_hook::iterator::Signals;

use crate::cli::Cli;
use hostview::Host;

/// Environment variable for the restart tests: `abort-on=<file>` (e.g. `abort-on=loadavg`)
/// makes the worker abort whenever it renders that file, like a worker that crashes on
/// a request. Read by workers only.
pub const FAULT_ENV: &str = "LXCFS_RS_FAULT";

fn fault() -> Option<hostview::VirtualFile> {
    let v = std::env::var(FAULT_ENV).ok()?;
    let name = v.strip_prefix("abort-on=")?;
    hostview::VirtualFile::ALL
        .into_iter()
        .find(|f| f.name() == name)
}

pub fn run(cli: &Cli) -> Result<()> {
    let (Some(fuse_fd), Some(ready_fd)) = (cli.fuse_fd, cli.ready_fd) else {
        bail!("--worker needs --fuse-fd and --ready-fd (it is started by the supervisor)");
    };
    let fuse = adopt(fuse_fd)?;
    let share = if cli.pt_fds.is_empty() {
        None
    } else {
        let fds = cli
            .pt_fds
            .iter()
            .map(|&n| adopt(n))
            .collect::<Result<Vec<_>>>()?;
        Some(Arc::new(
            fusefs::PtShare::from_fds(fds).context("the passthrough state")?,
        ))
    };
    let mut ready = std::fs::File::from(adopt(ready_fd)?);

    let mut opts = crate::options(cli);
    opts.abort_on = fault();
    let host = Arc::new(
        Host::open(&cli.host_root, opts)
            .with_context(|| format!("cannot read the host under {}", cli.host_root.display()))?,
    );
    host.set_passthrough(cli.passthrough_on);
    if cli.loadavg() {
        host.start_loadavg()
            .context("cannot start the load average sampler")?;
    }
    let signals =
        Signals::new([SIGTERM, SIGINT, SIGUSR2]).context("cannot install signal handlers")?;
    let cfg = fusefs::ServeConfig {
        threads: cli.threads(),
        poll: cli.fuse_poll(),
        generation: cli.generation,
        initialized: cli.fuse_initialized,
        passthrough: share,
    };
    let session =
        fusefs::serve(host.clone(), fuse, &cfg).context("cannot serve the FUSE connection")?;
    tracing::info!(
        "worker {} (generation {}) serving with {} threads{}{}",
        std::process::id(),
        cfg.generation,
        cfg.threads,
        match cfg.poll {
            Some(p) => format!(", one polling for {} µs after each request", p.as_micros()),
            None => String::new(),
        },
        if cfg.initialized {
            ", adopted the connection"
        } else {
            ""
        }
    );
    let _ = ready.write_all(b"R");
    drop(ready);
    wait(session, &host, signals)
}

fn adopt(n: i32) -> Result<OwnedFd> {
    hostview::adopt_inherited_fd(n).with_context(|| format!("inherited descriptor {n}"))
}

fn wait(session: fusefs::BackgroundSession, host: &Host, mut signals: Signals) -> Result<()> {
    loop {
        for sig in signals.pending() {
            match sig {
                SIGUSR2 => {
                    let on = !host.passthrough();
                    host.set_passthrough(on);
                    tracing::warn!(
                        "{}",
                        if on {
                            "serving the host's files to every reader"
                        } else {
                            "virtualizing again"
                        }
                    );
                }
                // Stop at once: requests in flight are resent to our successor.
                _ => {
                    crate::logging::flush(crate::EXIT_FLUSH);
                    std::process::exit(0)
                }
            }
        }
        if session.guard.is_finished() {
            tracing::info!("the FUSE connection ended; worker exiting");
            return session.join().context("FUSE session ended with an error");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
