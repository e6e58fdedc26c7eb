//! `Host::explain` against captured host trees: it must say "the container's own" exactly
//! where a reader gets a rendering of its cgroups, and name the reason where the host's
//! file stands in, as `lxcfs-rs check --pid` reports it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture_kit;

use hostview::{Source, VirtualFile};

use fixture_kit::*;

fn host_reason(s: Source) -> String {
    match s {
        Source::Host(why) => why,
        Source::Container => panic!("expected the host's file, got the container's"),
    }
}

#[test]
fn a_v1_container_with_limits_gets_its_own_memory_and_cpu_files() {
    let host = open("v1-legacy");
    assert_eq!(host.explain(VirtualFile::Meminfo, 2000), Source::Container);
    assert_eq!(host.explain(VirtualFile::Swaps, 2000), Source::Container);
    // cgroup v1 keeps no pressure: there is no cgroup2 hierarchy in this tree.
    let why = host_reason(host.explain(VirtualFile::PressureCpu, 2000));
    assert!(why.contains("no cgroup2 hierarchy"), "{why}");
}

#[test]
fn a_reader_at_the_root_gets_the_host_files_and_is_told_why() {
    let host = open("v1-legacy");
    let why = host_reason(host.explain(VirtualFile::Meminfo, 1));
    assert!(why.contains("memory cgroup is the root"), "{why}");
    let why = host_reason(host.explain(VirtualFile::Cpuinfo, 1));
    assert!(why.contains("CPU cgroups are the roots"), "{why}");
    // A host reader in a limited cgroup: its own memory, but uptime stays the host's.
    let host = open("v2-unified");
    assert_eq!(host.explain(VirtualFile::Meminfo, 300), Source::Container);
    let why = host_reason(host.explain(VirtualFile::Uptime, 300));
    assert!(why.contains("host's pid namespace"), "{why}");
}

#[test]
fn no_memory_controller_means_the_hosts_meminfo() {
    let host = open("v2-no-memory-controller");
    let why = host_reason(host.explain(VirtualFile::Meminfo, 5000));
    assert!(why.contains("no memory controller"), "{why}");
    // What is served agrees: the host's meminfo byte for byte.
    assert_eq!(
        render(&host, VirtualFile::Meminfo, 5000),
        host_text("v2-no-memory-controller", "proc/meminfo")
    );
}

#[test]
fn an_unresolvable_reader_is_explained_by_the_error() {
    let host = open("v1-legacy");
    let why = host_reason(host.explain(VirtualFile::Meminfo, 999_999));
    assert!(
        why.starts_with("the container's data cannot be read"),
        "{why}"
    );
}

#[test]
fn the_kill_switch_is_the_reason_for_everyone() {
    let host = open("v1-legacy");
    host.set_serve_host_files(true);
    let why = host_reason(host.explain(VirtualFile::Meminfo, 2000));
    assert!(why.contains("SIGUSR2"), "{why}");
}
