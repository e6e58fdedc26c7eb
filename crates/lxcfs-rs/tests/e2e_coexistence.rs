//! End to end: LXCFS and lxcfs-rs both default to /var/lib/lxcfs. While LXCFS serves a
//! mountpoint, lxcfs-rs refuses it with one line saying how to switch (the packaged
//! unit then fails instead of hiding LXCFS's mount), and `check` names LXCFS and its
//! version.
//!
//! Needs root, /dev/fuse and Debian's `lxcfs` (installed by .ci/run as the oracle):
//! fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;

#[test]
fn lxcfs_rs_refuses_a_mountpoint_lxcfs_serves_and_check_names_lxcfs() {
    let l = Lxcfs::start();
    let mnt = l.mnt.clone();
    let dir = tempfile::tempdir().unwrap();
    let out = run_deadline(
        Command::new(lxcfs_rs())
            .arg("-p")
            .arg(dir.path().join("pid"))
            .arg(&mnt)
            .env_remove("RUST_LOG"),
        DEADLINE,
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].contains("is served by LXCFS")
            && lines[0].contains("systemctl disable --now lxcfs"),
        "{}",
        lines[0]
    );
    // LXCFS still serves, alone.
    assert_eq!(fuse_mounts_at(&mnt).len(), 1);
    assert!(
        std::fs::read_to_string(mnt.join("proc/meminfo"))
            .unwrap()
            .starts_with("MemTotal:")
    );

    let out = run_deadline(
        Command::new(lxcfs_rs()).args(["check", "--json"]).arg(&mnt),
        DEADLINE,
    );
    let r: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{r:#}");
    let m = &r["mount"];
    assert_eq!(m["state"], "lxcfs", "{m:#}");
    assert_eq!(m["daemon"]["pid"], l.pid());
    // What the running binary says: Debian's lxcfs prints its version quoted, on stderr.
    let v = run_deadline(
        Command::new(which("lxcfs").unwrap()).arg("--version"),
        DEADLINE,
    );
    let want = v.stderr.trim().trim_matches('"');
    assert!(
        !want.is_empty(),
        "lxcfs --version printed nothing on stderr"
    );
    assert_eq!(m["daemon"]["version"], want, "{m:#}");
}
