//! lxcfs-rs: the daemon. Glue only: command line, checks, logging, signals, lifecycle.

mod cli;
mod mountpoint;
mod pidfile;
mod preflight;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use cli::{Cli, Resolver};
use hostview::{Host, Options, ResolverKind};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.debug);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the cause chain joined, as an operator reads it in the journal.
            eprintln!("lxcfs-rs: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn run(cli: &Cli) -> Result<()> {
    preflight::require_root()?;
    if !cli.skip_namespace_check {
        preflight::require_host_namespaces()?;
    }
    let mountpoint = mountpoint::prepare(&cli.mountpoint)?;
    let _pidfile = pidfile::PidFile::create(&cli.pidfile())?;

    let opts = Options {
        swap: !cli.disable_swap,
        cfs: cli.enable_cfs,
        loadavg: cli.enable_loadavg,
        resolver: match cli.init_resolver {
            Resolver::Auto => ResolverKind::Auto,
            Resolver::Ioctl => ResolverKind::Ioctl,
            Resolver::Procfs => ResolverKind::Procfs,
        },
    };
    let host = Arc::new(
        Host::open(&cli.host_root, opts)
            .with_context(|| format!("cannot read the host under {}", cli.host_root.display()))?,
    );
    tracing::info!("lxcfs-rs {} starting", env!("CARGO_PKG_VERSION"));
    tracing::info!("{}", host.features());
    if cli.enable_loadavg {
        host.start_loadavg()
            .context("cannot start the load average sampler")?;
    }
    let (pass, ignored) = cli.fuse_options();
    if !ignored.is_empty() {
        tracing::info!(
            "ignoring -o {} (lxcfs-rs sets these itself)",
            ignored.join(",")
        );
    }

    let signals = Signals::new([SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP])
        .context("cannot install signal handlers")?;
    let cfg = fusefs::MountConfig {
        threads: cli.threads(),
        extra_options: pass,
    };
    let session = fusefs::mount(host.clone(), &mountpoint, &cfg)
        .with_context(|| format!("cannot mount on {}", mountpoint.display()))?;
    tracing::info!(
        "serving {} with {} threads",
        mountpoint.display(),
        cfg.threads
    );
    serve(session, &host, signals)
}

/// Wait for a signal or for the session to end by itself (someone unmounted us).
fn serve(session: fusefs::BackgroundSession, host: &Host, mut signals: Signals) -> Result<()> {
    loop {
        for sig in signals.pending() {
            match sig {
                SIGTERM | SIGINT => {
                    tracing::info!("signal {sig}: unmounting");
                    session.umount_and_join().context("unmount failed")?;
                    tracing::info!("unmounted; exiting");
                    return Ok(());
                }
                SIGUSR2 => {
                    let on = !host.passthrough();
                    host.set_passthrough(on);
                    tracing::warn!(
                        "SIGUSR2: {}",
                        if on {
                            "serving the host's files to every reader"
                        } else {
                            "virtualizing again"
                        }
                    );
                }
                SIGUSR1 => tracing::warn!("SIGUSR1 (live upgrade) is not supported yet; ignored"),
                _ => tracing::info!("signal {sig} ignored"),
            }
        }
        if session.guard.is_finished() {
            tracing::warn!("the filesystem was unmounted from outside; exiting");
            return session.join().context("FUSE session ended with an error");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
