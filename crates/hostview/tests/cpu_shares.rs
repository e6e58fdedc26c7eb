//! `--enable-cpu-shares`: the CPU count also bounded by ⌈shares / 1024⌉ of the
//! container's cgroup (v2: `cpu.weight` mapped back to shares), on copies of the `cpu-v1`
//! and `cpu-v2` fixture trees (see `cpu_v1.rs` and `cpu_v2_hybrid_edge.rs` for them)
//! with shares written in. Every CPU file follows from the same count.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cpu_kit;

use std::path::Path;

use hostview::{Host, Options, ResolverKind, VirtualFile};

use cpu_kit::*;

const V1_C1: u32 = 3001; // cpuset 0-3,8,10-11, under /lxc's 1.5 CPUs
const V1_C2: u32 = 3100; // cpuset 10-11, 0.5 CPU
const V1_CPU: &str = "sys/fs/cgroup/cpu,cpuacct/lxc";
const V2_READER: u32 = 4001; // init 4000 in ctr/init.scope; ctr has cpuset 2-5
const V2_CTR: &str = "sys/fs/cgroup/kubepods/pod1/ctr";

fn open_shares(root: &Path, cfs: bool) -> Host {
    Host::open(
        root,
        Options {
            resolver: ResolverKind::Procfs,
            cfs,
            cpu_shares: true,
            ..Options::default()
        },
    )
    .unwrap()
}

#[test]
fn v1_shares_bound_the_count_and_renumber() {
    let tmp = copy_tree(&fixture("cpu-v1"));
    let root = tmp.path();
    // The parent asks for more than any container: the container's own shares count.
    write(root, &format!("{V1_CPU}/cpu.shares"), "8192\n");
    for (shares, want) in [
        ("2\n", &[0u32][..]),
        ("512\n", &[0]),
        // The default, 1024, is one CPU: with the flag on, "no request" reads as one.
        ("1024\n", &[0]),
        ("1025\n", &[0, 1]),
        ("2048\n", &[0, 1]),
    ] {
        write(root, &format!("{V1_CPU}/c1/cpu.shares"), shares);
        let host = open_shares(root, false);
        assert_one_view(&host, V1_C1, want);
        assert_eq!(
            render(&host, VirtualFile::CpuOnline, V1_C1),
            format!("0-{}\n", want.len() - 1).replace("0-0", "0")
        );
    }
    // More shares than CPUs: the cpuset, with host ids as without the flag.
    write(root, &format!("{V1_CPU}/c1/cpu.shares"), "262144\n");
    assert_one_view(&open_shares(root, false), V1_C1, &[0, 1, 2, 3, 8, 10, 11]);
    // Without the flag, shares change nothing.
    write(root, &format!("{V1_CPU}/c1/cpu.shares"), "512\n");
    assert_one_view(&open(root, false), V1_C1, &[0, 1, 2, 3, 8, 10, 11]);
}

#[test]
fn v1_shares_and_quota_the_tighter_wins() {
    let tmp = copy_tree(&fixture("cpu-v1"));
    let root = tmp.path();
    write(root, &format!("{V1_CPU}/cpu.shares"), "8192\n");
    write(root, &format!("{V1_CPU}/c2/cpu.shares"), "4096\n");
    // 4 CPUs of shares, 2 of cpuset, 0.5 of quota without --enable-cfs: the cpuset.
    assert_one_view(&open_shares(root, false), V1_C2, &[10, 11]);
    // With --enable-cfs the quota's one CPU.
    assert_one_view(&open_shares(root, true), V1_C2, &[0]);
    // Shares below the cpuset: one CPU, renumbered.
    write(root, &format!("{V1_CPU}/c2/cpu.shares"), "1024\n");
    assert_one_view(&open_shares(root, false), V1_C2, &[0]);
}

#[test]
fn v2_weights_map_back_to_the_requested_cpus() {
    let tmp = copy_tree(&fixture("cpu-v2"));
    let root = tmp.path();
    // What runtimes write for a request of 2 CPUs (2048 shares), the pod's sum above it,
    // and systemd's default weight on the container's init.scope below it.
    write(root, &format!("{V2_CTR}/cpu.weight"), "79\n");
    write(root, "sys/fs/cgroup/kubepods/pod1/cpu.weight", "157\n");
    write(root, &format!("{V2_CTR}/init.scope/cpu.weight"), "100\n");
    assert_one_view(&open_shares(root, false), V2_READER, &[0, 1]);
    // 1 CPU (1024 shares: weight 39).
    write(root, &format!("{V2_CTR}/cpu.weight"), "39\n");
    assert_one_view(&open_shares(root, false), V2_READER, &[0]);
    // No weight anywhere: no bound.
    for f in [
        format!("{V2_CTR}/cpu.weight"),
        "sys/fs/cgroup/kubepods/pod1/cpu.weight".to_string(),
        format!("{V2_CTR}/init.scope/cpu.weight"),
    ] {
        std::fs::remove_file(root.join(f)).unwrap();
    }
    assert_one_view(&open_shares(root, false), V2_READER, &[2, 3, 4, 5]);
}

#[test]
fn a_malformed_weight_serves_the_hosts_cpu_files() {
    let tmp = copy_tree(&fixture("cpu-v2"));
    let root = tmp.path();
    write(root, &format!("{V2_CTR}/cpu.weight"), "lots\n");
    let host = open_shares(root, false);
    assert_eq!(
        render(&host, VirtualFile::CpuOnline, V2_READER),
        host_file(root, VirtualFile::CpuOnline)
    );
}
