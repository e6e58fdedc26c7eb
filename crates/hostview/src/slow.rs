//! Telling the server that a request is about to do real work.
//!
//! The FUSE server lets one thread at a time read requests and serve the quick ones
//! itself (see the `relay` patch of the vendored fuser). Before a rendering, a
//! namespace resolution or a CPU view is computed from the host's files — tens of
//! microseconds, more on a big host — that thread must let another take over reading,
//! or every other container's request would queue behind it. The server installs the
//! hook once; without one this is a no-op (tests, tools).

use std::sync::OnceLock;

static HOOK: OnceLock<fn()> = OnceLock::new();

/// Install `f`, called before each piece of work that reads the host's files. The
/// first call wins.
pub fn set_slow_work_hook(f: fn()) {
    let _ = HOOK.set(f);
}

pub(crate) fn slow_work() {
    if let Some(f) = HOOK.get() {
        f();
    }
}
