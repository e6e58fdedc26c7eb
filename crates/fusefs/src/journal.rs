//! The requests this worker's threads took and have not answered, kept in the
//! connection's [`Inflight`] table, and the answer to those a dead worker left there.
//!
//! From Linux 6.9 the supervisor asks the kernel to resend what a dead worker had taken
//! (`FUSE_NOTIFY_RESEND`); before it, those requests would wait until their readers are
//! interrupted, so the next worker answers them from the table before it reads the
//! device (fuser's `journal` patch dispatches them). Never both: with resend, the dead
//! worker's slots are only emptied, and no request is answered twice with data.
//!
//! A request can be what killed the worker (a bug rendering some file). Replayed, it
//! would kill every next worker, so a slot counts the workers that crashed holding it
//! (the supervisor says which did: one SIGKILLed from outside, say by an operator or a
//! test, did not): after one crash it is tried again by a virtualizing worker, after
//! two only by a worker serving the host's files (crash-loop safe mode: what `RESEND`
//! gives such a request from 6.9 on), after three it is answered `EIO`.

use std::sync::{Arc, Mutex};

use connection::Inflight;
use connection::inflight::{Left, alive};

/// Crashes of workers holding a request past which it is answered `EIO`, by a
/// virtualizing worker and by one serving the host's files.
const TRIES_VIRTUAL: u32 = 1;
const TRIES_SAFE: u32 = 2;

#[derive(Debug)]
pub struct Journal {
    table: Arc<Inflight>,
    /// Each event-loop thread's slot (`None`: none was free, that thread's requests are
    /// not kept).
    slots: Vec<Option<usize>>,
    /// Dead workers' slots still to answer, with the pid that held each.
    left: Mutex<Vec<(usize, u32)>>,
    /// This worker serves the host's files: a request that killed a virtualizing
    /// worker is tried once more.
    safe: bool,
    /// Dead workers that crashed (the others were killed or stopped from outside).
    crashed: Vec<u32>,
    me: u32,
}

impl Journal {
    /// A journal for `threads` event-loop threads; `replay`: answer what dead workers
    /// left (the kernel cannot resend it), else only empty their slots; `crashed`: the
    /// pids of dead workers that crashed.
    pub fn new(
        table: Arc<Inflight>,
        threads: usize,
        replay: bool,
        safe: bool,
        crashed: Vec<u32>,
    ) -> Journal {
        let me = std::process::id();
        let mut dead = table.dead(alive);
        let slots: Vec<Option<usize>> = (0..threads).map(|_| table.claim(me)).collect();
        if slots.iter().any(Option::is_none) {
            tracing::warn!(
                "the in-flight table is full: requests of {} of {threads} threads are not \
                 kept, and are lost if this worker dies before Linux 6.9",
                slots.iter().filter(|s| s.is_none()).count()
            );
        }
        if !replay {
            for (i, pid) in dead.drain(..) {
                table.free(i, pid, me);
            }
        } else if !dead.is_empty() {
            tracing::info!(
                "{} slot(s) of dead workers in the in-flight table: answering what they \
                 had taken (this kernel cannot resend it)",
                dead.len()
            );
        }
        // Popped from the back: the first slot first.
        dead.reverse();
        Journal {
            table,
            slots,
            left: Mutex::new(dead),
            safe,
            crashed,
            me,
        }
    }

    fn slot(&self, thread: usize) -> Option<usize> {
        self.slots.get(thread).copied().flatten()
    }

    fn next_left(&self) -> Option<(usize, u32)> {
        self.left.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }
}

impl fuser::Journal for Journal {
    fn receive(
        &self,
        thread: usize,
        dev: std::os::fd::BorrowedFd<'_>,
        buf: &mut [u8],
    ) -> Option<std::io::Result<usize>> {
        let s = self.slot(thread)?;
        Some(self.table.receive(s, dev, buf))
    }

    fn taken(&self, thread: usize, request: &[u8]) {
        if let Some(s) = self.slot(thread) {
            self.table.record(s, request, 0);
        }
    }

    fn answered(&self, thread: usize) {
        if let Some(s) = self.slot(thread) {
            self.table.clear(s);
        }
    }

    fn orphan(&self, thread: usize) -> Option<fuser::Orphan> {
        while let Some((i, pid)) = self.next_left() {
            let r = match self.table.read(i) {
                Left::Nothing => {
                    self.table.free(i, pid, self.me);
                    continue;
                }
                Left::Torn => {
                    tracing::warn!(
                        "worker {pid} died while keeping a request it had read: its reader \
                         waits until it is interrupted"
                    );
                    self.table.free(i, pid, self.me);
                    continue;
                }
                Left::Request(r) => r,
            };
            let op = fuser::relay::opcode(&r.bytes).unwrap_or(0);
            let tries = if self.safe { TRIES_SAFE } else { TRIES_VIRTUAL };
            // The slot counts its holders before this one; this one counts if it crashed.
            let crashes = r
                .replays
                .saturating_add(u32::from(self.crashed.contains(&pid)));
            let fail = if !r.whole {
                tracing::error!(
                    "a request (opcode {op}, {} bytes kept) left by dead worker {pid} was too \
                     long to keep: answered EIO",
                    r.bytes.len()
                );
                Some(libc::EIO)
            } else if crashes > tries {
                tracing::error!(
                    "a request (opcode {op}) left by dead worker {pid} was being answered \
                     by {crashes} workers that crashed: answered EIO"
                );
                Some(libc::EIO)
            } else {
                tracing::info!("answering a request (opcode {op}) left by dead worker {pid}");
                None
            };
            // Kept as ours before the dead worker's copy goes, so that dying now leaves
            // it for the next worker (with the crashes so far).
            let own = self.slot(thread).filter(|_| fail.is_none());
            if let Some(s) = own {
                self.table.record(s, &r.bytes, crashes);
            }
            if !self.table.free(i, pid, self.me) {
                // Another worker took it first.
                if let Some(s) = own {
                    self.table.clear(s);
                }
                continue;
            }
            return Some(fuser::Orphan {
                request: r.bytes,
                fail,
            });
        }
        None
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
