//! The relay patch of the vendored fuser (one reading thread at a time, polling before
//! it blocks), tested here, where `cargo test --workspace` runs it (the vendored crate's
//! own unit tests run apart: `vendor/PATCHES.md`).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fuser::relay::{Relay, Role, STUCK};

fn acquire_in_thread(r: &Arc<Relay>) -> JoinHandle<(Role, bool)> {
    let r = r.clone();
    thread::spawn(move || {
        let role = r.acquire();
        let leading = r.leading();
        // A leader hands off before its thread ends, like a worker going to slow work.
        fuser::hand_off();
        (role, leading)
    })
}

fn still_waiting(h: &JoinHandle<(Role, bool)>) -> bool {
    thread::sleep(Duration::from_millis(50));
    !h.is_finished()
}

#[test]
fn one_leader_at_a_time_and_hand_off_passes_the_lead() {
    let r = Relay::new(Duration::ZERO);
    assert_eq!(r.acquire(), Role::Leader);
    assert!(r.leading());
    let waiter = acquire_in_thread(&r);
    assert!(
        still_waiting(&waiter),
        "a second leader while the first leads"
    );
    fuser::hand_off();
    assert!(!r.leading());
    assert_eq!(waiter.join().unwrap(), (Role::Leader, true));
    // The waiter handed off in turn: the lead is free again.
    assert_eq!(r.acquire(), Role::Leader);
    // hand_off on a thread that does not lead gives nothing away.
    let other = thread::spawn(fuser::hand_off);
    other.join().unwrap();
    let waiter = acquire_in_thread(&r);
    assert!(still_waiting(&waiter));
    fuser::hand_off();
    assert_eq!(waiter.join().unwrap(), (Role::Leader, true));
}

#[test]
fn a_stuck_leader_gets_a_helper_and_close_releases_everyone() {
    let r = Relay::new(Duration::ZERO);
    assert_eq!(r.acquire(), Role::Leader);
    // A leader between requests is never helped.
    let watcher = acquire_in_thread(&r);
    thread::sleep(STUCK * 3);
    assert!(!watcher.is_finished(), "an idle leader was helped");
    // One that stays in a request for longer than STUCK is.
    let t = Instant::now();
    r.busy();
    assert_eq!(watcher.join().unwrap(), (Role::Helper, false));
    assert!(t.elapsed() >= STUCK);
    r.idle();
    let parked = acquire_in_thread(&r);
    assert!(still_waiting(&parked));
    r.close();
    assert_eq!(parked.join().unwrap().0, Role::Done);
    assert_eq!(r.acquire(), Role::Done);
}

#[test]
fn spin_returns_as_soon_as_a_request_waits() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let r = Relay::new(Duration::from_millis(20));
    let t = Instant::now();
    assert!(!r.spin(&a, Duration::from_millis(20)));
    assert!(t.elapsed() >= Duration::from_millis(20));
    std::io::Write::write_all(&mut &b, b"x").unwrap();
    let t = Instant::now();
    assert!(r.spin(&a, Duration::from_secs(10)));
    assert!(t.elapsed() < Duration::from_millis(20));
    assert!(!r.spin(&a, Duration::ZERO));
}

const OPEN: u32 = 14;
const RELEASE: u32 = 18;

#[test]
fn polling_after_a_release_adapts_to_the_next_request() {
    let spin = Duration::from_micros(80);
    let r = Relay::new(spin);
    // Full budget after an OPEN (its RELEASE follows) and before any request.
    assert_eq!(r.budget(None), spin);
    assert_eq!(r.budget(Some(OPEN)), spin);
    assert_eq!(r.budget(Some(RELEASE)), spin);
    // Requests a millisecond after each RELEASE: the budget halves, then stops.
    assert_eq!(
        budgets_after_releases(&r, Duration::from_millis(1)),
        [40, 20, 10, 0, 0]
    );
    // Whatever follows an OPEN teaches nothing, and the OPEN budget never shrinks.
    r.learn(OPEN, Duration::from_micros(5));
    assert_eq!(r.budget(Some(RELEASE)), Duration::ZERO);
    assert_eq!(r.budget(Some(OPEN)), spin);
    // Back-to-back requests again: it grows back to the full budget.
    assert_eq!(
        budgets_after_releases(&r, Duration::from_micros(5)),
        [10, 20, 40, 80, 80]
    );
    assert_eq!(
        fuser::relay::opcode(&[0, 0, 0, 0, 18, 0, 0, 0]),
        Some(18u32.to_le())
    );
    assert_eq!(fuser::relay::opcode(&[0; 7]), None);
}

/// The budget after a RELEASE, in µs, after each of five RELEASEs followed by a request
/// `gap` later.
fn budgets_after_releases(r: &Relay, gap: Duration) -> Vec<u128> {
    (0..5)
        .map(|_| {
            r.learn(RELEASE, gap);
            r.budget(Some(RELEASE)).as_micros()
        })
        .collect()
}

#[test]
fn the_cheaper_of_relay_and_free_threads_is_kept_and_the_other_retried() {
    use fuser::relay::{EXPLORE_EVERY, MIN_REQUESTS, Tuner};
    let mut t = Tuner::default();
    // The relay is measured first (it starts so), then free threads.
    assert!(
        t.window_closed(false, 60_000_000, 1_000),
        "free threads never tried"
    );
    assert!(
        t.window_closed(true, 30_000_000, 1_000),
        "the relay kept at twice the CPU"
    );
    // The choice holds; one window in EXPLORE_EVERY measures the relay again.
    let chosen: Vec<bool> = (0..EXPLORE_EVERY * 2)
        .map(|_| t.window_closed(true, 30_000_000, 1_000))
        .collect();
    assert_eq!(chosen.iter().filter(|&&f| !f).count(), 2, "{chosen:?}");
    // The load changes (a tight loop): the relay gets cheaper, and is chosen once
    // the retries measured it so.
    let mut free = true;
    for _ in 0..EXPLORE_EVERY * 3 {
        free = t.window_closed(free, if free { 30_000_000 } else { 10_000_000 }, 1_000);
    }
    let kept: Vec<bool> = (0..EXPLORE_EVERY - 1)
        .map(|_| t.window_closed(false, 10_000_000, 1_000))
        .collect();
    assert!(
        kept.iter().filter(|&&f| !f).count() >= kept.len() - 1,
        "{kept:?}"
    );
    // Too few requests to tell: nothing measured.
    let before = t.costs();
    t.window_closed(false, 1_000_000_000, MIN_REQUESTS - 1);
    assert_eq!(t.costs(), before);
    // A near tie goes to the relay (it also spares the reader a wake-up).
    let mut t = Tuner::default();
    t.window_closed(false, 10_000_000, 1_000);
    let free = t.window_closed(true, 8_000_000, 1_000);
    assert!(!free, "free threads kept at 0.8 of the relay's CPU");
}

#[test]
fn a_slowly_polled_daemon_is_measured_over_longer_windows() {
    use fuser::relay::{LONGEST_WINDOW, MIN_REQUESTS, WINDOW, window_ends};
    // Busy: a window closes at its length, measured.
    assert_eq!(window_ends(WINDOW / 2, 10_000), None);
    assert_eq!(window_ends(WINDOW, 10_000), Some(10_000));
    // A few hundred requests a second: the window stays open until it holds enough
    // (it used to close unmeasured, leaving the choice where a burst had put it).
    assert_eq!(window_ends(WINDOW * 2, MIN_REQUESTS - 1), None);
    assert_eq!(window_ends(WINDOW * 2, MIN_REQUESTS), Some(MIN_REQUESTS));
    // Idle: it closes without measuring, so background work is never taken for
    // the requests' cost.
    assert_eq!(window_ends(LONGEST_WINDOW, MIN_REQUESTS - 1), Some(0));
    let mut t = fuser::relay::Tuner::default();
    t.window_closed(false, 1_000_000_000, 0);
    assert_eq!(t.costs(), [None, None]);
}

#[test]
fn free_threads_stop_waiting_for_the_lead_and_take_it_again_after() {
    let r = Relay::new(Duration::from_micros(50));
    assert_eq!(r.acquire(), Role::Leader);
    let waiter = acquire_in_thread(&r);
    assert!(still_waiting(&waiter));
    r.set_free(true);
    assert_eq!(waiter.join().unwrap(), (Role::Free, false));
    fuser::hand_off();
    assert_eq!(r.acquire(), Role::Free);
    r.set_free(false);
    assert_eq!(r.acquire(), Role::Leader);
    fuser::hand_off();
}
