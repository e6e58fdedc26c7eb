//! Logging a failure once per container, not once per read: a broken container polled
//! by `top` every second must not flood the journal.

use std::collections::HashSet;
use std::sync::Mutex;

/// Past this many distinct keys the set is reset (and says so), so the memory it takes
/// stays bounded however many containers fail over the daemon's life.
const MAX_KEYS: usize = 4096;

#[derive(Default)]
pub struct LogOnce {
    seen: Mutex<HashSet<(u64, &'static str)>>,
}

impl LogOnce {
    /// True the first time `(key, what)` is seen.
    pub fn first(&self, key: u64, what: &'static str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_KEYS {
            seen.clear();
            tracing::info!(
                "forgetting {MAX_KEYS} logged failures; repeated ones will be logged again"
            );
        }
        seen.insert((key, what))
    }
}
