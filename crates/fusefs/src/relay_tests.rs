//! The relay patch of the vendored fuser (one reading thread at a time, polling before
//! it blocks), tested here: the vendored crate's own tests need dev-dependencies that
//! are not vendored.
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
    assert!(!r.spin(&a));
    assert!(t.elapsed() >= Duration::from_millis(20));
    std::io::Write::write_all(&mut &b, b"x").unwrap();
    let t = Instant::now();
    assert!(r.spin(&a));
    assert!(t.elapsed() < Duration::from_millis(20));
    assert!(!Relay::new(Duration::ZERO).spin(&a));
}
