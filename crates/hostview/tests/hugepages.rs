//! meminfo's huge page lines bounded by the container's hugetlb cgroup, on copies of the
//! `v1-legacy` and `v2-unified` trees (see `fixtures/README.md`) given a host with huge
//! pages and hugetlb files written in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cpu_kit;

use std::path::Path;

use hostview::VirtualFile;

use cpu_kit::{copy_tree, fixture, open, render, write};

const MIB: u64 = 1024 * 1024;
const V1_C1: u32 = 2000; // lxc/c1
const V2_CTR: u32 = 2000; // system.slice/docker-abc.scope
const V2_HOST_READER: u32 = 100; // the root cgroup

/// The tree's meminfo with its huge page lines replaced by a host that has 512 pages of
/// 2 MiB (500 free, 6 reserved, 2 surplus) and one 1 GiB page.
fn give_host_huge_pages(root: &Path) {
    let path = root.join("proc/meminfo");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let line = match line.split_once(':').map(|(l, _)| l) {
            Some("HugePages_Total") => "HugePages_Total:     512",
            Some("HugePages_Free") => "HugePages_Free:      500",
            Some("HugePages_Rsvd") => "HugePages_Rsvd:        6",
            Some("HugePages_Surp") => "HugePages_Surp:        2",
            Some("Hugepagesize") => "Hugepagesize:       2048 kB",
            Some("Hugetlb") => "Hugetlb:         2097152 kB",
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    assert!(
        out.contains("Hugetlb:"),
        "the tree's meminfo has the huge page lines"
    );
    std::fs::write(path, out).unwrap();
}

fn huge_lines(meminfo: &str) -> Vec<&str> {
    meminfo
        .lines()
        .filter(|l| l.starts_with("HugePages_") || l.starts_with("Huge"))
        .collect()
}

fn bytes(n: u64) -> String {
    format!("{n}\n")
}

#[test]
fn v2_limit_bounds_the_counts_and_no_limit_keeps_the_hosts() {
    let tmp = copy_tree(&fixture("v2-unified"));
    let root = tmp.path();
    give_host_huge_pages(root);
    let ctr = "sys/fs/cgroup/system.slice/docker-abc.scope";
    write(root, &format!("{ctr}/hugetlb.2MB.max"), &bytes(256 * MIB));
    write(
        root,
        &format!("{ctr}/hugetlb.2MB.current"),
        &bytes(20 * MIB),
    );
    write(
        root,
        &format!("{ctr}/hugetlb.2MB.rsvd.current"),
        &bytes(28 * MIB),
    );
    write(root, "sys/fs/cgroup/system.slice/hugetlb.2MB.max", "max\n");
    let out = render(&open(root, false), VirtualFile::Meminfo, V2_CTR);
    assert_eq!(
        huge_lines(&out),
        [
            "HugePages_Total:     128",
            "HugePages_Free:      118",
            "HugePages_Rsvd:        4",
            "HugePages_Surp:        2",
            "Hugepagesize:       2048 kB",
            // The 1 GiB page stays; 128 of the 512 default pages.
            "Hugetlb:         1310720 kB",
        ]
    );

    // A parent's tighter limit wins.
    write(
        root,
        "sys/fs/cgroup/system.slice/hugetlb.2MB.max",
        &bytes(16 * MIB),
    );
    let out = render(&open(root, false), VirtualFile::Meminfo, V2_CTR);
    assert_eq!(
        huge_lines(&out)[..2],
        ["HugePages_Total:       8", "HugePages_Free:        0"]
    );

    // No limit anywhere: the host's lines.
    write(root, "sys/fs/cgroup/system.slice/hugetlb.2MB.max", "max\n");
    write(root, &format!("{ctr}/hugetlb.2MB.max"), "max\n");
    let out = render(&open(root, false), VirtualFile::Meminfo, V2_CTR);
    let host = std::fs::read_to_string(root.join("proc/meminfo")).unwrap();
    assert_eq!(huge_lines(&out), huge_lines(&host));
    // A host reader at the root is not bounded.
    let out = render(&open(root, false), VirtualFile::Meminfo, V2_HOST_READER);
    assert_eq!(out, host);
}

#[test]
fn v2_kubernetes_zero_limit_shows_no_huge_pages() {
    let tmp = copy_tree(&fixture("v2-unified"));
    let root = tmp.path();
    give_host_huge_pages(root);
    let ctr = "sys/fs/cgroup/system.slice/docker-abc.scope";
    write(root, &format!("{ctr}/hugetlb.2MB.max"), "0\n");
    write(root, &format!("{ctr}/hugetlb.2MB.current"), "0\n");
    let out = render(&open(root, false), VirtualFile::Meminfo, V2_CTR);
    assert_eq!(
        huge_lines(&out)[..4],
        [
            "HugePages_Total:       0",
            "HugePages_Free:        0",
            "HugePages_Rsvd:        0",
            "HugePages_Surp:        0",
        ]
    );
    // Swaps do not change with huge pages.
    let swaps = render(&open(root, false), VirtualFile::Swaps, V2_CTR);
    assert!(swaps.starts_with("Filename"));
}

#[test]
fn v2_malformed_usage_serves_the_hosts_meminfo() {
    let tmp = copy_tree(&fixture("v2-unified"));
    let root = tmp.path();
    give_host_huge_pages(root);
    let ctr = "sys/fs/cgroup/system.slice/docker-abc.scope";
    write(root, &format!("{ctr}/hugetlb.2MB.max"), &bytes(256 * MIB));
    write(root, &format!("{ctr}/hugetlb.2MB.current"), "lots\n");
    let out = render(&open(root, false), VirtualFile::Meminfo, V2_CTR);
    let host = std::fs::read_to_string(root.join("proc/meminfo")).unwrap();
    assert_eq!(out, host);
}

#[test]
fn v1_hierarchy_limit_bounds_the_counts() {
    let tmp = copy_tree(&fixture("v1-legacy"));
    let root = tmp.path();
    give_host_huge_pages(root);
    // Mount a hugetlb hierarchy and put c1's init in it.
    let mountinfo = root.join("proc/42/mountinfo");
    let mut text = std::fs::read_to_string(&mountinfo).unwrap();
    text.push_str(
        "36 28 0:33 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,hugetlb\n",
    );
    std::fs::write(&mountinfo, text).unwrap();
    let cg = root.join("proc/2000/cgroup");
    let text = std::fs::read_to_string(&cg).unwrap();
    std::fs::write(&cg, format!("7:hugetlb:/lxc/c1\n{text}")).unwrap();
    let h = "sys/fs/cgroup/hugetlb";
    std::fs::create_dir_all(root.join(h).join("lxc/c1")).unwrap();
    write(root, &format!("{h}/cgroup.procs"), "1\n");
    write(
        root,
        &format!("{h}/hugetlb.2MB.limit_in_bytes"),
        "9223372036854771712\n",
    );
    write(
        root,
        &format!("{h}/lxc/hugetlb.2MB.limit_in_bytes"),
        &bytes(64 * MIB),
    );
    write(
        root,
        &format!("{h}/lxc/c1/hugetlb.2MB.limit_in_bytes"),
        &bytes(128 * MIB),
    );
    write(
        root,
        &format!("{h}/lxc/c1/hugetlb.2MB.usage_in_bytes"),
        &bytes(4 * MIB),
    );
    let out = render(&open(root, false), VirtualFile::Meminfo, V1_C1);
    assert_eq!(
        huge_lines(&out),
        [
            "HugePages_Total:      32",
            "HugePages_Free:       30",
            // No reservation counter (kernels before 5.7): the host's, bounded by free.
            "HugePages_Rsvd:        6",
            "HugePages_Surp:        2",
            "Hugepagesize:       2048 kB",
            "Hugetlb:         1114112 kB",
        ]
    );
}
