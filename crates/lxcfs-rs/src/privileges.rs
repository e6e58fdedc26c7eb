//! The serving worker keeps only what serving needs.
//!
//! A worker runs as root with every capability until its connection is set up (the
//! first worker registers the FUSE passthrough backing files, which needs
//! `CAP_SYS_ADMIN`). Then, before it starts its serving threads (capabilities belong to
//! a thread; new threads inherit the creator's), it keeps only (its log writer, started
//! earlier, drops to the same on itself):
//!
//! - `CAP_SYS_PTRACE`: a reader's pid namespace (`/proc/<tid>/ns/pid`) and its init's
//!   `/proc/<pid>/` files are opened under ptrace access rules; readers in containers
//!   run as other users (user-namespaced containers, non-root processes).
//! - `CAP_DAC_READ_SEARCH`: cgroup directories and files are read wherever a runtime
//!   put them, including subtrees delegated to other users with restrictive modes.
//!
//! It also sets `no_new_privs` and empties the bounding set of everything else, so that
//! nothing it might execute gains more. Everything else a worker does (read files it
//! opened, answer on the FUSE descriptor, query taskstats over netlink) needs no
//! capability. The supervisor keeps its own: it mounts, unmounts and adopts workers.

use anyhow::{Context, Result};
use rustix::thread::{CapabilitySet, CapabilitySets};

/// What a serving worker keeps.
pub const KEPT: CapabilitySet = CapabilitySet::SYS_PTRACE.union(CapabilitySet::DAC_READ_SEARCH);

/// Drop to [`KEPT`] for this thread and every thread it starts from now on.
pub fn drop_to_serving() -> Result<()> {
    drop_to_serving_with(CapabilitySet::empty())
}

/// [`drop_to_serving`], keeping `extra` as well.
pub fn drop_to_serving_with(extra: CapabilitySet) -> Result<()> {
    let kept = KEPT.union(extra);
    for cap in CapabilitySet::all().difference(kept).iter() {
        // Capabilities this kernel does not know are no error.
        match rustix::thread::remove_capability_from_bounding_set(cap) {
            Ok(()) | Err(rustix::io::Errno::INVAL) => {}
            Err(e) => return Err(e).context("cannot shrink the capability bounding set"),
        }
    }
    let now = rustix::thread::capabilities(None).context("cannot read our capabilities")?;
    let keep = now.permitted.intersection(kept);
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: keep,
            permitted: keep,
            inheritable: CapabilitySet::empty(),
        },
    )
    .context("cannot drop capabilities")?;
    rustix::thread::set_no_new_privs(true).context("cannot set no_new_privs")?;
    Ok(())
}

/// The capabilities this thread has, by name, for the log.
pub fn describe() -> String {
    match rustix::thread::capabilities(None) {
        Ok(c) if c.effective.is_empty() => "none".into(),
        Ok(c) => format!("{:?}", c.effective)
            .trim_start_matches("CapabilitySet(")
            .trim_end_matches(')')
            .to_string(),
        Err(e) => format!("unknown ({e})"),
    }
}
