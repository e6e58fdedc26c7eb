//! End to end: `--enable-cgroup`'s `cgroup/` tree, read from inside containers. Each
//! container sees its own cgroup as the root of every hierarchy (its limit at the top,
//! its child groups below, its processes in its own pid numbering) and nothing of a
//! neighbour's; writes of any kind are refused; without the flag there is no
//! `cgroup/`. Runs on this hybrid host (v1 hierarchies) and in the pure-v2 VM, where
//! `cgroup/` is the v2 hierarchy itself.
//!
//! Needs root, /dev/fuse and writable cgroups: fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// The memory hierarchy's directory below `cgroup/`, and its limit file.
fn memory_dir() -> (&'static str, &'static str) {
    match Layout::host().unwrap() {
        Layout::V1 => ("cgroup/memory", "memory.limit_in_bytes"),
        Layout::V2 => ("cgroup", "memory.max"),
    }
}

const MIB_256: u64 = 256 << 20;
const MIB_128: u64 = 128 << 20;

#[test]
fn a_container_sees_its_own_subtree_only() {
    let d = Daemon::start(&["--enable-cgroup"]);
    let a = Cgroup::with_memory_limit("cgv-a", MIB_256);
    let sub = a.child("inner", &[Limit::Memory(MIB_128)]);
    // On v2 a group with children holds no processes: the container's init lives in
    // `init.scope` below it, as systemd puts it, and the container is the group above.
    let init = a.child("init.scope", &[]);
    let b = Cgroup::with_memory_limit("cgv-b", MIB_128);
    let (dir, limit) = memory_dir();
    let script = format!(
        "V=\"$E2E_MNT/{dir}\"\n\
         echo '== limit'; cat \"$V/{limit}\"\n\
         echo '== inner'; cat \"$V/inner/{limit}\"\n\
         echo '== list'; ls \"$V\"\n\
         echo '== procs'; cat \"$V/init.scope/cgroup.procs\"\n\
         echo '== me'; echo $$\n\
         echo '== top'; ls \"$E2E_MNT/cgroup\"\n"
    );
    let out = run(&init, &d.mnt, &script);
    let text = out.ok();
    assert_eq!(
        script_part(text, "limit").trim(),
        MIB_256.to_string(),
        "{text}"
    );
    assert_eq!(
        script_part(text, "inner").trim(),
        MIB_128.to_string(),
        "{text}"
    );
    let list: Vec<&str> = script_part(text, "list").lines().collect();
    assert!(list.contains(&"inner"), "{text}");
    assert!(list.contains(&limit), "{text}");
    let b_name = b.rel.rsplit('/').next().unwrap();
    assert!(!list.contains(&b_name), "a neighbour's group shows: {text}");
    // Pids as the container numbers them: its init (1) and the shell that reads.
    let procs: Vec<u32> = script_part(text, "procs")
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let me: u32 = script_part(text, "me").trim().parse().unwrap();
    assert!(procs.contains(&1) && procs.contains(&me), "{text}");
    assert!(procs.iter().all(|&p| p < 100), "host pids leak: {text}");
    if Layout::host().unwrap() == Layout::V1 {
        let top: Vec<&str> = script_part(text, "top").lines().collect();
        for h in ["memory", "cpuset", "pids", "unified"] {
            assert!(
                top.iter().any(|t| t.split(',').any(|c| c == h)),
                "{h}: {text}"
            );
        }
    }

    // The neighbour sees its own limit at the same path, and no `inner`.
    let out = run(
        &b,
        &d.mnt,
        &format!("cat \"$E2E_MNT/{dir}/{limit}\"; ls \"$E2E_MNT/{dir}/inner\" 2>&1 || echo gone"),
    );
    let text = out.ok();
    assert!(text.starts_with(&MIB_128.to_string()), "{text}");
    assert!(text.contains("gone"), "{text}");
    drop((init, sub));
}

#[test]
fn writes_are_refused() {
    refused_with(&["--enable-cgroup"], libc::EROFS);
}

/// `--enable-psi-poll` mounts writable: the daemon refuses the write itself.
#[test]
fn writes_are_refused_on_a_writable_mount_too() {
    refused_with(&["--enable-cgroup", "--enable-psi-poll"], libc::EACCES);
}

fn refused_with(args: &[&str], errno: i32) {
    let d = Daemon::start(args);
    let a = Cgroup::with_memory_limit("cgv-w", MIB_256);
    let (dir, limit) = memory_dir();
    let script = format!(
        "V=\"$E2E_MNT/{dir}\"\n\
         echo 1000000 > \"$V/{limit}\" 2>/dev/null && echo WROTE\n\
         mkdir \"$V/new\" 2>/dev/null && echo MADE\n\
         echo $$ > \"$V/cgroup.procs\" 2>/dev/null && echo MOVED\n\
         python3 -c 'import os,sys\n\
try:\n    os.open(sys.argv[1], os.O_WRONLY)\n\
except OSError as e:\n    print(\"errno\", e.errno)' \"$V/{limit}\"\n\
         cat \"$V/{limit}\"\n"
    );
    let text = run(&a, &d.mnt, &script).ok().to_string();
    for w in ["WROTE", "MADE", "MOVED"] {
        assert!(!text.contains(w), "{w}: {text}");
    }
    assert!(
        text.contains(&format!("errno {errno}")),
        "a write open is not errno {errno}: {text}"
    );
    assert!(text.contains(&MIB_256.to_string()), "{text}");
    assert_eq!(a.read("memory", limit).unwrap().trim(), MIB_256.to_string());
}

#[test]
fn without_the_flag_there_is_no_cgroup_directory() {
    let d = Daemon::start(&[]);
    assert!(!d.path("cgroup").exists());
    let top: Vec<String> = std::fs::read_dir(&d.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!top.contains(&"cgroup".to_string()), "{top:?}");
}

/// A directory of 3 000 groups lists each exactly once: READDIR's chunks are cut from
/// the listing taken when the directory was opened (`dirsnap`), not from a new one
/// each (which made `ls` of a large directory quadratic).
#[test]
fn a_large_directory_lists_every_group_once() {
    let d = Daemon::start(&["--enable-cgroup"]);
    let a = Cgroup::with_memory_limit("cgv-many", MIB_256);
    let init = a.child("init.scope", &[]);
    let many: Vec<Cgroup> = (0..3000).map(|i| a.child(&format!("c{i}"), &[])).collect();
    let (dir, _) = memory_dir();
    let script = format!(
        "V=\"$E2E_MNT/{dir}\"\n\
         echo '== groups'; ls \"$V\" | grep -c '^c[0-9]*$'\n\
         echo '== twice'; ls \"$V\" | sort | uniq -d | wc -l\n"
    );
    let out = run(&init, &d.mnt, &script);
    let text = out.ok();
    assert_eq!(script_part(text, "groups").trim(), "3000", "{text}");
    assert_eq!(script_part(text, "twice").trim(), "0", "{text}");
    drop((many, init));
}

/// A pid list of the view is the kernel's own list as the reader's namespace sees it
/// (the host's `cgroup.procs`, read from inside the container), a process of a pid
/// namespace nested in the container's included, under the number the container knows
/// it by. Before Linux 6.11 `/proc` cannot tell whether a nested process's namespace
/// lies below the reader's, and it is left out.
#[test]
fn pid_lists_are_the_kernels_as_the_reader_numbers_them() {
    let d = Daemon::start(&["--enable-cgroup"]);
    let cg = Cgroup::with_memory_limit("cgv-pids", MIB_256);
    let (view, kernel) = match Layout::host().unwrap() {
        Layout::V1 => (
            "cgroup/memory/cgroup.procs".to_string(),
            format!("/sys/fs/cgroup/memory/{}/cgroup.procs", cg.rel),
        ),
        Layout::V2 => (
            "cgroup/cgroup.procs".to_string(),
            format!("/sys/fs/cgroup/{}/cgroup.procs", cg.rel),
        ),
    };
    // The lists are read with the shell's own `read`: a process forked to read one
    // would be in that list only. (`children` ends without a newline, so `read` fails
    // at its end with the pid read.)
    let script = format!(
        "unshare -p -f --kill-child sleep 1000 &\n\
         for i in $(seq 100); do\n\
           n=''; read -r n < /proc/$!/task/$!/children 2>/dev/null\n\
           [ -n \"$n\" ] && break\n\
           sleep 0.1\n\
         done\n\
         list() {{ exec 3< \"$1\"; while read -r p <&3; do echo \"$p\"; done; exec 3<&-; }}\n\
         echo '== view'; list \"$E2E_MNT/{view}\"\n\
         echo '== kernel'; list \"{kernel}\"\n\
         echo '== nested'; read -r n < /proc/$!/task/$!/children; echo $n\n"
    );
    let out = run(&cg, &d.mnt, &script);
    let text = out.ok();
    let set = |part: &str| -> std::collections::BTreeSet<u32> {
        script_part(text, part)
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect()
    };
    let (ours, mut theirs, nested) = (set("view"), set("kernel"), set("nested"));
    // A v2 list shows a process the reader cannot see (here the runtime's `unshare`,
    // in the host's namespace) as 0; the view leaves it out.
    theirs.remove(&0);
    assert!(theirs.contains(&1) && nested.len() == 1, "{text}");
    assert!(theirs.is_superset(&nested), "{text}");
    let want = if kernel_at_least(6, 11) {
        theirs
    } else {
        &theirs - &nested
    };
    assert_eq!(ours, want, "{text}");
}
