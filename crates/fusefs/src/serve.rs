//! Taking up a connection: what a worker serves with, and the INIT handshake (or its
//! adoption) before any serving thread starts.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use connection::{Counters, Inflight, Shared};
use fuser::{BackgroundSession, Config, SessionACL};
use hostview::Host;

use crate::LxcFs;

/// How a worker serves the connection.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Event-loop threads. They share the one descriptor rather than cloning it: a
    /// clone would belong to the worker, and the kernel fails the requests queued on
    /// a clone when it is closed, which a dying worker would do.
    pub threads: usize,
    /// `Some(spin)`: one thread at a time reads requests and polls for `spin` after
    /// each (fuser's `relay` patch); the others take over before slow work.
    pub poll: Option<std::time::Duration>,
    /// Which worker this is (1, 2, …): file handles carry it, so a handle opened by a
    /// previous worker is never mistaken for one of ours.
    pub generation: u64,
    /// The connection's INIT was answered by a previous worker (an earlier version's
    /// supervisor says so only on the command line; [`Shared`] says it too).
    pub initialized: bool,
    /// The state every worker of the connection shares: INIT answered, and the
    /// passthrough bookkeeping (see the `passthrough` module) when it has memfds;
    /// without them every read is served with direct I/O.
    pub shared: Arc<Shared>,
    /// Bytes the open files of one container (pid namespace) may hold in this worker;
    /// past it that container's opens fail with `EMFILE`.
    pub open_limit: u64,
    /// Where requests are counted (shared with the supervisor, which serves them).
    pub counters: Arc<Counters>,
    /// Where each thread keeps the request it is answering, for the next worker should
    /// this one die (see `journal`); `None` from a supervisor that keeps none.
    pub inflight: Option<Arc<Inflight>>,
    /// Answer what dead workers left in `inflight` (the kernel cannot resend it).
    pub replay: bool,
    /// This worker serves the host's files (safe mode): see `journal`.
    pub host_files: bool,
    /// Pids of dead workers that crashed (see `journal`).
    pub crashed: Vec<u32>,
}

/// A connection ready to be served: INIT answered (or adopted) and the backing files
/// registered, in the calling thread; no thread started yet, so the caller may still
/// drop what its serving threads must not have.
pub struct Connected(fuser::Session<LxcFs>, crate::psi::Pollers);

impl Connected {
    /// What wakes the pollers of PSI triggers (see `psi`) once the session is running.
    pub fn pollers(&self) -> crate::psi::Pollers {
        self.1.clone()
    }

    /// Serve from background threads until the connection ends (unmounted and no bind
    /// mount left, or aborted).
    pub fn spawn(self) -> io::Result<BackgroundSession> {
        self.0.spawn()
    }
}

/// Take up the connection behind `fd` (see [`Connected`]).
pub fn connect(host: Arc<Host>, fd: OwnedFd, cfg: &ServeConfig) -> io::Result<Connected> {
    let mut config = Config::default();
    config.acl = SessionACL::All;
    config.n_threads = Some(cfg.threads.max(1));
    config.clone_fd = false;
    config.relay_spin = cfg.poll;
    let fs = LxcFs::new(
        host,
        cfg.generation,
        cfg.shared.clone(),
        cfg.open_limit,
        cfg.counters.clone(),
    );
    // A store waits for READs only another serving thread can answer (`LxcFs::grow`).
    fs.stores_left
        .store(cfg.threads.max(1) - 1, std::sync::atomic::Ordering::Release);
    let pt = fs.pt.clone();
    let pollers = fs.psi.pollers();
    let notifier = fs.notifier.clone();
    let mut session = if cfg.initialized || cfg.shared.initialized() {
        fuser::Session::from_fd_initialized(fs, fd, SessionACL::All, config)
    } else {
        // Backing files can be registered once INIT is answered, and must be before any
        // open is: see `passthrough`.
        let dev = fd.try_clone()?;
        let session = fuser::Session::from_fd(fs, fd, SessionACL::All, config)?;
        // INIT is answered: a worker started after this one dies must not wait for it.
        cfg.shared.set_initialized();
        pt.register(dev.as_fd());
        session
    };
    if let Some(table) = &cfg.inflight {
        session.set_journal(Arc::new(crate::journal::Journal::new(
            table.clone(),
            cfg.threads.max(1),
            cfg.replay,
            cfg.host_files,
            cfg.crashed.clone(),
        )));
    }
    let _ = notifier.set(session.notifier());
    Ok(Connected(session, pollers))
}
