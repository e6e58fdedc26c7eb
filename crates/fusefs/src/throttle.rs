//! Log lines a container can provoke at will (a refused open, a refused trigger),
//! said at most once per interval for the whole worker, so that the container refused
//! cannot flood the log either.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    last: Mutex<Option<Instant>>,
    every: Duration,
}

impl Throttle {
    pub const fn new(every: Duration) -> Throttle {
        Throttle {
            last: Mutex::new(None),
            every,
        }
    }

    /// Whether a line may be said now; if so, the next is not before `every`.
    pub fn due(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < self.every) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_interval() {
        let t = Throttle::new(Duration::from_secs(3600));
        assert!(t.due());
        assert!(!t.due());
        let t = Throttle::new(Duration::ZERO);
        assert!(t.due());
        assert!(t.due());
    }
}
