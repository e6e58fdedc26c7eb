//! lxcfs-rs patch: a record of the requests each event-loop thread has taken and not
//! yet answered, kept by the file system, and the replay of those a dead server left.
//!
//! Before Linux 6.9 a request that a server process read from `/dev/fuse` and never
//! answered (it died) stays in the kernel's processing list until its reader is
//! interrupted: no other server of the connection can read it again. It can still be
//! answered by anyone holding the connection, with its `unique`. So a [`Journal`] is told
//! each request a thread read before it is dispatched and when it was answered; a later
//! server of the same connection asks it, before its threads read the device, for the
//! requests a dead one left ([`Journal::orphan`]) and dispatches them as if it had just
//! read them. A request the dead server had answered but not yet marked answered gets a
//! second answer, which the kernel refuses (`ENOENT`, logged at debug level).

use std::fmt::Debug;
use std::io;
use std::os::fd::BorrowedFd;

/// Where a session's event loops record what they take (see the module doc).
pub trait Journal: Debug + Send + Sync {
    /// Read the next request for event-loop thread `thread` (0-based) from `dev` into
    /// `buf` (whole, `buf[..n]`), keeping it from the moment the read returns; `None`:
    /// the thread has nowhere to keep it, fuser reads as usual and calls
    /// [`taken`](Self::taken). Errors are the read's.
    fn receive(
        &self,
        thread: usize,
        dev: BorrowedFd<'_>,
        buf: &mut [u8],
    ) -> Option<io::Result<usize>>;
    /// Thread `thread` took `request` (read by fuser itself: see
    /// [`receive`](Self::receive)) and is about to dispatch it.
    fn taken(&self, thread: usize, request: &[u8]);
    /// Thread `thread` is done with the request it took (answered, or one that has no
    /// answer).
    fn answered(&self, thread: usize);
    /// The next request a dead server of the connection left unanswered, for thread
    /// `thread` to dispatch before it reads the device; the journal records it as that
    /// thread's (it is not told [`taken`](Self::taken) for it). `None` when there is none
    /// left.
    fn orphan(&self, thread: usize) -> Option<Orphan>;
}

/// A request to answer again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// The request's bytes as the kernel sent them (at least its header).
    pub request: Vec<u8>,
    /// `Some(errno)`: answer it with this error rather than dispatching it (it is not
    /// whole, or answering it already killed a server).
    pub fail: Option<i32>,
}

/// FORGET, INTERRUPT and BATCH_FORGET: requests the kernel expects no answer to.
pub(crate) fn answerless(opcode: u32) -> bool {
    matches!(opcode, 2 | 36 | 42)
}

/// The `unique` of the request in `buf` (the third word of `fuse_in_header`).
pub(crate) fn unique(buf: &[u8]) -> Option<u64> {
    let b: [u8; 8] = buf.get(8..16)?.try_into().ok()?;
    Some(u64::from_ne_bytes(b))
}
