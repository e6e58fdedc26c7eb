//! End to end, side by side with the reference: Debian's LXCFS mounted next to lxcfs-rs,
//! both read from inside the same container, must agree where the reference is right.
//!
//! Needs root, /dev/fuse, writable cgroups (v1, hybrid or v2) and `lxcfs` (the Debian package):
//! fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn meminfo_agrees_with_lxcfs_in_a_256mib_container() {
    let d = Daemon::start(&[]);
    let l = Lxcfs::start();
    let cg = Cgroup::with_memory_limit("oracle", 256 * MIB);
    let out = run_env(
        &cg,
        &d.mnt,
        "cat /proc/meminfo; echo ---; cat \"$LXCFS_MNT/proc/meminfo\"; echo ---\n\
         cat /proc/swaps; echo ---; cat \"$LXCFS_MNT/proc/swaps\"",
        &[
            ("LXCFS_MNT", &l.mnt.to_string_lossy()),
            ("E2E_KEEP", &l.mnt.to_string_lossy()),
        ],
    );
    let s = sections(out.ok());
    let (ours, theirs) = (&s[0], &s[1]);
    assert_eq!(
        meminfo_value(theirs, "MemTotal"),
        256 * 1024,
        "lxcfs:\n{theirs}"
    );
    assert_eq!(
        meminfo_value(ours, "MemTotal"),
        meminfo_value(theirs, "MemTotal"),
        "MemTotal: lxcfs-rs vs lxcfs"
    );
    for k in ["SwapTotal", "SwapFree", "Buffers", "SwapCached"] {
        assert_eq!(
            meminfo_value(ours, k),
            meminfo_value(theirs, k),
            "{k}: lxcfs-rs vs lxcfs"
        );
    }
    // Usage moves between the two reads: bounds, not equality.
    for k in ["MemFree", "MemAvailable"] {
        let (a, b) = (meminfo_value(ours, k), meminfo_value(theirs, k));
        assert!(
            a.abs_diff(b) < 16 * 1024,
            "{k}: lxcfs-rs {a} kB, lxcfs {b} kB"
        );
    }
    assert_eq!(
        meminfo_labels(ours),
        meminfo_labels(theirs),
        "meminfo labels"
    );
    assert_eq!(
        s[2].lines().count(),
        s[3].lines().count(),
        "/proc/swaps:\nlxcfs-rs:\n{}lxcfs:\n{}",
        s[2],
        s[3]
    );
}
