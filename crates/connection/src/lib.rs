//! The FUSE connection, apart from whoever serves it, and the hand-off between the
//! supervisor that keeps it and the worker processes that serve it.
//!
//! The supervisor opens `/dev/fuse` and mounts with it ([`open_and_mount`]); the
//! connection lives as long as any process holds that descriptor, so a worker serving
//! it can die or be replaced without the mount, and every container's bind mount of it,
//! breaking. What crosses from the supervisor to a worker is all here:
//!
//! - the worker's command line, typed ([`WorkerArgs`]): written by the supervisor, read
//!   by the worker and, from `/proc/<pid>/cmdline`, by a supervisor adopting an orphan;
//! - the descriptors it inherits by number ([`adopt_inherited_fd`]);
//! - the connection's shared state ([`Shared`]): whether INIT was answered, and the
//!   FUSE passthrough bookkeeping every worker must agree on;
//! - the daemon's counters ([`Counters`]), which outlive any worker;
//! - after a worker dies, [`notify_resend`] puts the requests it had taken back in the
//!   queue for the next one; before Linux 6.9, which cannot, the [`Inflight`] table
//!   keeps each request a worker took until it answered it, for the next one to answer.
//!
//! `fusefs` only serves: it is handed a descriptor and a [`Shared`].

pub mod args;
pub mod counters;
pub mod inflight;
mod mount;
mod shared;
mod sys;

pub use args::{ServeOptions, WorkerArgs};
pub use counters::Counters;
pub use inflight::Inflight;
pub use mount::{FSTYPE, SOURCE, notify_poll, notify_resend, open_and_mount, unmount};
pub use shared::{Backing, Reads, STATE_NEW, STATE_OFF, STATE_ON, Shared};
pub use sys::adopt_inherited_fd;
