//! The requests each serving thread has taken from `/dev/fuse` and not yet answered, in
//! memory that outlives the worker that took them.
//!
//! Before Linux 6.9 the kernel cannot put back (`FUSE_NOTIFY_RESEND`) a request a
//! worker had read when it died: its reader would wait until interrupted. So each
//! serving thread copies the request it read into a slot of this table before it
//! dispatches it and empties the slot once it answered; the next worker answers what
//! a dead one left (see fusefs's `journal`). A thread's slot is its own for the life of
//! its worker (the slot's owner word is the worker's pid), so recording is one copy of
//! the request and two stores, with no lock.
//!
//! The table is a sealed memfd of 64-bit words the supervisor creates and every worker
//! maps: a header ([`MAGIC`], the number of slots), then per slot
//!
//! | word | meaning |
//! |---|---|
//! | 0 | owner: the pid of the worker whose thread holds it (0: free) |
//! | 1 | [`EMPTY`], [`READING`] (its thread is in `read(2)`), [`WRITING`] (a copy under way) or [`FULL`] |
//! | 2 | how many times the request was replayed before (0: read from the device) |
//! | 3 | the request's length in bytes (its header's `len`) |
//! | 4.. | the request's bytes, at most [`CAP`]; a longer one keeps its header only |
//!
//! A serving thread reads each request from the device straight into its slot
//! ([`Inflight::receive`], one `readv(2)`: the slot, then the thread's own buffer for
//! whatever does not fit), having zeroed the slot's first word and stored `READING`:
//! the kernel's copy is the record, so a worker killed the instant `read(2)` returned
//! still leaves the request behind, and a `READING` slot whose first word (the
//! request's length) is still 0 was waiting, not holding anything. Replays are copied
//! in ([`Inflight::record`]): the writer stores `WRITING` before the copy and `FULL`
//! (release) after it, so a worker that died in the middle leaves `WRITING`, never a
//! torn request that looks whole.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys::SharedWords;

const MAGIC: u64 = u64::from_le_bytes(*b"lxcfsIF1");
/// Slots in the table: 16 threads (the most a worker runs) for each of an old worker
/// still draining, a new one and a dead one's slots not yet taken over, with room.
pub const SLOTS: usize = 64;
/// Bytes of a request kept whole: every request lxcfs-rs serves (LOOKUP, GETATTR, OPEN,
/// READ, RELEASE, POLL, …) is far smaller; a WRITE of a PSI trigger fits too.
pub const CAP: usize = 4096;
/// `fuse_in_header`: what a request longer than [`CAP`] keeps, so that it can at least
/// be answered with an error.
pub const HEADER_LEN: usize = 40;
pub const EMPTY: u64 = 0;
pub const WRITING: u64 = 1;
pub const FULL: u64 = 2;
pub const READING: u64 = 3;

const TABLE_HEADER: usize = 2;
const SLOT_HEADER: usize = 4;
const SLOT_WORDS: usize = SLOT_HEADER + CAP / 8;
const OWNER: usize = 0;
const STATE: usize = 1;
const REPLAYS: usize = 2;
const LEN: usize = 3;

fn words_needed() -> usize {
    TABLE_HEADER + SLOTS * SLOT_WORDS
}

/// A request found in a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The request as read from the device; only its header when not `whole`.
    pub bytes: Vec<u8>,
    /// Times it was replayed before this copy was made.
    pub replays: u32,
    /// All of it was kept (it was at most [`CAP`] bytes).
    pub whole: bool,
}

/// What a slot of a dead worker held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// Nothing: the worker had answered what it took.
    Nothing,
    /// The worker died while copying a request in: it cannot be answered.
    Torn,
    /// A request it had taken and not answered (or answered and not yet cleared).
    Request(Recorded),
}

pub struct Inflight {
    fd: OwnedFd,
    words: SharedWords,
}

impl Inflight {
    /// A new, empty table (the supervisor's, once per connection).
    pub fn create() -> std::io::Result<Inflight> {
        let (fd, words) = SharedWords::create("lxcfs-rs:inflight", words_needed())?;
        let w = words.words();
        w[0].store(MAGIC, Ordering::Relaxed);
        w[1].store(SLOTS as u64, Ordering::Relaxed);
        Ok(Inflight { fd, words })
    }

    /// The table another process created (a worker's inherited descriptor).
    pub fn from_fd(fd: OwnedFd) -> std::io::Result<Inflight> {
        let words = SharedWords::map(&fd, words_needed())?;
        let w = words.words();
        if w[0].load(Ordering::Relaxed) != MAGIC || w[1].load(Ordering::Relaxed) != SLOTS as u64 {
            return Err(std::io::Error::other(
                "the in-flight table was made by an incompatible lxcfs-rs build",
            ));
        }
        Ok(Inflight { fd, words })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn slot(&self, i: usize) -> &[AtomicU64] {
        self.words.range(TABLE_HEADER + i * SLOT_WORDS, SLOT_WORDS)
    }

    fn word(&self, i: usize, w: usize) -> Option<&AtomicU64> {
        self.slot(i).get(w)
    }

    /// Take a free slot for a thread of worker `pid`.
    pub fn claim(&self, pid: u32) -> Option<usize> {
        (0..SLOTS).find(|&i| {
            self.word(i, OWNER).is_some_and(|o| {
                o.compare_exchange(0, u64::from(pid), Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            })
        })
    }

    /// Slots held by a process that no longer runs, by `alive`'s account, with the pid
    /// that held each.
    pub fn dead(&self, alive: impl Fn(u32) -> bool) -> Vec<(usize, u32)> {
        (0..SLOTS)
            .filter_map(|i| {
                let owner = self.word(i, OWNER)?.load(Ordering::Acquire);
                let pid = u32::try_from(owner).ok().filter(|&p| p != 0)?;
                (!alive(pid)).then_some((i, pid))
            })
            .collect()
    }

    /// Record `req` in slot `i` (the caller's own), replayed `replays` times before.
    pub fn record(&self, i: usize, req: &[u8], replays: u32) {
        let slot = self.slot(i);
        let (Some(state), Some(rep), Some(len)) =
            (slot.get(STATE), slot.get(REPLAYS), slot.get(LEN))
        else {
            return;
        };
        state.store(WRITING, Ordering::Relaxed);
        // The stores of the copy must not be seen before WRITING is.
        std::sync::atomic::fence(Ordering::Release);
        let kept = if req.len() <= CAP {
            req
        } else {
            req.get(..HEADER_LEN).unwrap_or(req)
        };
        let data = slot.get(SLOT_HEADER..).unwrap_or(&[]);
        let mut chunks = kept.chunks_exact(8);
        for (w, c) in data.iter().zip(&mut chunks) {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            w.store(u64::from_ne_bytes(b), Ordering::Relaxed);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            if let Some(w) = data.get(kept.len() / 8) {
                w.store(u64::from_ne_bytes(b), Ordering::Relaxed);
            }
        }
        rep.store(u64::from(replays), Ordering::Relaxed);
        len.store(req.len() as u64, Ordering::Relaxed);
        state.store(FULL, Ordering::Release);
    }

    /// The request in slot `i` was answered.
    pub fn clear(&self, i: usize) {
        if let Some(s) = self.word(i, STATE) {
            s.store(EMPTY, Ordering::Release);
        }
    }

    /// What slot `i` holds.
    pub fn read(&self, i: usize) -> Left {
        let slot = self.slot(i);
        let (Some(state), Some(rep), Some(len)) =
            (slot.get(STATE), slot.get(REPLAYS), slot.get(LEN))
        else {
            return Left::Nothing;
        };
        let data = slot.get(SLOT_HEADER..).unwrap_or(&[]);
        let (total, replays) = match state.load(Ordering::Acquire) {
            EMPTY => return Left::Nothing,
            FULL => (
                usize::try_from(len.load(Ordering::Relaxed)).unwrap_or(usize::MAX),
                rep.load(Ordering::Relaxed),
            ),
            // Its thread died in or right after `read(2)`: a request is there when the
            // kernel wrote one (its first word is the request's length).
            READING => match data
                .first()
                .map(|w| w.load(Ordering::Relaxed).to_ne_bytes())
            {
                Some([a, b, c, d, ..]) if u32::from_ne_bytes([a, b, c, d]) != 0 => {
                    (u32::from_ne_bytes([a, b, c, d]) as usize, 0)
                }
                _ => return Left::Nothing,
            },
            _ => return Left::Torn,
        };
        if total < HEADER_LEN {
            return Left::Torn;
        }
        let whole = total <= CAP;
        let kept = if whole { total } else { HEADER_LEN };
        let mut bytes = Vec::with_capacity(kept.next_multiple_of(8));
        for w in data.iter().take(kept.div_ceil(8)) {
            bytes.extend_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
        }
        bytes.truncate(kept);
        // The request's own header says how long it is: a slot that disagrees was not
        // written by a whole `record`.
        let said = bytes
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_ne_bytes(b) as usize);
        if said != Some(total) {
            return Left::Torn;
        }
        Left::Request(Recorded {
            bytes,
            replays: u32::try_from(replays).unwrap_or(u32::MAX),
            whole,
        })
    }

    /// Read the next request from `dev` into slot `i` (the caller's own) and `buf`:
    /// `buf[..n]` holds it whole on return, and the slot holds it (its header only,
    /// past [`CAP`] bytes) until [`clear`](Self::clear). `buf` must be at least as long
    /// as the longest request.
    pub fn receive<Fd: AsFd>(&self, i: usize, dev: Fd, buf: &mut [u8]) -> std::io::Result<usize> {
        let slot = self.slot(i);
        let (Some(state), Some(rep), Some(len), Some(first)) = (
            slot.get(STATE),
            slot.get(REPLAYS),
            slot.get(LEN),
            slot.get(SLOT_HEADER),
        ) else {
            return Err(std::io::Error::other("no such slot"));
        };
        if buf.len() < CAP {
            return Err(rustix::io::Errno::INVAL.into());
        }
        first.store(0, Ordering::Relaxed);
        state.store(READING, Ordering::Release);
        let tail_len = buf.len().saturating_sub(CAP);
        let at = TABLE_HEADER + i * SLOT_WORDS + SLOT_HEADER;
        let n = match self.words.readv(dev, at, CAP, &mut buf[..tail_len]) {
            Ok(n) => n,
            Err(e) => {
                state.store(EMPTY, Ordering::Release);
                return Err(e);
            }
        };
        // Contiguous in `buf`: the slot's part first, then what overflowed into `buf`.
        let in_slot = n.min(CAP);
        if n > CAP {
            buf.copy_within(..n - CAP, CAP);
        }
        let data = slot.get(SLOT_HEADER..).unwrap_or(&[]);
        for (w, chunk) in data.iter().zip(buf[..in_slot].chunks_mut(8)) {
            let b = w.load(Ordering::Relaxed).to_ne_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        rep.store(0, Ordering::Relaxed);
        len.store(n as u64, Ordering::Relaxed);
        state.store(FULL, Ordering::Release);
        Ok(n)
    }

    /// Give slot `i` up if `owner` (a dead worker) still holds it: true when this call
    /// freed it, so that two workers looking at one dead worker's slots never both take
    /// a request. `me` holds it meanwhile: nobody claims a slot while it is emptied.
    pub fn free(&self, i: usize, owner: u32, me: u32) -> bool {
        let Some(o) = self.word(i, OWNER) else {
            return false;
        };
        let took = o
            .compare_exchange(
                u64::from(owner),
                u64::from(me),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok();
        if took {
            self.clear(i);
            o.store(0, Ordering::Release);
        }
        took
    }
}

impl std::fmt::Debug for Inflight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflight").field("slots", &SLOTS).finish()
    }
}

/// Whether process `pid` still runs (a zombie counts as running: a worker is reaped by
/// its supervisor before the next one starts).
pub fn alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

#[cfg(test)]
#[path = "inflight_tests.rs"]
mod tests;
