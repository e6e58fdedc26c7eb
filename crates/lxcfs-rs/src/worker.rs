//! The worker: serves the supervisor's FUSE connection until it ends or we are told to
//! stop. It may die at any moment (crash, OOM, upgrade); the supervisor keeps the
//! connection and starts another.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR2};
use signal_hook::iterator::Signals;

use connection::{ServeOptions, Shared, WorkerArgs};
use hostview::{Host, Options};

/// Environment variable for the restart and logging tests: `abort-on=<file>` (e.g.
/// `abort-on=loadavg`) makes the worker abort whenever it renders that file, like a
/// worker that crashes on a request; `fail-on=<file>` makes reading the container's
/// data for that file fail, so its readers get the host's file; `stall-first=<file>`
/// makes the first worker (generation 1) never finish rendering that file, like a
/// worker killed while it serves a request. Read by workers only, and only by debug
/// builds.
pub const FAULT_ENV: &str = "LXCFS_RS_FAULT";

fn fault(kind: &str) -> Option<hostview::VirtualFile> {
    let v = std::env::var(FAULT_ENV).ok()?;
    let name = v.strip_prefix(kind)?.strip_prefix('=')?;
    hostview::VirtualFile::ALL
        .into_iter()
        .find(|f| f.name() == name)
}

/// How often the busiest containers are ranked and published: the window `status`
/// shows reads over.
const BUSY_WINDOW: Duration = Duration::from_secs(5);

pub fn run(args: &WorkerArgs) -> Result<()> {
    // Each PSI trigger a container holds is one of the worker's descriptors (half the
    // limit is theirs at most: `fusefs`'s `psi`).
    crate::limits::raise_open_files();
    let fuse = adopt(args.fuse_fd)?;
    let fds = args
        .shared_fds
        .iter()
        .map(|&n| adopt(n))
        .collect::<Result<Vec<_>>>()?;
    let shared = Shared::from_fds_or_new(fds).context("the connection's shared state")?;
    let counters = Arc::new(counters(args.counters_fd)?);
    let mut ready = std::fs::File::from(adopt(args.ready_fd)?);
    // Without the table, serving goes on; only a death's requests are not kept.
    let inflight = args.inflight_fd.and_then(|n| {
        adopt(n)
            .and_then(|fd| connection::Inflight::from_fd(fd).context("the in-flight table"))
            .inspect_err(|e| tracing::warn!("{e:#}; requests in flight are not kept"))
            .ok()
            .map(Arc::new)
    });

    let serve = &args.serve;
    let mut opts = host_options(serve);
    opts.abort_on = fault("abort-on");
    opts.fail_on = fault("fail-on");
    opts.stall_on = fault("stall-first").filter(|_| args.generation == 1);
    let mut host = Host::open(&serve.host_root, opts)
        .with_context(|| format!("cannot read the host under {}", serve.host_root.display()))?;
    host.set_observer(counters.clone());
    let host = Arc::new(host);
    host.set_serve_host_files(args.host_files);
    let signals =
        Signals::new([SIGTERM, SIGINT, SIGUSR2]).context("cannot install signal handlers")?;
    let cfg = fusefs::ServeConfig {
        threads: threads(serve),
        poll: (serve.fuse_poll_us > 0).then(|| Duration::from_micros(serve.fuse_poll_us)),
        generation: args.generation,
        initialized: args.initialized,
        shared: Arc::new(shared),
        open_limit: serve.max_open_mib.saturating_mul(1024 * 1024),
        counters: counters.clone(),
        inflight,
        replay: args.replay,
        host_files: args.host_files,
        crashed: args.crashed.clone(),
    };
    let adopted = cfg.initialized || cfg.shared.initialized();
    let connected =
        fusefs::connect(host.clone(), fuse, &cfg).context("cannot take up the FUSE connection")?;
    // Still one thread: every thread started from here on has only what serving needs.
    // Serving unconfined beats not serving: a kernel that refuses either is logged.
    // PSI triggers registered without CAP_SYS_RESOURCE take only windows in whole
    // 2 s (Linux 6.5+): kept so that a reader holding it may pick any, as on the
    // kernel's file (`hostview::psitrigger` checks the reader's own).
    let (extra_caps, extra_calls) = if serve.enable_psi_poll {
        (
            rustix::thread::CapabilitySet::SYS_RESOURCE,
            crate::sandbox::EPOLL,
        )
    } else {
        (rustix::thread::CapabilitySet::empty(), &[][..])
    };
    if let Err(e) = crate::privileges::drop_to_serving_with(extra_caps) {
        tracing::error!("worker keeps its capabilities: {e:#}");
    }
    let confined = crate::sandbox::confine_with(extra_calls)
        .inspect_err(|e| tracing::error!("worker serves without a system call filter: {e:#}"))
        .is_ok();
    if !serve.disable_loadavg {
        host.start_loadavg()
            .context("cannot start the load average sampler")?;
    }
    let pollers = connected.pollers();
    let session = connected
        .spawn()
        .context("cannot serve the FUSE connection")?;
    // The ready byte tells the supervisor (and through it systemd's READY=1) that the
    // mount serves: wait until the reading threads run, not only until they are asked
    // for. A request sent before that waits in the kernel, so this is about what READY
    // promises, and a slow machine only delays it.
    if !reader_threads_run(Duration::from_secs(2)) {
        tracing::warn!("no FUSE reader thread seen after 2 s; saying ready anyway");
    }
    tracing::info!(
        "worker {} (generation {}) serving with {} threads{}{}; capabilities kept: {}; \
         system calls allowed: {} (0: no filter)",
        std::process::id(),
        cfg.generation,
        cfg.threads,
        match cfg.poll {
            Some(p) => format!(
                ", one polling for {} µs after each request while that costs less CPU per \
                 request than all waiting on the device",
                p.as_micros()
            ),
            None => String::new(),
        },
        if adopted {
            ", adopted the connection"
        } else {
            ""
        },
        crate::privileges::describe(),
        if confined {
            crate::sandbox::ALLOWED.len()
        } else {
            0
        }
    );
    let _ = ready.write_all(b"R");
    drop(ready);
    wait(session, &host, &counters, signals, &pollers)
}

/// The supervisor's counters; without them (a supervisor that kept none, or of a
/// layout this build does not know) counters of our own, which nobody reads: serving
/// matters more than counting.
fn counters(fd: Option<i32>) -> Result<connection::Counters> {
    let theirs = fd.map(|n| {
        adopt(n).and_then(|fd| connection::Counters::from_fd(fd).context("the daemon's counters"))
    });
    match theirs {
        Some(Ok(c)) => return Ok(c),
        Some(Err(e)) => tracing::warn!("{e:#}; this worker's requests are not counted"),
        None => {}
    }
    connection::Counters::create().context("cannot make counters")
}

/// Whether the first of fuser's reading threads (`fuser-0`, named by itself once it
/// runs) shows up in this process within `limit`.
fn reader_threads_run(limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        let seen = std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| {
            tasks.flatten().any(|t| {
                std::fs::read(t.path().join("comm")).is_ok_and(|c| c.trim_ascii() == b"fuser-0")
            })
        });
        if seen {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// For a thread the worker starts before it drops its privileges (its log writer):
/// what every serving thread has, installed on this thread alone. A failure is said by
/// the worker's own attempt later.
pub fn confine_this_thread() {
    let _ = crate::privileges::drop_to_serving();
    let _ = crate::sandbox::confine();
}

/// What the host is read with, from the options a worker serves with.
pub fn host_options(serve: &ServeOptions) -> Options {
    Options {
        swap: !serve.disable_swap,
        cfs: serve.enable_cfs,
        cpu_shares: serve.enable_cpu_shares,
        host_uptime: serve.host_uptime,
        cgroup_view: serve.enable_cgroup,
        psi_poll: serve.enable_psi_poll,
        loadavg: !serve.disable_loadavg,
        resolver: serve.init_resolver,
        abort_on: None,
        fail_on: None,
        stall_on: None,
        before_slow_work: fusefs::hand_off,
    }
}

/// FUSE threads: as asked, else the CPUs, at least 4, at most 16.
fn threads(serve: &ServeOptions) -> usize {
    serve.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(4)
            .clamp(4, 16)
    })
}

fn adopt(n: i32) -> Result<OwnedFd> {
    connection::adopt_inherited_fd(n).with_context(|| format!("inherited descriptor {n}"))
}

/// Rank the containers by what they read since the last window and put the busiest
/// where the supervisor reads them.
fn publish_busiest(
    host: &Host,
    counters: &connection::Counters,
    tally: &mut hostview::ReadTally,
    took: Duration,
) {
    use connection::counters::{Busiest, Busy, busiest::SLOTS};
    let containers = tally
        .window(host, SLOTS)
        .into_iter()
        .map(|c| Busy {
            cgroup: c.cgroup,
            pidns: c.pidns,
            reads: c.reads,
            reads_total: c.reads_total,
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    counters.publish_busiest(&Busiest {
        window_ms: took.as_millis() as u64,
        published_unix_ms: now,
        containers,
    });
}

fn wait(
    session: fusefs::BackgroundSession,
    host: &Host,
    counters: &connection::Counters,
    mut signals: Signals,
    pollers: &fusefs::Pollers,
) -> Result<()> {
    let mut tally = hostview::ReadTally::default();
    let mut window = Instant::now();
    loop {
        counters.set_containers(host.cached_containers().0 as u64);
        counters.set_relaying(session.relaying().unwrap_or(false));
        host.log_summary();
        if window.elapsed() >= BUSY_WINDOW {
            publish_busiest(host, counters, &mut tally, window.elapsed());
            window = Instant::now();
        }
        for sig in signals.pending() {
            match sig {
                SIGUSR2 => {
                    let on = !host.serves_host_files();
                    host.set_serve_host_files(on);
                    tracing::warn!(
                        "{}",
                        if on {
                            "serving the host's files to every reader"
                        } else {
                            "virtualizing again"
                        }
                    );
                }
                // Take no more requests and answer the ones taken, then go: before
                // Linux 6.9 the kernel cannot resend a request a dead worker had read,
                // and its reader would wait until interrupted. A request that hangs
                // does not keep us past a second (from 6.9 on it is resent).
                _ => {
                    fusefs::drain();
                    let start = std::time::Instant::now();
                    while !session.guard.is_finished()
                        && start.elapsed() < std::time::Duration::from_secs(1)
                    {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    // Pollers of PSI triggers wait on notifications only we
                    // could send: they ask again, and the next worker answers.
                    pollers.wake_all();
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
