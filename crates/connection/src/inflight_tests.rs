#![allow(clippy::unwrap_used)]
use super::*;
use proptest::prelude::*;
use rustix::fs::{MemfdFlags, SealFlags};

/// A request as the kernel writes one: its header's first word is its length.
fn request(len: usize, fill: u8) -> Vec<u8> {
    let mut r = vec![fill; len];
    r[..4].copy_from_slice(&(len as u32).to_ne_bytes());
    r
}

/// What another process would map.
fn other(t: &Inflight) -> Inflight {
    Inflight::from_fd(t.fd().try_clone_to_owned().unwrap()).unwrap()
}

#[test]
fn a_recorded_request_is_seen_whole_by_another_process_until_cleared() {
    let a = Inflight::create().unwrap();
    let b = other(&a);
    let slot = a.claim(1000).unwrap();
    assert_eq!(b.read(slot), Left::Nothing);
    let req = request(81, 7);
    a.record(slot, &req, 0);
    assert_eq!(
        b.read(slot),
        Left::Request(Recorded {
            bytes: req,
            replays: 0,
            whole: true
        })
    );
    a.clear(slot);
    assert_eq!(b.read(slot), Left::Nothing);
}

#[test]
fn slots_are_claimed_once_and_run_out() {
    let t = Inflight::create().unwrap();
    let mut got: Vec<usize> = (0..SLOTS).map(|_| t.claim(42).unwrap()).collect();
    assert_eq!(t.claim(42), None, "every slot is taken");
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), SLOTS);
}

#[test]
fn an_oversized_request_keeps_its_header_only() {
    let t = Inflight::create().unwrap();
    let slot = t.claim(1).unwrap();
    let req = request(CAP + 1, 9);
    t.record(slot, &req, 1);
    let Left::Request(r) = t.read(slot) else {
        panic!("{:?}", t.read(slot));
    };
    assert!(!r.whole);
    assert_eq!(r.bytes, req[..HEADER_LEN]);
    assert_eq!(r.replays, 1);
    // At the cap it is still whole.
    let req = request(CAP, 3);
    t.record(slot, &req, 0);
    assert!(matches!(t.read(slot), Left::Request(r) if r.whole && r.bytes == req));
}

#[test]
fn a_writer_that_died_mid_copy_leaves_a_torn_slot_not_a_request() {
    let t = Inflight::create().unwrap();
    let slot = t.claim(1).unwrap();
    t.record(slot, &request(64, 1), 0);
    // What a writer killed between its two state stores leaves.
    t.word(slot, STATE)
        .unwrap()
        .store(WRITING, Ordering::Relaxed);
    assert_eq!(t.read(slot), Left::Torn);
    // A FULL slot whose length disagrees with the request's own header.
    t.record(slot, &request(64, 1), 0);
    t.word(slot, LEN).unwrap().store(72, Ordering::Relaxed);
    assert_eq!(t.read(slot), Left::Torn);
    // Shorter than a header.
    t.word(slot, LEN).unwrap().store(8, Ordering::Relaxed);
    assert_eq!(t.read(slot), Left::Torn);
    // A state no writer stores.
    t.word(slot, STATE).unwrap().store(77, Ordering::Relaxed);
    assert_eq!(t.read(slot), Left::Torn);
}

#[test]
fn a_dead_workers_slots_are_found_and_taken_by_one_worker_only() {
    let t = Inflight::create().unwrap();
    let dead_pid = 5_000_000; // above the largest pid_max (2^22): never a process
    let s = t.claim(dead_pid).unwrap();
    let live = t.claim(std::process::id()).unwrap();
    t.record(s, &request(48, 2), 0);
    t.record(live, &request(48, 3), 0);
    assert_eq!(t.dead(alive), vec![(s, dead_pid)]);
    assert!(matches!(t.read(s), Left::Request(r) if r.bytes == request(48, 2)));
    let me = std::process::id();
    assert!(t.free(s, dead_pid, me));
    assert!(!t.free(s, dead_pid, me), "freed once");
    assert_eq!(t.read(s), Left::Nothing);
    assert!(t.dead(alive).is_empty());
    // The freed slot is claimable again, empty.
    assert_eq!(t.claim(7), Some(s));
    assert_eq!(t.read(s), Left::Nothing);
    // A live worker's slot is never taken for a dead one's.
    assert!(!t.free(live, dead_pid, me));
}

#[test]
fn a_request_received_is_kept_from_the_moment_the_read_returns() {
    let t = Inflight::create().unwrap();
    let slot = t.claim(1).unwrap();
    // A pipe stands in for /dev/fuse: one write, one request.
    let (r, w) = rustix::pipe::pipe().unwrap();
    let mut buf = vec![0u8; CAP + 8192];
    let req = request(81, 5);
    rustix::io::write(&w, &req).unwrap();
    let n = t.receive(slot, &r, &mut buf).unwrap();
    assert_eq!(&buf[..n], &req[..]);
    assert!(matches!(t.read(slot), Left::Request(x) if x.bytes == req && x.whole));
    // A worker killed the instant read(2) returned has not said FULL: the kernel's copy
    // is there all the same.
    t.word(slot, STATE)
        .unwrap()
        .store(READING, Ordering::Relaxed);
    assert!(matches!(t.read(slot), Left::Request(x) if x.bytes == req && x.replays == 0));
    // One killed while it waited in read(2): the first word is still zero.
    t.word(slot, SLOT_HEADER)
        .unwrap()
        .store(0, Ordering::Relaxed);
    assert_eq!(t.read(slot), Left::Nothing);
    t.clear(slot);
    // Longer than the slot: whole in the buffer, its header in the slot.
    let big = request(CAP + 3000, 9);
    rustix::io::write(&w, &big).unwrap();
    let n = t.receive(slot, &r, &mut buf).unwrap();
    assert_eq!(&buf[..n], &big[..]);
    assert!(matches!(t.read(slot), Left::Request(x) if !x.whole && x.bytes == big[..HEADER_LEN]));
    // A failed read leaves nothing behind, and a buffer shorter than a slot is refused.
    drop(w);
    assert_eq!(t.receive(slot, &r, &mut buf).unwrap(), 0);
    assert!(t.receive(slot, &r, &mut [0u8; 64]).is_err());
}

#[test]
fn a_table_of_another_layout_is_refused() {
    let t = Inflight::create().unwrap();
    t.words.words()[1].store(SLOTS as u64 + 1, Ordering::Relaxed);
    assert!(Inflight::from_fd(t.fd().try_clone_to_owned().unwrap()).is_err());
    let small = rustix::fs::memfd_create("x", MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::fs::ftruncate(&small, 4096).unwrap();
    rustix::fs::fcntl_add_seals(&small, SealFlags::SHRINK).unwrap();
    assert!(Inflight::from_fd(small).is_err());
}

proptest! {
    /// Whatever is recorded reads back as recorded (whole up to the cap, its header
    /// beyond), and garbage in a slot's words reads as a request only when it is
    /// self-consistent, never as a panic.
    #[test]
    fn records_round_trip_and_any_slot_contents_decode_totally(
        len in HEADER_LEN..CAP + 64,
        fill in any::<u8>(),
        replays in 0u32..5,
        junk in proptest::collection::vec(any::<u64>(), SLOT_WORDS),
    ) {
        let t = Inflight::create().unwrap();
        let slot = t.claim(5).unwrap();
        let req = request(len, fill);
        t.record(slot, &req, replays);
        match t.read(slot) {
            Left::Request(r) => {
                prop_assert_eq!(r.replays, replays);
                prop_assert_eq!(r.whole, len <= CAP);
                let want = if len <= CAP { &req[..] } else { &req[..HEADER_LEN] };
                prop_assert_eq!(&r.bytes[..], want);
            }
            other => prop_assert!(false, "{:?}", other),
        }
        for (w, v) in t.slot(slot).iter().zip(&junk).skip(1) {
            w.store(*v, Ordering::Relaxed);
        }
        if let Left::Request(r) = t.read(slot) {
            prop_assert!(r.bytes.len() >= HEADER_LEN && r.bytes.len() <= CAP);
        }
    }
}

/// What keeping a request costs the read path: `cargo test -p connection --release
/// recording_cost -- --ignored --nocapture` prints it.
#[test]
#[ignore = "a measurement, not a check"]
fn recording_cost() {
    let t = Inflight::create().unwrap();
    let slot = t.claim(1).unwrap();
    // A READ: fuse_in_header + fuse_read_in.
    let req = request(80, 1);
    let n = 2_000_000u32;
    let start = std::time::Instant::now();
    for _ in 0..n {
        t.record(slot, std::hint::black_box(&req), 0);
        t.clear(slot);
    }
    println!("record + clear of 80 bytes: {:?}", start.elapsed() / n);
}

/// What reading a request into its slot costs beside a plain `read(2)` (a pipe stands
/// in for the device): `cargo test -p connection --release receiving_cost -- --ignored
/// --nocapture` prints both.
#[test]
#[ignore = "a measurement, not a check"]
fn receiving_cost() {
    let t = Inflight::create().unwrap();
    let slot = t.claim(1).unwrap();
    let (r, w) = rustix::pipe::pipe().unwrap();
    let req = request(80, 1);
    let mut buf = vec![0u8; CAP + 128 * 1024];
    let n = 500_000u32;
    let start = std::time::Instant::now();
    for _ in 0..n {
        rustix::io::write(&w, &req).unwrap();
        rustix::io::read(&r, &mut buf[..]).unwrap();
    }
    let plain = start.elapsed() / n;
    let start = std::time::Instant::now();
    for _ in 0..n {
        rustix::io::write(&w, &req).unwrap();
        t.receive(slot, &r, &mut buf).unwrap();
        t.clear(slot);
    }
    let kept = start.elapsed() / n;
    println!("write + read: {plain:?}; write + receive + clear: {kept:?}");
}
