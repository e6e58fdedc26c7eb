//! Which containers are doing slow work now: one serving thread per container at a
//! time. Task counts use it (here the key is the cgroup being counted), and so do the
//! searches of `/proc` for a pid namespace's init (`initscan`, keyed by namespace) and
//! the translation of `cgroup/` pid lists (`cgroupview`).
//!
//! A count walks up to [`tasks::MAX_CGROUPS`](crate::tasks::MAX_CGROUPS) cgroups, some
//! milliseconds behind the one kernel counter. A thread waiting for it is a serving
//! thread, which every container shares: a container that sends many reads needing a
//! count at once (pid namespaces whose inits sit in many cgroups, all read together)
//! would hold every one of them and stall its neighbours' reads for as long as its
//! counts take, one after another. So each container may have one thread counting (or
//! waiting for the counter), and one more may wait for it; its other readers are shown
//! a count they have, or the container's latest (see `Host::task_counts`).

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a waiting reader sleeps before it looks again: a safety net only, since
/// every slot given back wakes the waiters.
const RECHECK: Duration = Duration::from_secs(1);

/// The cgroup each container (by owner) is counting now, and how many of its threads
/// wait for the slot (kept apart from the slot: a waiter may outlive the slot it
/// waited for).
struct Busy<K> {
    counting: HashMap<u64, K>,
    waiting: HashMap<u64, u32>,
}

pub(crate) struct CountSlots<K> {
    busy: Mutex<Busy<K>>,
    freed: Condvar,
}

impl<K> Default for CountSlots<K> {
    fn default() -> Self {
        CountSlots {
            busy: Mutex::new(Busy {
                counting: HashMap::new(),
                waiting: HashMap::new(),
            }),
            freed: Condvar::new(),
        }
    }
}

/// A container's slot, given back when dropped.
pub(crate) struct Slot<'a, K> {
    slots: &'a CountSlots<K>,
    owner: u64,
}

impl<K: Clone> CountSlots<K> {
    /// The slot of `owner` to count `key`, or the key its counting thread has.
    pub(crate) fn take(&self, owner: u64, key: &K) -> Result<Slot<'_, K>, K> {
        let mut busy = self.lock();
        if let Some(other) = busy.counting.get(&owner) {
            return Err(other.clone());
        }
        busy.counting.insert(owner, key.clone());
        Ok(Slot { slots: self, owner })
    }

    /// Wait until `owner`'s slot is given back (or [`RECHECK`] passes); false, at once,
    /// when another thread of `owner` is waiting already, unless `even_second`.
    pub(crate) fn wait(&self, owner: u64, even_second: bool) -> bool {
        let mut busy = self.lock();
        if !busy.counting.contains_key(&owner) {
            return true;
        }
        let waiting = busy.waiting.entry(owner).or_insert(0);
        if *waiting > 0 && !even_second {
            return false;
        }
        *waiting += 1;
        let (mut busy, _) = self
            .freed
            .wait_timeout(busy, RECHECK)
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = busy.waiting.get_mut(&owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                busy.waiting.remove(&owner);
            }
        }
        true
    }

    fn lock(&self) -> MutexGuard<'_, Busy<K>> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<K> Drop for Slot<'_, K> {
    fn drop(&mut self) {
        let mut busy = self.slots.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.counting.remove(&self.owner);
        drop(busy);
        self.slots.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn one_slot_per_owner_given_back_on_drop() {
        let s: CountSlots<&str> = CountSlots::default();
        let a = s.take(1, &"a").unwrap();
        assert_eq!(s.take(1, &"b").err(), Some("a"));
        let other = s.take(2, &"b").unwrap();
        drop(a);
        assert!(s.take(1, &"b").is_ok());
        drop(other);
    }

    #[test]
    fn one_waiter_per_owner_woken_when_the_slot_is_given_back() {
        let s: Arc<CountSlots<u8>> = Arc::default();
        let slot = s.take(7, &0).unwrap();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                assert!(s.wait(7, false));
                Instant::now()
            });
            let deadline = Instant::now() + Duration::from_secs(5);
            while !s.lock().waiting.contains_key(&7) {
                assert!(Instant::now() < deadline, "the first waiter never waited");
                std::thread::yield_now();
            }
            // A second waiter of the same owner is turned away while the first waits,
            // unless it must wait; another owner's slot is its own.
            assert!(!s.wait(7, false));
            let _other = s.take(8, &0).unwrap();
            let freed = Instant::now();
            drop(slot);
            let woken = waiter.join().unwrap();
            let waited = woken.saturating_duration_since(freed);
            assert!(
                waited < RECHECK / 2,
                "{waited:?}: not woken by the slot's return"
            );
            // The waiter is counted out again.
            assert!(s.lock().waiting.is_empty());
        });
        // Nobody counting: no wait at all.
        let t = Instant::now();
        assert!(s.wait(7, false));
        assert!(t.elapsed() < RECHECK / 2);
    }
}
