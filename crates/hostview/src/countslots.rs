//! Which containers are counting tasks now: one serving thread per container at a time.
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

/// The cgroup each container (by owner) is counting now, and whether another of its
/// threads waits for the slot.
#[derive(Default)]
pub(crate) struct CountSlots<K> {
    busy: Mutex<HashMap<u64, (K, bool)>>,
    freed: Condvar,
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
        if let Some((other, _)) = busy.get(&owner) {
            return Err(other.clone());
        }
        busy.insert(owner, (key.clone(), false));
        Ok(Slot { slots: self, owner })
    }

    /// Wait until `owner`'s slot is given back (or [`RECHECK`] passes); false, at once,
    /// when another thread of `owner` is waiting already, unless `even_second`.
    pub(crate) fn wait(&self, owner: u64, even_second: bool) -> bool {
        let mut busy = self.lock();
        match busy.get_mut(&owner) {
            None => return true,
            Some((_, waiting)) if *waiting && !even_second => return false,
            Some((_, waiting)) => *waiting = true,
        }
        let (mut busy, _) = self
            .freed
            .wait_timeout(busy, RECHECK)
            .unwrap_or_else(|p| p.into_inner());
        // The slot may be another's by now, with its own waiter to come.
        if let Some((_, waiting)) = busy.get_mut(&owner) {
            *waiting = false;
        }
        true
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, (K, bool)>> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<K> Drop for Slot<'_, K> {
    fn drop(&mut self) {
        let mut busy = self.slots.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.remove(&self.owner);
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
        let t = Instant::now();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                assert!(s.wait(7, false));
                t.elapsed()
            });
            // A second waiter of the same owner is turned away while the first waits;
            // another owner's is not.
            let deadline = Instant::now() + Duration::from_secs(5);
            while s.lock().get(&7).is_some_and(|(_, w)| !*w) {
                assert!(Instant::now() < deadline, "the first waiter never waited");
                std::thread::yield_now();
            }
            assert!(!s.wait(7, false));
            let _other = s.take(8, &0).unwrap();
            drop(slot);
            let waited = waiter.join().unwrap();
            assert!(
                waited < RECHECK / 2,
                "{waited:?}: not woken by the slot's return"
            );
        });
        // Nobody counting: no wait at all.
        let t = Instant::now();
        assert!(s.wait(7, false));
        assert!(t.elapsed() < RECHECK / 2);
    }
}
