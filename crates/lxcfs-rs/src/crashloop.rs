//! What the supervisor does when workers keep dying.
//!
//! A worker that dies is replaced at once, and the requests it had taken are resent by
//! the kernel (Linux 6.9+) or answered by the next worker from the in-flight table
//! (fusefs's `journal`, which also stops a request that keeps killing workers). If it
//! crashed *because* of one of them (a bug in rendering some file for some
//! container), every replacement takes the same request and crashes too, and readers of
//! every container would wait on a crash loop. So after [`SAFE_AFTER`] workers in a row
//! crashed young, the next one serves every reader the host's own files (as with SIGUSR2):
//! no container's data is read, the poisoned request is answered, readers move on. The
//! supervisor tries a virtualizing worker again after [`RETRY_FIRST`], then at doubling
//! intervals while the retries die, and leaves safe mode once one lasts [`STABLE`].
//! Each switch costs readers one worker start (tens of milliseconds), never a back-off.
//!
//! Only when safe workers crash too (the fault is not in virtualization) does the
//! supervisor back off, 0.25 s doubling to 30 s, so that nothing spins: then no worker
//! can answer anything and readers wait until one can.
//!
//! A worker killed from outside (SIGKILL: an operator, the OOM killer; SIGTERM) did not
//! crash: it is replaced at once and counts for neither.

use std::time::{Duration, Instant};

/// A worker that dies sooner than this after starting died young.
pub const STABLE: Duration = Duration::from_secs(10);
/// Workers in a row that died young before the next one is a safe one.
pub const SAFE_AFTER: u32 = 2;
/// How long safe mode lasts before a virtualizing worker is tried again.
pub const RETRY_FIRST: Duration = Duration::from_secs(10);
const RETRY_MAX: Duration = Duration::from_secs(300);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct CrashLoop {
    /// Workers in a row that died young.
    failures: u32,
    safe: Option<Safe>,
}

#[derive(Debug)]
struct Safe {
    /// When the current stretch of safe mode began.
    since: Instant,
    retry_in: Duration,
    /// A virtualizing worker is being tried.
    retrying: bool,
}

/// When to start the next worker after a death (what kind: [`CrashLoop::safe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    pub delay: Duration,
    /// Safe mode began with this death (the caller says so in the log).
    pub entered_safe_mode: bool,
}

impl CrashLoop {
    /// Workers in a row that died young.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether new workers are to be safe ones.
    pub fn safe(&self) -> bool {
        self.safe.as_ref().is_some_and(|s| !s.retrying)
    }

    /// The serving worker (a safe one when `was_safe`) died after `lived`, by a crash
    /// of its own (`crashed`) or killed from outside.
    pub fn died(
        &mut self,
        was_safe: bool,
        crashed: bool,
        lived: Duration,
        now: Instant,
    ) -> Restart {
        if lived >= STABLE {
            self.failures = 0;
        } else if crashed {
            self.failures += 1;
        } else {
            return Restart {
                delay: Duration::ZERO,
                entered_safe_mode: false,
            };
        }
        let mut entered = false;
        match &mut self.safe {
            // A virtualizing worker tried out of safe mode died: back to safe mode, and
            // wait longer before the next try.
            Some(s) if !was_safe => {
                s.retrying = false;
                s.since = now;
                s.retry_in = (s.retry_in * 2).min(RETRY_MAX);
            }
            Some(_) => {}
            None if self.failures >= SAFE_AFTER => {
                self.safe = Some(Safe {
                    since: now,
                    retry_in: RETRY_FIRST,
                    retrying: false,
                });
                entered = true;
            }
            None => {}
        }
        let delay = if was_safe {
            // Not a virtualization fault: nothing serves, so do not spin.
            backoff(self.failures.saturating_sub(SAFE_AFTER).saturating_add(1))
        } else {
            Duration::ZERO
        };
        Restart {
            delay,
            entered_safe_mode: entered,
        }
    }

    /// A worker could not even be started: back off as for a safe worker's death.
    pub fn start_failed(&mut self) -> Duration {
        self.failures += 1;
        backoff(self.failures)
    }

    /// Whether to try a virtualizing worker now (the serving one is a ready safe one).
    pub fn retry_due(&self, now: Instant) -> bool {
        self.safe
            .as_ref()
            .is_some_and(|s| !s.retrying && now.saturating_duration_since(s.since) >= s.retry_in)
    }

    /// Whether a virtualizing worker is being tried out of safe mode.
    pub fn safe_retrying(&self) -> bool {
        self.safe.as_ref().is_some_and(|s| s.retrying)
    }

    pub fn retry_started(&mut self) {
        if let Some(s) = &mut self.safe {
            s.retrying = true;
        }
    }

    /// A retried virtualizing worker did not even start serving.
    pub fn retry_failed(&mut self, now: Instant) {
        if let Some(s) = &mut self.safe {
            s.retrying = false;
            s.since = now;
            s.retry_in = (s.retry_in * 2).min(RETRY_MAX);
        }
    }

    /// The serving worker, virtualizing, has lasted `lived`: true when this ends safe
    /// mode.
    pub fn serving(&mut self, lived: Duration) -> bool {
        if lived < STABLE || !self.safe.as_ref().is_some_and(|s| s.retrying) {
            return false;
        }
        self.safe = None;
        self.failures = 0;
        true
    }

    /// A live upgrade's worker serves: whatever came before is forgiven.
    pub fn upgraded(&mut self) {
        self.failures = 0;
    }
}

/// Exponential back-off for starts that keep failing; the first is immediate.
pub fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let ms = 250u64.saturating_mul(1u64 << (failures - 2).min(16));
    Duration::from_millis(ms).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YOUNG: Duration = Duration::from_millis(5);

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(250));
        assert_eq!(backoff(3), Duration::from_millis(500));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn a_poisoned_request_puts_a_safe_worker_in_place_at_once() {
        let t = Instant::now();
        let mut c = CrashLoop::default();
        let first = c.died(false, true, YOUNG, t);
        assert_eq!((first.delay, c.safe()), (Duration::ZERO, false));
        let second = c.died(false, true, YOUNG, t);
        assert_eq!(second.delay, Duration::ZERO, "never a back-off for readers");
        assert!(c.safe() && second.entered_safe_mode);
        assert!(!c.retry_due(t + RETRY_FIRST / 2));
        assert!(c.retry_due(t + RETRY_FIRST));
    }

    #[test]
    fn a_retry_that_dies_doubles_the_wait_and_one_that_lasts_ends_safe_mode() {
        let t = Instant::now();
        let mut c = CrashLoop::default();
        c.died(false, true, YOUNG, t);
        c.died(false, true, YOUNG, t);
        c.retry_started();
        assert!(!c.safe(), "the retry is a virtualizing worker");
        let again = c.died(false, true, YOUNG, t + RETRY_FIRST);
        assert!(c.safe() && !again.entered_safe_mode);
        assert_eq!(again.delay, Duration::ZERO);
        assert!(!c.retry_due(t + RETRY_FIRST * 2));
        assert!(c.retry_due(t + RETRY_FIRST * 3));
        c.retry_started();
        assert!(!c.serving(YOUNG));
        assert!(c.serving(STABLE));
        assert!(!c.safe());
        assert_eq!(c.failures(), 0);
    }

    #[test]
    fn safe_workers_that_die_back_off_so_nothing_spins() {
        let t = Instant::now();
        let mut c = CrashLoop::default();
        c.died(false, true, YOUNG, t);
        c.died(false, true, YOUNG, t);
        let d1 = c.died(true, true, YOUNG, t).delay;
        let d2 = c.died(true, true, YOUNG, t).delay;
        let d3 = c.died(true, true, YOUNG, t).delay;
        assert!(
            d1 <= d2 && d2 < d3 && d3 > Duration::ZERO,
            "{d1:?} {d2:?} {d3:?}"
        );
        for _ in 0..40 {
            c.died(true, true, YOUNG, t);
        }
        assert_eq!(c.died(true, true, YOUNG, t).delay, MAX_BACKOFF);
    }

    #[test]
    fn a_worker_that_lived_resets_the_count() {
        let t = Instant::now();
        let mut c = CrashLoop::default();
        c.died(false, true, YOUNG, t);
        let r = c.died(false, true, STABLE, t);
        assert!(!r.entered_safe_mode && !c.safe());
        assert_eq!(c.failures(), 0);
    }

    #[test]
    fn workers_killed_from_outside_never_make_safe_mode() {
        let t = Instant::now();
        let mut c = CrashLoop::default();
        for _ in 0..5 {
            let r = c.died(false, false, YOUNG, t);
            assert_eq!((r.delay, c.safe()), (Duration::ZERO, false));
        }
        assert_eq!(c.failures(), 0);
    }
}
