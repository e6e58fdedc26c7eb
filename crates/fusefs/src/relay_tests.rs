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
