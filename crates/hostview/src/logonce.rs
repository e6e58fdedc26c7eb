//! Logging a failure once per container, not once per read, and never more than a
//! fixed budget of such lines: a broken container polled by `top` every second must
//! not flood the journal, and neither may a hostile one that makes a new pid namespace
//! or cgroup for every read (each a "new container").
//!
//! Two bounds. Each distinct (container, failure) is logged once: its key is
//! remembered (up to [`MAX_KEYS`], then the set starts over). And every line, whatever
//! its container, takes a token from one bucket of [`BURST`] tokens refilled at one per
//! [`REFILL`]: so the failure lines of a whole daemon are at most `BURST + t / REFILL`
//! over any `t`, however many containers fail or how. A line refused a token is not
//! remembered (its failure is logged at a later occurrence once tokens are back) but
//! counted, and the count said in one summary line at most every [`SUMMARY_EVERY`].

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Host;
use crate::cgroup::CgroupPaths;
use crate::error::Error;
use crate::files::VirtualFile;
use crate::pidns::NsId;
use crate::reason::HostReason;

/// Past this many distinct keys the set is reset, so the memory it takes stays bounded
/// however many containers fail over the daemon's life.
const MAX_KEYS: usize = 4096;
pub const BURST: u32 = 20;
pub const REFILL: Duration = Duration::from_secs(1);
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

pub struct LogOnce {
    state: Mutex<State>,
}

struct State {
    seen: HashSet<(u64, &'static str)>,
    tokens: u32,
    refilled: Instant,
    /// Lines refused since the last summary.
    held: u64,
    summarized: Instant,
}

/// What to do with a failure's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it.
    Log,
    /// Logged before for this container.
    Seen,
    /// Over the budget: counted, not logged.
    Held,
}

impl Default for LogOnce {
    fn default() -> Self {
        LogOnce::new(Instant::now())
    }
}

impl LogOnce {
    fn new(now: Instant) -> LogOnce {
        LogOnce {
            state: Mutex::new(State {
                seen: HashSet::new(),
                tokens: BURST,
                refilled: now,
                held: 0,
                summarized: now,
            }),
        }
    }

    /// Whether failure `what` of the container `key` is to be logged now.
    pub fn admit(&self, key: u64, what: &'static str, now: Instant) -> Verdict {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.seen.contains(&(key, what)) {
            return Verdict::Seen;
        }
        let due = now.saturating_duration_since(s.refilled);
        let fresh = (due.as_nanos() / REFILL.as_nanos().max(1)) as u64;
        if fresh > 0 {
            s.tokens =
                u32::try_from((u64::from(s.tokens) + fresh).min(u64::from(BURST))).unwrap_or(BURST);
            s.refilled += REFILL.saturating_mul(u32::try_from(fresh).unwrap_or(u32::MAX));
            if s.tokens == BURST {
                s.refilled = now;
            }
        }
        if s.tokens == 0 {
            s.held += 1;
            return Verdict::Held;
        }
        s.tokens -= 1;
        if s.seen.len() >= MAX_KEYS {
            s.seen.clear();
        }
        s.seen.insert((key, what));
        Verdict::Log
    }

    /// Lines held back since the last summary, if it is time to say so (then counted
    /// from zero again).
    pub fn summary(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.held == 0 || now.saturating_duration_since(s.summarized) < SUMMARY_EVERY {
            return None;
        }
        s.summarized = now;
        Some(std::mem::take(&mut s.held))
    }
}

impl Host {
    /// Say, once per container and within the log budget (see `logonce`), that reader
    /// `tid` is served the host's `file` and why, naming the container's cgroup.
    pub(crate) fn log_fallback(
        &self,
        file: VirtualFile,
        tid: u32,
        who: crate::Reader,
        reason: HostReason,
        e: &Error,
    ) {
        let ns = who.ns;
        // The container is known unless resolving it is what failed; a reader in the
        // host's namespace is told apart by its own cgroup.
        let cgroup = match self.cache.peek(NsId(ns)) {
            Some(c) => Some(self.cgroup_name(&c)),
            None if ns == self.self_ns.0 => CgroupPaths::read(&self.hier, &self.proc, tid)
                .ok()
                .map(|p| self.paths_name(&p)),
            None => None,
        };
        let key = match &cgroup {
            Some(name) => {
                use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
                BuildHasherDefault::<DefaultHasher>::default().hash_one(name)
            }
            None if ns == 0 => u64::from(tid),
            // A container whose namespaces cannot be resolved (a tenant making them
            // afresh for every read) is said once, not once per namespace.
            None if who.owner != 0 => who.owner,
            None => ns,
        };
        match self.failures.admit(key, reason.name(), Instant::now()) {
            Verdict::Log => tracing::warn!(
                "container {} (pid namespace {ns}): serving the host's {} ({}): {e}; \
                 said once per container",
                cgroup.as_deref().unwrap_or("of unknown cgroup"),
                file.host_path(),
                reason.name(),
            ),
            Verdict::Seen => {}
            Verdict::Held => self.observe(|o| o.log_suppressed(1)),
        }
    }

    /// Say, once per container (`owner`) and within the log budget, that an open of
    /// reader namespace `ns` was refused (`what`, `e`).
    pub(crate) fn log_refused(&self, owner: u64, ns: NsId, what: &'static str, e: &Error) {
        match self.failures.admit(owner, what, Instant::now()) {
            Verdict::Log => tracing::warn!(
                "container of pid namespace {} (outermost {owner}): open refused with \
                 EAGAIN ({what}): {e}; said once per container",
                ns.0
            ),
            Verdict::Seen => {}
            Verdict::Held => self.observe(|o| o.log_suppressed(1)),
        }
    }

    /// Called now and then (the worker's loop): says how many failure lines the log
    /// budget held back, at most once a minute.
    pub fn log_summary(&self) {
        if let Some(n) = self.failures.summary(Instant::now()) {
            tracing::warn!(
                "{n} lines about failing containers were not logged in the last {}s (at \
                 most {} at once, then one a second); lxcfs_log_lines_suppressed_total \
                 counts them",
                SUMMARY_EVERY.as_secs(),
                BURST
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_failure_is_logged_once_per_container() {
        let t = Instant::now();
        let l = LogOnce::new(t);
        assert_eq!(l.admit(1, "io", t), Verdict::Log);
        for _ in 0..10_000 {
            assert_eq!(l.admit(1, "io", t), Verdict::Seen);
        }
        assert_eq!(l.admit(1, "parse", t), Verdict::Log);
        assert_eq!(l.admit(2, "io", t), Verdict::Log);
        assert_eq!(l.summary(t + SUMMARY_EVERY), None, "nothing held");
    }

    #[test]
    fn many_containers_get_a_bounded_number_of_lines_and_the_rest_is_counted() {
        let t = Instant::now();
        let l = LogOnce::new(t);
        let mut logged = 0;
        // 100 000 distinct containers over 100 s.
        for i in 0..100_000u64 {
            let now = t + Duration::from_millis(i);
            if l.admit(i, "io", now) == Verdict::Log {
                logged += 1;
            }
        }
        assert!(logged <= BURST as u64 + 100, "{logged} lines");
        assert!(logged >= 100, "refilled once a second: {logged}");
        let held = l.summary(t + Duration::from_secs(100)).unwrap();
        assert_eq!(held, 100_000 - logged);
        assert_eq!(l.summary(t + Duration::from_secs(101)), None, "said once");
    }

    #[test]
    fn a_held_failure_is_logged_later_when_tokens_are_back() {
        let t = Instant::now();
        let l = LogOnce::new(t);
        for i in 0..u64::from(BURST) {
            assert_eq!(l.admit(i, "io", t), Verdict::Log);
        }
        assert_eq!(l.admit(999, "io", t), Verdict::Held);
        assert_eq!(l.admit(999, "io", t + REFILL), Verdict::Log);
        assert_eq!(l.admit(999, "io", t + REFILL), Verdict::Seen);
    }
}
