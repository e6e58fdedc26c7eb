#![allow(clippy::unwrap_used)]
use super::*;
use fuser::Journal as _;

/// Above the largest pid_max (2^22): never a running process.
const DEAD: u32 = 5_000_000;
const OPEN: u32 = 14;

fn request(opcode: u32, len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[..4].copy_from_slice(&(len as u32).to_ne_bytes());
    r[4..8].copy_from_slice(&opcode.to_ne_bytes());
    r[8..16].copy_from_slice(&77u64.to_ne_bytes());
    r
}

/// A table in which a dead worker left `req`, replayed `replays` times before.
fn left(req: &[u8], replays: u32) -> Arc<Inflight> {
    let t = Arc::new(Inflight::create().unwrap());
    let s = t.claim(DEAD).unwrap();
    t.record(s, req, replays);
    t
}

fn own_slot_holds(t: &Inflight, j: &Journal) -> Left {
    t.read(j.slot(0).unwrap())
}

#[test]
fn a_thread_keeps_its_request_until_it_answered() {
    let t = Arc::new(Inflight::create().unwrap());
    let j = Journal::new(t.clone(), 2, true, false, vec![]);
    let req = request(OPEN, 48);
    j.taken(1, &req);
    assert!(
        matches!(t.read(j.slot(1).unwrap()), Left::Request(r) if r.bytes == req && r.replays == 0)
    );
    assert_eq!(
        own_slot_holds(&t, &j),
        Left::Nothing,
        "thread 0 took nothing"
    );
    j.answered(1);
    assert_eq!(t.read(j.slot(1).unwrap()), Left::Nothing);
    // A thread past the journal's count is not kept, and is no error.
    j.taken(9, &req);
    j.answered(9);
}

#[test]
fn a_dead_workers_request_is_replayed_once_and_kept_as_ours_meanwhile() {
    let req = request(OPEN, 64);
    let t = left(&req, 0);
    let j = Journal::new(t.clone(), 1, true, false, vec![DEAD]);
    let o = j.orphan(0).unwrap();
    assert_eq!(o.request, req);
    assert_eq!(o.fail, None);
    // If this worker dies answering it, the next one finds it, with the crash of the
    // worker that held it.
    assert!(matches!(own_slot_holds(&t, &j), Left::Request(r) if r.replays == 1));
    assert!(t.dead(alive).is_empty(), "the dead worker's slot was freed");
    j.answered(0);
    assert_eq!(j.orphan(0), None);
}

#[test]
fn a_request_that_crashed_workers_is_tried_once_more_in_safe_mode_then_fails() {
    let req = request(OPEN, 64);
    let crashed = || vec![DEAD];
    // Crashed two workers: a virtualizing worker answers EIO...
    let j = Journal::new(left(&req, 1), 1, true, false, crashed());
    assert_eq!(j.orphan(0).unwrap().fail, Some(libc::EIO));
    // ...a safe one tries it (what FUSE_NOTIFY_RESEND would give it).
    let t = left(&req, 1);
    let j = Journal::new(t.clone(), 1, true, true, crashed());
    assert_eq!(j.orphan(0).unwrap().fail, None);
    assert!(matches!(own_slot_holds(&t, &j), Left::Request(r) if r.replays == 2));
    // Crashed a safe worker too: EIO for everyone.
    let j = Journal::new(left(&req, 2), 1, true, true, crashed());
    assert_eq!(j.orphan(0).unwrap().fail, Some(libc::EIO));
}

#[test]
fn a_worker_killed_from_outside_does_not_count_against_the_request() {
    let req = request(OPEN, 64);
    // One crash before, and its last holder was SIGKILLed (not in the crashed list):
    // a virtualizing worker still answers it, and the count stays one.
    let t = left(&req, 1);
    let j = Journal::new(t.clone(), 1, true, false, vec![]);
    assert_eq!(j.orphan(0).unwrap().fail, None);
    assert!(matches!(own_slot_holds(&t, &j), Left::Request(r) if r.replays == 1));
}

#[test]
fn a_request_kept_in_part_is_answered_eio_and_a_torn_one_is_skipped() {
    let big = request(OPEN, connection::inflight::CAP + 100);
    let t = left(&big, 0);
    let j = Journal::new(t.clone(), 1, true, false, vec![]);
    let o = j.orphan(0).unwrap();
    assert_eq!(o.fail, Some(libc::EIO));
    assert_eq!(o.request.len(), connection::inflight::HEADER_LEN);
    assert_eq!(
        own_slot_holds(&t, &j),
        Left::Nothing,
        "an error needs no keeping"
    );

    let t = Arc::new(Inflight::create().unwrap());
    let torn = t.claim(DEAD).unwrap();
    t.record(torn, &request(OPEN, 64), 0);
    // What a writer killed mid-copy leaves: the length disagrees with the header.
    let mut bad = request(OPEN, 64);
    bad[..4].copy_from_slice(&60u32.to_ne_bytes());
    t.record(torn, &bad, 0);
    let j = Journal::new(t.clone(), 1, true, false, vec![]);
    assert_eq!(j.orphan(0), None);
    assert!(
        t.dead(alive).is_empty(),
        "a torn slot is freed, not left forever"
    );
}

#[test]
fn with_resend_a_dead_workers_slots_are_emptied_not_replayed() {
    let t = left(&request(OPEN, 64), 0);
    let j = Journal::new(t.clone(), 1, false, false, vec![]);
    assert_eq!(j.orphan(0), None);
    assert!(t.dead(alive).is_empty());
}
