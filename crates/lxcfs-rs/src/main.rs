//! lxcfs-rs: the daemon. Glue only: command line, checks, logging, signals, lifecycle.

mod agent;
mod cdi;
mod check;
mod cli;
mod crashloop;
mod device_plugin;
mod limits;
mod logging;
mod metrics;
mod mountpoint;
mod node;
mod notify;
mod nri;
mod orphan;
mod pidfile;
mod preflight;
mod privileges;
mod remount;
mod sandbox;
mod seccomp_profile;
mod status;
mod supervisor;
mod worker;

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use cli::Cli;
use connection::{Backing, Reads, Shared, WorkerArgs};
use hostview::Host;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // A worker is started by its supervisor with the hand-off's own command line.
    let result = if connection::args::is_worker(&args) {
        match WorkerArgs::from_args(&args) {
            Ok(w) => {
                logging::init(w.serve.debug, w.serve.log_json);
                // From its first line on, a stalled log reader cannot block the worker.
                logging::start_queue(worker::confine_this_thread);
                preflight::require_root().and_then(|()| worker::run(&w))
            }
            Err(e) => Err(e.into()),
        }
    } else if args.first().is_some_and(|a| a == "check") {
        // Its own command line (see `check`); a mountpoint named "check" is ./check.
        let check = check::Args::parse_from(
            std::iter::once(OsString::from("lxcfs-rs check")).chain(args.into_iter().skip(1)),
        );
        return ExitCode::from(check::run(&check));
    } else if args.first().is_some_and(|a| a == "status") {
        let status = status::Args::parse_from(
            std::iter::once(OsString::from("lxcfs-rs status")).chain(args.into_iter().skip(1)),
        );
        return ExitCode::from(status::run(&status));
    } else if args.first().is_some_and(|a| a == "node") {
        // Run by a DaemonSet's pod; single-threaded until it has entered the node's
        // namespaces (a mount-namespace switch refuses a multi-threaded caller).
        let node = node::Args::parse_from(
            std::iter::once(OsString::from("lxcfs-rs node")).chain(args.into_iter().skip(1)),
        );
        logging::init(false, false);
        return ExitCode::from(node::run(&node));
    } else if args.first().is_some_and(|a| a == "seccomp-profile") {
        let p = seccomp_profile::Args::parse_from(
            std::iter::once(OsString::from("lxcfs-rs seccomp-profile"))
                .chain(args.into_iter().skip(1)),
        );
        return seccomp_profile::run(&p);
    } else if args.first().is_some_and(|a| a == "seccomp-agent") {
        let a = agent::Args::parse_from(
            std::iter::once(OsString::from("lxcfs-rs seccomp-agent"))
                .chain(args.into_iter().skip(1)),
        );
        logging::init(a.debug, a.log_json);
        logging::start_queue(agent::confine_log_writer);
        agent::run(&a)
    } else if args.first().is_some_and(|a| a == "cdi") {
        // Likewise its own command line; a mountpoint named "cdi" is ./cdi.
        let cdi = cdi::Args::parse_from(
            std::iter::once(OsString::from("lxcfs-rs cdi")).chain(args.into_iter().skip(1)),
        );
        return ExitCode::from(cdi::run(&cdi));
    } else if args.first().is_some_and(|a| a == "device-plugin") {
        let dp = device_plugin::Args::parse_from(
            std::iter::once(OsString::from("lxcfs-rs device-plugin"))
                .chain(args.into_iter().skip(1)),
        );
        logging::init(dp.debug, false);
        logging::start_queue(|| {});
        let code = device_plugin::run(&dp);
        logging::flush(EXIT_FLUSH);
        return ExitCode::from(code);
    } else if args.first().is_some_and(|a| a == "nri") {
        // Likewise its own command line; a mountpoint named "nri" is ./nri.
        let nri = nri::Args::parse_from(
            std::iter::once(OsString::from("lxcfs-rs nri")).chain(args.into_iter().skip(1)),
        );
        logging::init(nri.debug, false);
        logging::start_queue(|| {});
        let code = nri::run(&nri);
        logging::flush(EXIT_FLUSH);
        return ExitCode::from(code);
    } else {
        let cli = Cli::parse();
        logging::init(cli.debug, cli.log_format == cli::LogFormat::Json);
        // --remount enters containers' mount namespaces: it stays single-threaded.
        if !cli.remount {
            logging::start_queue(|| {});
        }
        run(&cli)
    };
    logging::flush(EXIT_FLUSH);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the cause chain joined, as an operator reads it in the journal.
            logging::write_now(&format!("lxcfs-rs: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// How long an exiting process waits for its queued log lines to be written.
pub const EXIT_FLUSH: std::time::Duration = std::time::Duration::from_millis(200);

fn run(cli: &Cli) -> Result<()> {
    preflight::require_root()?;
    if cli.remount {
        return remount::run(&cli.mountpoint);
    }
    if !cli.skip_namespace_check {
        preflight::require_host_namespaces()?;
    }
    // The pidfile first: holding its lock proves no other supervisor is alive, so a live
    // lxcfs-rs mount found below is served by orphaned workers we may adopt.
    let _pidfile = pidfile::PidFile::create(&cli.pidfile())?;
    let state = mountpoint::prepare(&cli.mountpoint)?;
    // Adopt (or refuse) before anything else is said, so a refusal is one line.
    let mut adopted = match &state {
        mountpoint::State::Free(_) => None,
        mountpoint::State::Served(mountpoint) => Some(orphan::adopt(mountpoint)?),
    };

    // Check the host before mounting, so a bad root fails with its reason here.
    let host = Host::open(&cli.host_root, worker::host_options(&cli.serve_options()))
        .with_context(|| format!("cannot read the host under {}", cli.host_root.display()))?;
    tracing::info!("lxcfs-rs {} starting", env!("CARGO_PKG_VERSION"));
    tracing::info!("{}", host.features());
    drop(host);
    let (pass, ignored) = cli.fuse_options();
    if !ignored.is_empty() {
        tracing::info!(
            "ignoring -o {} (lxcfs-rs sets these itself)",
            ignored.join(",")
        );
    }
    let signals = Signals::new([SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP, SIGCHLD])
        .context("cannot install signal handlers")?;
    let mountpoint_path = match &state {
        mountpoint::State::Free(m) | mountpoint::State::Served(m) => m.clone(),
    };
    // An adopted connection's counters go on; else new ones.
    let theirs = adopted
        .as_mut()
        .and_then(|o| o.iter_mut().find_map(|o| o.counters.take()));
    let counters = match theirs {
        Some(c) => c,
        None => connection::Counters::create().context("cannot create the counters")?,
    };
    let metrics = std::sync::Arc::new(metrics::State::new(
        std::sync::Arc::new(counters),
        &mountpoint_path,
    ));
    // Metrics are for operators: a daemon that cannot offer them still serves.
    let socket = cli.metrics_socket();
    let _socket = metrics::RemoveOnExit(socket.clone());
    match metrics::Listener::unix(&socket).and_then(|l| metrics::serve(l, metrics.clone())) {
        Ok(()) => tracing::info!("metrics on {}", socket.display()),
        Err(e) => tracing::warn!("no metrics socket: {e:#}"),
    }
    if let Some(addr) = cli.metrics_addr {
        // Asked for explicitly: failing to offer it is an error the user must see.
        let l = metrics::Listener::tcp(addr)?;
        tracing::info!("metrics on {}", l.describe());
        metrics::serve(l, metrics.clone())?;
    }
    match state {
        mountpoint::State::Free(mountpoint) => {
            let fuse = connection::open_and_mount(&mountpoint, &pass, cli.enable_psi_poll)
                .with_context(|| format!("cannot mount on {}", mountpoint.display()))?;
            tracing::info!("mounted {}", mountpoint.display());
            let shared = connection_state(cli.fuse_passthrough)?;
            supervisor::Supervisor::new(cli, mountpoint, fuse, Vec::new(), shared, metrics)?
                .run(signals)
        }
        mountpoint::State::Served(mountpoint) => {
            let mut orphans = adopted.unwrap_or_default();
            if orphans.is_empty() {
                anyhow::bail!(
                    "{} is served by lxcfs-rs but nothing to adopt was found",
                    mountpoint.display()
                );
            }
            let first = orphans.remove(0);
            tracing::warn!(
                "{} is served by worker {} of a supervisor that is gone; adopting its connection",
                mountpoint.display(),
                first.pid.as_raw_nonzero()
            );
            let generation = orphans
                .iter()
                .map(|o| o.generation)
                .fold(first.generation, u64::max);
            let mut pids = vec![first.pid];
            pids.extend(orphans.into_iter().map(|o| o.pid));
            // The connection keeps the passthrough setting it was mounted with.
            warn_if_reads_differ(cli.fuse_passthrough, &first.shared);
            supervisor::Supervisor::new(cli, mountpoint, first.fuse, pids, first.shared, metrics)?
                .after_generation(generation)
                .run(signals)
        }
    }
}

/// The state a new connection's workers share: with `--fuse-passthrough`, memfds that
/// pure opens are served from; by default, the unmappable backing that keeps a mapping
/// from the page cache every container shares; without backing files when they cannot
/// be had.
fn connection_state(passthrough_reads: bool) -> Result<Shared> {
    let backing = if passthrough_reads {
        Backing::Memfds
    } else {
        Backing::Unmappable
    };
    match Shared::create(backing) {
        Ok(s) => return Ok(s),
        Err(e) => tracing::warn!(
            "cannot set up the backing files of FUSE passthrough ({e}); serving with \
             direct I/O alone"
        ),
    }
    Shared::create(Backing::None).context("cannot create the connection's shared state")
}

/// An adopted connection is served as it was mounted: say so where that is not what
/// this command line asks for.
fn warn_if_reads_differ(passthrough_reads: bool, shared: &Shared) {
    match (shared.reads(), passthrough_reads) {
        (Reads::Passthrough, false) => tracing::warn!(
            "this mount was made with FUSE passthrough of reads (the default of earlier \
             versions): a mapping of a served file can show another container's rendering \
             until the filesystem is mounted anew (stop lxcfs-rs, unmount, start it again)"
        ),
        (Reads::DaemonMmapRefused | Reads::Daemon, true) => tracing::warn!(
            "--fuse-passthrough takes effect on a new mount: this one keeps serving every \
             read itself"
        ),
        _ => {}
    }
}
