//! `hostview` against captured host trees (`fixtures/`, see `fixtures/README.md`): what
//! it finds before any file is rendered — each tree's cgroup layout and hierarchies, a
//! container's cgroup paths, and the init (and pid namespace) every kind of reader
//! resolves to, including the readers that cannot be resolved.
//!
//! Every test opens a tree as the host's root with the `/proc`-walking init resolver
//! (the ioctl needs a real nsfs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture_kit;

use hostview::cgroup::{Backend, Controller};
use hostview::{Dir, Error, Host, InitResolver, Layout, NsId};

use fixture_kit::*;

// ------------------------------------------------------------------------- layout

#[test]
fn every_tree_opens_with_the_procfs_resolver() {
    for tree in TREES {
        let host = open(tree);
        assert_eq!(host.resolver(), InitResolver::Procfs, "{tree}");
        assert!(host.features().contains("init resolver: procfs"), "{tree}");
        assert!(
            host.features().contains("NS_GET_TGID_FROM_PIDNS=no"),
            "{tree}"
        );
    }
}

#[test]
fn layouts_are_detected() {
    let want = [
        ("v1-legacy", Layout::Legacy),
        ("v2-unified", Layout::Unified),
        ("v2-nested-max", Layout::Unified),
        ("v2-no-memory-controller", Layout::Unified),
        ("hybrid", Layout::Hybrid),
        ("swap-off", Layout::Unified),
        ("edge-malformed", Layout::Legacy),
    ];
    for (tree, layout) in want {
        assert_eq!(open(tree).layout(), layout, "{tree}");
    }
}

#[test]
fn v1_legacy_hierarchies_and_comount() {
    let host = open("v1-legacy");
    let hier = host.hierarchies();
    assert!(hier.v2.is_none());
    let names: Vec<String> = hier.v1.iter().map(|h| h.controllers.join(",")).collect();
    assert_eq!(
        names,
        [
            "name=systemd",
            "cpuset",
            "cpu,cpuacct",
            "memory",
            "blkio",
            "pids"
        ]
    );
    // cpu and cpuacct are one hierarchy.
    let cpu = hier.backend(Controller::Cpu).unwrap();
    assert_eq!(hier.backend(Controller::Cpuacct), Some(cpu));
    assert!(matches!(cpu, Backend::V1(2)));
    assert!(dir_name_ends(
        hier.backend_dir(cpu).unwrap(),
        "sys/fs/cgroup/cpu,cpuacct"
    ));
    assert!(matches!(hier.backend(Controller::Io), Some(Backend::V1(4))));
    assert!(matches!(
        hier.backend(Controller::Memory),
        Some(Backend::V1(3))
    ));
}

#[test]
fn v1_legacy_container_paths_prune_init_scope_per_hierarchy() {
    let host = open("v1-legacy");
    let hier = host.hierarchies();
    let c = host.container(2000).unwrap();
    for ctl in [
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Io,
        Controller::Pids,
    ] {
        let (dir, path) = c.paths.locate(hier, ctl).unwrap();
        assert_eq!(path, "lxc/c1", "{ctl:?}");
        assert!(
            dir_name_ends(dir, &format!("sys/fs/cgroup/{}", ctl_dir(ctl))),
            "{ctl:?}: {}",
            dir.name()
        );
    }
    assert_eq!(c.paths.unified(), None);
}

fn ctl_dir(c: Controller) -> &'static str {
    match c {
        Controller::Cpu | Controller::Cpuacct => "cpu,cpuacct",
        Controller::Io => "blkio",
        other => other.v1_name(),
    }
}

#[test]
fn hybrid_hierarchies() {
    let host = open("hybrid");
    let hier = host.hierarchies();
    let v2 = hier.v2.as_ref().unwrap();
    assert_eq!(v2.mount_point, "/sys/fs/cgroup/unified");
    // Like the machine this was modelled on: hugetlb is left to v2, nothing we read.
    assert_eq!(v2.controllers, ["hugetlb"]);
    assert_eq!(hier.v1.len(), 9);
    for ctl in [
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Io,
        Controller::Pids,
    ] {
        assert!(
            matches!(hier.backend(ctl), Some(Backend::V1(_))),
            "{ctl:?} must come from v1"
        );
    }
    // cpu and cpuacct are separate mounts here.
    assert_ne!(
        hier.backend(Controller::Cpu),
        hier.backend(Controller::Cpuacct)
    );
    let c = host.container(3000).unwrap();
    assert_eq!(c.paths.unified(), Some("system.slice/docker-abc123.scope"));
    let (dir, path) = c.paths.locate(hier, Controller::Cpuacct).unwrap();
    assert_eq!(path, "system.slice/docker-abc123.scope");
    assert!(dir_name_ends(dir, "sys/fs/cgroup/cpuacct"));
    let (dir, _) = c.paths.locate(hier, Controller::Memory).unwrap();
    assert!(dir_name_ends(dir, "sys/fs/cgroup/memory"));
}

#[test]
fn v2_unified_paths_prune_init_scope() {
    let host = open("v2-unified");
    let hier = host.hierarchies();
    assert!(hier.v1.is_empty());
    let v2 = hier.v2.as_ref().unwrap();
    assert_eq!(
        v2.controllers,
        ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"]
    );
    assert_eq!(hier.backend(Controller::Memory), Some(Backend::V2));
    let c = host.container(2000).unwrap();
    assert_eq!(c.paths.unified(), Some("system.slice/docker-abc.scope"));
    let (dir, path) = c.paths.locate(hier, Controller::Memory).unwrap();
    assert_eq!(path, "system.slice/docker-abc.scope");
    assert!(dir_name_ends(dir, "sys/fs/cgroup"));
    // The host's pid 1 in /init.scope is at the root once pruned.
    assert_eq!(host.container(1).unwrap().paths.unified(), Some("."));
}

#[test]
fn edge_mountinfo_junk_missing_mount_point_and_bind_mount() {
    // A junk line, a truncated line, a devices mount whose directory is not there and a
    // second mount of the memory hierarchy: three usable hierarchies remain.
    let host = open("edge-malformed");
    let hier = host.hierarchies();
    let names: Vec<String> = hier.v1.iter().map(|h| h.controllers.join(",")).collect();
    assert_eq!(names, ["name=systemd", "cpu,cpuacct", "memory"]);
    let memory: Vec<_> = hier
        .v1
        .iter()
        .filter(|h| h.controllers == ["memory"])
        .collect();
    assert_eq!(memory.len(), 1);
    assert_eq!(memory[0].mount_point, "/sys/fs/cgroup/memory");
}

// ------------------------------------------------------------------------- init resolution

fn resolved(host: &Host, tid: u32) -> (u32, Option<NsId>) {
    let c = host
        .container(tid)
        .unwrap_or_else(|e| panic!("container of {tid}: {e}"));
    (c.init, c.ns)
}

#[test]
fn v1_legacy_init_of_every_kind_of_reader() {
    let c1 = Some(NsId(4026532001));
    let c2 = Some(NsId(4026532101));
    let cases = [
        (2000, 2000, c1), // the init itself
        (2001, 2000, c1), // its child (PPid walk)
        (2002, 2000, c1), // a thread of the child (Tgid, then the walk)
        (2100, 2000, c1), // lxc-attach: parent outside the namespace, /proc scan
        (2110, 2000, c1), // child of the attached process: walk, then scan
        (2500, 2500, c2),
        (100, 100, None), // host readers are their own "container"
        (1, 1, None),
        (42, 42, None),
    ];
    for (tid, init, ns) in cases {
        // A fresh host each time, so no answer comes from the cache.
        assert_eq!(resolved(&open("v1-legacy"), tid), (init, ns), "tid {tid}");
    }
    // And through one host, cache included.
    let host = open("v1-legacy");
    for (tid, init, ns) in cases {
        assert_eq!(resolved(&host, tid), (init, ns), "cached, tid {tid}");
    }
}

#[test]
fn v1_legacy_resolver_directly() {
    let proc = Dir::open(&tree_root("v1-legacy").join("proc")).unwrap();
    let ns = NsId(4026532001);
    assert_eq!(NsId::of(&proc, 2100).unwrap(), ns);
    assert_eq!(NsId::of(&proc, 100).unwrap(), HOST_NS);
    for tid in [2000, 2001, 2002, 2100, 2110] {
        assert_eq!(
            InitResolver::Procfs.resolve(&proc, tid, ns).unwrap(),
            2000,
            "tid {tid}"
        );
    }
}

#[test]
fn v2_unified_init_of_every_kind_of_reader() {
    let ns = Some(NsId(4026532301));
    for (tid, init, ns) in [
        (2000, 2000, ns),
        (2001, 2000, ns),
        (2003, 2000, ns), // a thread of init itself
        (2100, 2000, ns), // docker exec: parent is the shim on the host
        (100, 100, None),
        (300, 300, None),
    ] {
        assert_eq!(resolved(&open("v2-unified"), tid), (init, ns), "tid {tid}");
    }
}

#[test]
fn v2_unified_nested_pid_namespace_is_its_own_reader() {
    // 2300 is pid 1 of a namespace nested in the container's (NSpid `2300 60 1`); its
    // readers get the cgroup of that init (the container's nginx.service), with limits
    // still walked up through the container.
    let nested = Some(NsId(4026532399));
    for tid in [2300, 2301] {
        assert_eq!(
            resolved(&open("v2-unified"), tid),
            (2300, nested),
            "tid {tid}"
        );
    }
    let host = open("v2-unified");
    let out = meminfo(&host, 2301);
    assert_eq!(kb(&out, "MemTotal"), 262_144); // docker-abc.scope's 256 MiB
    assert_eq!(kb(&out, "MemFree"), 262_144 - 176_128); // nginx.service's usage
    assert_eq!(kb(&out, "MemAvailable"), 86_016 + 18_432 + 58_368 + 4_608);
    assert_eq!(kb(&out, "SwapTotal"), 65_536);
    assert_eq!(kb(&out, "SwapFree"), 65_536 - 16_384);
    assert_ne!(out, meminfo(&host, 2000));
}

#[test]
fn other_trees_resolve_their_inits() {
    for (tree, tid, init, ns) in [
        ("v2-nested-max", 4000, 4000, 4026532401),
        ("v2-nested-max", 4101, 4100, 4026532402),
        ("v2-nested-max", 4200, 4200, 4026532403),
        ("v2-no-memory-controller", 5001, 5000, 4026532501),
        ("hybrid", 3001, 3000, 4026532701),
        ("swap-off", 6000, 6000, 4026532601),
        // The reader's own status is garbage: found by the scan.
        ("edge-malformed", 3801, 3800, 4026532809),
    ] {
        assert_eq!(
            resolved(&open(tree), tid),
            (init, Some(NsId(ns))),
            "{tree} tid {tid}"
        );
    }
}

#[test]
fn edge_unresolvable_readers_are_errors_not_panics() {
    let host = open("edge-malformed");
    // Init's /proc directory is gone and nothing else in the namespace is pid 1.
    assert!(matches!(
        host.container(3401),
        Err(Error::InitNotFound { tid: 3401 })
    ));
    // The ns link does not name a pid namespace.
    assert!(matches!(host.container(3600), Err(Error::Parse { .. })));
    assert!(matches!(host.container(0), Err(Error::NoCaller { tid: 0 })));
    let gone = host.container(99_999).unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    assert_eq!(gone.errno(), libc::ENOENT);
}
