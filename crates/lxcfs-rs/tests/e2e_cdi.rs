//! End to end: `lxcfs-rs cdi` against a live mount binds exactly the files it serves,
//! `--write` writes what it prints, and a directory nothing serves is refused.
//! (e2e_runtime_runc and e2e_runtime_podman run containers with the spec.)
//!
//! Needs root and /dev/fuse: fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;
use testkit::runtime::CdiSpec;

/// Every file under `dir`, relative to `base`.
fn files_under(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            files_under(base, &e.path(), out);
        } else {
            out.insert(e.path().strip_prefix(base).unwrap().display().to_string());
        }
    }
}

#[test]
fn the_full_device_binds_every_file_the_mount_serves_and_the_default_the_runc_safe_ones() {
    let d = Daemon::start(&[]);
    let mnt = d.mnt.display().to_string();
    let spec = CdiSpec::of(&d.mnt);
    assert_eq!(spec.kind(), "lxcfs-rs.io/proc");

    // What the mount serves: every file under proc/, and the CPU directory as a whole.
    let mut served = BTreeSet::new();
    files_under(&d.mnt, &d.mnt.join("proc"), &mut served);
    served.insert("sys/devices/system/cpu".to_string());
    let host_psi = Path::new("/proc/pressure/cpu").exists();
    assert_eq!(
        served.iter().any(|f| f.starts_with("proc/pressure/")),
        host_psi,
        "the mount serves pressure files exactly when the host has PSI: {served:?}"
    );

    let all = spec.device("all");
    let bound: BTreeSet<String> = all
        .iter()
        .map(|m| {
            let rel = m
                .host_path
                .strip_prefix(&format!("{mnt}/"))
                .unwrap_or_else(|| panic!("{} is not under the mount {mnt}", m.host_path));
            assert_eq!(
                m.container_path,
                format!("/{rel}"),
                "binds over its own path"
            );
            assert!(Path::new(&m.host_path).exists(), "{}", m.host_path);
            assert_eq!(m.options, ["bind", "ro"]);
            rel.to_string()
        })
        .collect();
    assert_eq!(bound, served, "{}", spec.text);

    let default: BTreeSet<String> = spec
        .device("default")
        .iter()
        .map(|m| m.container_path.clone())
        .collect();
    let expected: BTreeSet<String> = [
        "cpuinfo",
        "diskstats",
        "meminfo",
        "stat",
        "swaps",
        "uptime",
        "loadavg",
    ]
    .iter()
    .map(|f| format!("/proc/{f}"))
    .chain(["/sys/devices/system/cpu".to_string()])
    .collect();
    assert_eq!(default, expected, "{}", spec.text);
}

#[test]
fn write_puts_what_cdi_prints_into_the_directory() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let cdi = dir.path().join("cdi");
    let out = run_deadline(
        Command::new(lxcfs_rs())
            .args(["cdi", "--write", "--dir"])
            .arg(&cdi)
            .arg(&d.mnt),
        DEADLINE,
    );
    assert!(out.ok().starts_with("wrote "), "{}", out.stdout);
    let path = cdi.join("lxcfs-rs.io-proc.json");
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(written, CdiSpec::of(&d.mnt).text);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let names: Vec<_> = std::fs::read_dir(&cdi)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["lxcfs-rs.io-proc.json"], "no temporary left");
}

#[test]
fn a_directory_nothing_serves_gets_no_spec() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_deadline(
        Command::new(lxcfs_rs())
            .args(["cdi", "--write", "--dir"])
            .arg(dir.path().join("cdi"))
            .arg(dir.path()),
        DEADLINE,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("is not served by lxcfs-rs: not mounted"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("cdi").exists(), "wrote a spec anyway");
}
