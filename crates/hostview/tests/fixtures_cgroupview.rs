//! The `cgroup/` tree (`--enable-cgroup`) against captured hosts: which hierarchies it
//! has, that a container's tree is rooted at its own cgroup, and pid lists in the
//! reader's numbering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture_kit;

use hostview::cgroupview::hierarchy_names;

use fixture_kit::*;

fn names(entries: Vec<hostview::DirEntry>) -> Vec<String> {
    let mut v: Vec<String> = entries.into_iter().map(|e| e.name).collect();
    v.sort();
    v
}

#[test]
fn hybrid_has_a_directory_per_hierarchy_rooted_at_the_container() {
    let host = open("hybrid");
    let mut want = vec![
        "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd",
        "unified",
    ];
    want.sort();
    let mut got = hierarchy_names(host.hierarchies());
    got.sort();
    assert_eq!(got, want);
    // 3001 is a process of the container (init 3000).
    assert_eq!(names(host.cgroup_entries(3001, "").unwrap()), want);
    assert_eq!(
        host.cgroup_host_path(3001, "memory/memory.limit_in_bytes")
            .unwrap(),
        "sys/fs/cgroup/memory/system.slice/docker-abc123.scope/memory.limit_in_bytes"
    );
    let mem = names(host.cgroup_entries(3001, "memory").unwrap());
    assert!(
        mem.contains(&"memory.limit_in_bytes".to_string()),
        "{mem:?}"
    );
    assert_eq!(
        host.cgroup_host_path(3001, "unified").unwrap(),
        "sys/fs/cgroup/unified/system.slice/docker-abc123.scope"
    );
    // A host reader sees its own cgroup (the daemon's, 42) as the root.
    assert!(
        host.cgroup_host_path(42, "memory")
            .unwrap()
            .starts_with("sys/fs/cgroup/memory")
    );
    // Unknown hierarchies and climbing out are refused.
    for refused in ["nope/x", "memory/../x"] {
        let e = host.cgroup_host_path(3001, refused).unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT, "{refused}: {e}");
    }
}

#[test]
fn pid_lists_are_in_the_readers_numbering() {
    let host = open("hybrid");
    let rel = host.cgroup_host_path(3001, "memory/cgroup.procs").unwrap();
    let mut out = Vec::new();
    host.cgroup_pids(3001, &rel, &mut out).unwrap();
    assert_eq!(String::from_utf8(out.clone()).unwrap(), "1\n18\n");
    // The host's reader sees host pids.
    host.cgroup_pids(42, &rel, &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "3000\n3001\n");
}

#[test]
fn pure_v2_is_the_v2_hierarchy_itself() {
    let host = open("v2-unified");
    assert!(hierarchy_names(host.hierarchies()).is_empty());
    let top = names(host.cgroup_entries(2000, "").unwrap());
    assert!(top.contains(&"memory.max".to_string()), "{top:?}");
    assert!(top.contains(&"init.scope".to_string()), "{top:?}");
    let p = host.cgroup_host_path(2000, "memory.max").unwrap();
    assert_eq!(p, "sys/fs/cgroup/system.slice/docker-abc.scope/memory.max");
}
