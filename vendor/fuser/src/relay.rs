//! lxcfs-rs patch: one event-loop thread at a time reads `/dev/fuse` (the leader), and
//! it polls for a moment before it blocks.
//!
//! Every thread blocked in `read(2)` on the device sits in the connection's one wait
//! queue, and every request the kernel queues wakes one of them: on a virtual machine
//! that wake-up is an inter-processor interrupt paid inside the reader's `open(2)` and
//! `close(2)` (the asynchronous RELEASE wakes a thread too), tens of microseconds on a
//! nested one. Here only the leader waits on the device; the other threads wait on a
//! condition variable, which the kernel's wake-up never touches. After each request the
//! leader polls the device (`poll(2)` with a zero timeout) for `spin` before it blocks,
//! so the requests of a burst (an OPEN, then its RELEASE, then the next file's OPEN)
//! are picked up by a running thread and wake nobody.
//!
//! What follows a request decides how long polling pays. An OPEN is followed by its
//! RELEASE as soon as the reader has read and closed, so after anything but a RELEASE
//! (or FORGET) the leader polls for the full `spin`. After a RELEASE the next request
//! is another reader's, or the same reader's next poll: back to back in a tight loop or
//! a burst of files, a second later for a poller. That budget adapts: it doubles when
//! the next request came within `spin` of the RELEASE (polling would catch it) and
//! halves, down to nothing, when it did not, so an idle or slowly polled daemon spends
//! the poll once per read, not twice.
//!
//! Whether the relay pays at all depends on the load, and is measured. When requests
//! come back to back (a tight loop of reads, opens answered from a cached rendering),
//! the polling leader takes them for less CPU than a wake-up each. When each open is a
//! rendering (many containers, each polling once a second), the leader hands off at
//! every open, waking a waiting thread each time, and polls between requests that are
//! tens of microseconds apart: the daemon's CPU per request measured twice that of
//! threads that all block in `read(2)`. So the process's CPU time per request is
//! measured over windows of at least [`WINDOW`] and [`MIN_REQUESTS`] with the relay and
//! without it (every thread [`Role::Free`]), the cheaper is kept (free threads only when
//! clearly cheaper: [`FREE_MARGIN`]), and one window in [`EXPLORE_EVERY`] tries the
//! other, so that a change of load is followed within seconds.
//!
//! The leader serves what it reads itself. Before work that may take long the file
//! system calls [`hand_off`], which gives the lead to a waiting thread, so that other
//! readers are not queued behind it. A leader that stays inside one request longer than
//! [`STUCK`] without handing off is helped anyway: a watching thread starts reading
//! beside it.
//!
//! Public (hidden) so that lxcfs-rs tests it against its own event loop
//! (`crates/fusefs/src/relay_tests.rs`).

use std::cell::RefCell;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

/// A leader busy this long in one request gets a helper.
pub const STUCK: Duration = Duration::from_millis(100);
/// How often the watching thread looks at the leader.
const WATCH: Duration = Duration::from_millis(250);
/// How long the CPU time per request is measured before the choice is made again.
pub const WINDOW: Duration = Duration::from_millis(250);
/// One window in this many tries the way that measured dearer.
pub const EXPLORE_EVERY: u32 = 16;
/// Free threads are kept only when they cost at most this share of the relay's CPU
/// per request: the relay also spares the reader its wake-up (throughput and latency
/// that the daemon's CPU does not show), so a near tie goes to it.
pub const FREE_MARGIN: f64 = 0.75;
/// A window is measured only once it holds this many requests: fewer, and the CPU of
/// background work (the load sampler) outweighs theirs. A window short of it stays
/// open, so that a slowly polled daemon is measured over longer windows rather than
/// never, which would leave its choice frozen at whatever a burst once measured.
pub const MIN_REQUESTS: u64 = 256;
/// A window still short of [`MIN_REQUESTS`] after this long closes without measuring:
/// an idle daemon's CPU is its background work's, not its requests'.
pub const LONGEST_WINDOW: Duration = Duration::from_secs(8);

/// Whether a window open for `open` with `requests` read closes now: `None` while it
/// keeps measuring, `Some(requests)` to close it, with the requests it measured (0
/// when too few to measure anything).
pub fn window_ends(open: Duration, requests: u64) -> Option<u64> {
    if open < WINDOW {
        None
    } else if requests >= MIN_REQUESTS {
        Some(requests)
    } else if open >= LONGEST_WINDOW {
        Some(0)
    } else {
        None
    }
}

#[derive(Debug)]
pub struct Relay {
    state: Mutex<State>,
    turn: Condvar,
    spin: Duration,
    epoch: Instant,
    /// When the leader started its current request, in ns since `epoch` (+1); 0 when it
    /// is reading.
    busy_since: AtomicU64,
    /// The polling budget after a RELEASE or FORGET, in ns (see the module doc).
    after_release: AtomicU64,
    /// Every thread reads the device, nobody leads (see the module doc).
    free: AtomicBool,
    /// Requests read, by every thread.
    received: AtomicU64,
    window: Mutex<Window>,
}

/// The window being measured.
#[derive(Debug)]
struct Window {
    since: Instant,
    received: u64,
    cpu_ns: u64,
    tuner: Tuner,
}

/// The CPU time per request measured with the relay (`[0]`) and without it (`[1]`),
/// and the choice made from them.
#[derive(Debug, Default, Clone)]
pub struct Tuner {
    cost: [Option<f64>; 2],
    windows: u32,
}

impl Tuner {
    /// A window with every thread free (`free`) or with the relay spent `cpu_ns` for
    /// `requests`: whether the next window is free.
    pub fn window_closed(&mut self, free: bool, cpu_ns: u64, requests: u64) -> bool {
        if requests >= MIN_REQUESTS {
            let per = cpu_ns as f64 / requests as f64;
            let slot = &mut self.cost[usize::from(free)];
            // Half the new window, half the past: one noisy window does not flip the
            // choice alone, a changed load does within a few.
            *slot = Some(slot.map_or(per, |c| (c + per) / 2.0));
        }
        self.windows = self.windows.wrapping_add(1);
        match self.cost {
            [_, None] => true,
            [None, _] => false,
            [Some(relay), Some(free)] => {
                let best = free < relay * FREE_MARGIN;
                if self.windows % EXPLORE_EVERY == 0 {
                    !best
                } else {
                    best
                }
            }
        }
    }

    /// The CPU ns per request measured with the relay and without it.
    pub fn costs(&self) -> [Option<f64>; 2] {
        self.cost
    }
}

/// The CPU time of the whole process, in ns.
fn process_cpu_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(|t| {
            u64::try_from(t.tv_sec())
                .unwrap_or(0)
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::try_from(t.tv_nsec()).unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Requests after which the next one is not the same reader's continuation.
const FUSE_FORGET: u32 = 2;
const FUSE_RELEASE: u32 = 18;
const FUSE_BATCH_FORGET: u32 = 42;

/// The opcode of a request in `buf` (the second word of `fuse_in_header`).
pub fn opcode(buf: &[u8]) -> Option<u32> {
    let b: [u8; 4] = buf.get(4..8)?.try_into().ok()?;
    Some(u32::from_ne_bytes(b))
}

fn ends_a_burst(op: u32) -> bool {
    matches!(op, FUSE_RELEASE | FUSE_FORGET | FUSE_BATCH_FORGET)
}

#[derive(Debug, Default)]
struct State {
    leader: bool,
    watchman: bool,
    closed: bool,
}

/// How a thread may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The one reader: polls, then blocks.
    Leader,
    /// Reads once beside a stuck leader.
    Helper,
    /// Reads like every other thread, blocking in `read(2)` (the relay measured dearer
    /// than the kernel waking one reader per request).
    Free,
    /// The connection ended.
    Done,
}

thread_local! {
    static LEADING: RefCell<Option<Arc<Relay>>> = const { RefCell::new(None) };
}

/// Set by [`drain`]: the event loops take no more requests.
static DRAINING: AtomicBool = AtomicBool::new(false);

/// Stop taking requests: each event-loop thread answers the request it has and ends
/// its loop, so the session ends without leaving a request read and unanswered (the
/// kernel cannot give those to another server before Linux 6.9). Only with a relay.
pub fn drain() {
    DRAINING.store(true, Ordering::Relaxed);
}

/// Wait until `dev` has a request (true) or [`drain`] was called (false). A thread of
/// a draining session must not be inside `read(2)`, which would take a request it may
/// not answer: it polls in short slices and reads only what the poll saw.
pub fn wait_for_request<F: AsFd>(dev: &F) -> bool {
    loop {
        if DRAINING.load(Ordering::Relaxed) {
            return false;
        }
        let mut fds = [PollFd::new(dev.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::from(50u8)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {}
            // Readable, or an error the read itself will report.
            _ => return !DRAINING.load(Ordering::Relaxed),
        }
    }
}

/// Whether [`drain`] was called.
pub fn draining() -> bool {
    DRAINING.load(Ordering::Relaxed)
}

/// Give the lead to a waiting thread before work that may take long (a no-op on any
/// thread but the leader, and without a relay).
pub fn hand_off() {
    if let Some(relay) = LEADING.with(|l| l.borrow_mut().take()) {
        relay.release();
    }
}

impl Relay {
    pub fn new(spin: Duration) -> Arc<Relay> {
        Arc::new(Relay {
            state: Mutex::new(State::default()),
            turn: Condvar::new(),
            spin,
            epoch: Instant::now(),
            busy_since: AtomicU64::new(0),
            after_release: AtomicU64::new(nanos(spin)),
            free: AtomicBool::new(false),
            received: AtomicU64::new(0),
            window: Mutex::new(Window {
                since: Instant::now(),
                received: 0,
                cpu_ns: process_cpu_ns(),
                tuner: Tuner::default(),
            }),
        })
    }

    /// Whether every thread reads the device now, nobody leading.
    pub fn free(&self) -> bool {
        self.free.load(Ordering::Relaxed)
    }

    /// Let every thread read the device (`true`), or go back to one leader.
    pub fn set_free(&self, free: bool) {
        let st = self.lock();
        self.free.store(free, Ordering::Relaxed);
        drop(st);
        if free {
            self.turn.notify_all();
        }
    }

    /// A thread read a request. Every so often this closes the window being measured
    /// and makes the choice again (see the module doc).
    pub fn received(&self) {
        let n = self.received.fetch_add(1, Ordering::Relaxed);
        if n % 64 != 0 {
            return;
        }
        let Ok(mut w) = self.window.try_lock() else {
            return;
        };
        let now = Instant::now();
        let received = n.saturating_add(1);
        let Some(requests) = window_ends(
            now.saturating_duration_since(w.since),
            received.saturating_sub(w.received),
        ) else {
            return;
        };
        let cpu = process_cpu_ns();
        let spent = cpu.saturating_sub(w.cpu_ns);
        let free = self.free();
        let next = w.tuner.window_closed(free, spent, requests);
        (w.since, w.received, w.cpu_ns) = (now, received, cpu);
        drop(w);
        if next != free {
            self.set_free(next);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is three flags set under the lock; a panic cannot leave them torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stamp(&self) -> u64 {
        nanos(self.epoch.elapsed()).saturating_add(1)
    }

    fn stuck(&self) -> bool {
        let since = self.busy_since.load(Ordering::Relaxed);
        since != 0 && self.stamp().saturating_sub(since) > nanos(STUCK)
    }

    /// Wait for the lead (or for a stuck leader to help, or for the end).
    pub fn acquire(self: &Arc<Self>) -> Role {
        let mut st = self.lock();
        let mut watching = false;
        let role = loop {
            if st.closed {
                break Role::Done;
            }
            if self.free() {
                break Role::Free;
            }
            if !st.leader {
                st.leader = true;
                LEADING.with(|l| *l.borrow_mut() = Some(self.clone()));
                break Role::Leader;
            }
            if !watching && !st.watchman {
                st.watchman = true;
                watching = true;
            }
            if watching {
                st = match self.turn.wait_timeout(st, WATCH) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
                if st.leader && !st.closed && self.stuck() {
                    break Role::Helper;
                }
            } else {
                st = self.turn.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        if watching {
            st.watchman = false;
            // Someone else may watch now.
            self.turn.notify_one();
        }
        role
    }

    /// Whether this thread still leads (it has not handed off).
    pub fn leading(&self) -> bool {
        LEADING.with(|l| l.borrow().is_some())
    }

    fn release(&self) {
        self.busy_since.store(0, Ordering::Relaxed);
        let mut st = self.lock();
        st.leader = false;
        drop(st);
        self.turn.notify_one();
    }

    /// The connection ended: let every thread go.
    pub fn close(&self) {
        LEADING.with(|l| l.borrow_mut().take());
        let mut st = self.lock();
        st.closed = true;
        st.leader = false;
        drop(st);
        self.turn.notify_all();
    }

    /// How long to poll after a request with opcode `after` (`None`: no request yet).
    pub fn budget(&self, after: Option<u32>) -> Duration {
        match after {
            Some(op) if ends_a_burst(op) => {
                Duration::from_nanos(self.after_release.load(Ordering::Relaxed))
            }
            _ => self.spin,
        }
    }

    /// The request after one with opcode `after` arrived `gap` after that one was
    /// served: adapt the budget after a RELEASE.
    pub fn learn(&self, after: u32, gap: Duration) {
        if !ends_a_burst(after) {
            return;
        }
        let max = nanos(self.spin);
        let floor = max / 8;
        let cur = self.after_release.load(Ordering::Relaxed);
        let next = if nanos(gap) <= max {
            cur.saturating_mul(2).clamp(floor, max)
        } else if cur / 2 < floor {
            0
        } else {
            cur / 2
        };
        self.after_release.store(next, Ordering::Relaxed);
    }

    /// Poll the device for up to `budget`; true when a request is waiting.
    pub fn spin<F: AsFd>(&self, dev: &F, budget: Duration) -> bool {
        if budget.is_zero() {
            return false;
        }
        let start = Instant::now();
        loop {
            let mut fds = [PollFd::new(dev.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
                Ok(n) if n > 0 => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
            if start.elapsed() >= budget {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// The leader starts serving a request.
    pub fn busy(&self) {
        self.busy_since.store(self.stamp(), Ordering::Relaxed);
    }

    /// The leader is back to reading.
    pub fn idle(&self) {
        self.busy_since.store(0, Ordering::Relaxed);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
