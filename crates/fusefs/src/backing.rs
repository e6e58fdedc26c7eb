//! The only module of this crate with `unsafe`: answering an OPEN with a backing id
//! that fuser did not create in this process.
//!
//! Upstream fuser sends a backing id only from a [`BackingId`](fuser::BackingId), whose
//! `Drop` closes the id (`FUSE_DEV_IOC_BACKING_CLOSE`). Ours are registered once per
//! connection, by the worker that answered INIT (`BackingId::create_raw`, see the
//! `passthrough` module), and shared by every later worker: no worker may ever close
//! one, since a later worker, or an open a dead worker answered, still relies on it.
#![allow(unsafe_code)]

use std::mem::ManuallyDrop;

use fuser::{FileHandle, FopenFlags, ReplyOpen};

/// Answer an OPEN with `FOPEN_PASSTHROUGH` (added to `flags`) and backing id `id`,
/// which must come from [`Shared::id`](connection::Shared::id). The id stays open: it
/// is never closed here, on success or on a panic.
pub fn reply_passthrough(reply: ReplyOpen, fh: FileHandle, flags: FopenFlags, id: u32) {
    // SAFETY: `wrap_backing` requires that `id` is open, belongs to this FUSE session,
    // and is not closed while the returned `BackingId` lives. `id` comes from
    // `Shared::id`, which gives only ids that the worker that answered this
    // connection's INIT registered with `FUSE_DEV_IOC_BACKING_OPEN` on its descriptor of
    // the connection (`BackingId::create_raw`); every worker serves that same
    // connection, and ids belong to the connection, not to the process that registered
    // them. Nothing ever closes them: no lxcfs-rs code issues
    // `FUSE_DEV_IOC_BACKING_CLOSE`, and the kernel frees them only with the connection,
    // which outlives this request. The one close the contract guards against, the
    // wrapper's own `Drop`, never runs: the wrapper is `ManuallyDrop` (so not on an
    // unwind either) and is given back with `into_raw`, which forgets it.
    let backing = ManuallyDrop::new(unsafe { reply.wrap_backing(id) });
    reply.opened_passthrough(fh, flags, &backing);
    // Frees the wrapper's weak reference to the channel without closing the id.
    let _ = ManuallyDrop::into_inner(backing).into_raw();
}
