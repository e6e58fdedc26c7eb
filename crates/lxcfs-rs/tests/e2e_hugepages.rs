//! End to end: meminfo's huge page lines bounded by the container's hugetlb cgroup. The
//! host is given a few 2 MiB huge pages for the test (restored after); a container with
//! a hugetlb limit of two pages sees two, and one fewer free once it faults one in.
//!
//! The hugetlb controller is on cgroup2: the unified hierarchy of a hybrid host (where
//! this machine has it) or the v2 root. Fails, saying why, when the host has neither or
//! cannot allocate the pages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use testkit::cgroup::Layout;

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";
const WANT_PAGES: u64 = 8;

/// Raises the host's default-size huge page pool for the test and puts it back.
struct HostPages {
    before: String,
}

impl HostPages {
    fn at_least(n: u64) -> HostPages {
        let before = fs::read_to_string(NR_HUGEPAGES).expect("reading nr_hugepages");
        if before.trim().parse::<u64>().unwrap() < n {
            fs::write(NR_HUGEPAGES, n.to_string()).expect("raising nr_hugepages");
        }
        let total = host_huge("HugePages_Total");
        assert!(
            total >= n,
            "the host could allocate only {total} of {n} huge pages (memory too fragmented?)"
        );
        HostPages { before }
    }
}

impl Drop for HostPages {
    fn drop(&mut self) {
        let _ = fs::write(NR_HUGEPAGES, self.before.trim());
    }
}

fn value(meminfo: &str, label: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| {
            let (k, rest) = l.split_once(':')?;
            (k == label).then(|| rest.trim().trim_end_matches("kB").trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {label} in\n{meminfo}"))
}

fn host_huge(label: &str) -> u64 {
    value(&fs::read_to_string("/proc/meminfo").unwrap(), label)
}

/// The container's directory in the hierarchy that has hugetlb, made ready to limit it;
/// removed on drop where the test made it (on a hybrid host).
struct HugetlbDir {
    dir: PathBuf,
    ours: bool,
}

impl HugetlbDir {
    fn for_group(cg: &Cgroup) -> HugetlbDir {
        let (root, ours) = match cg.layout {
            Layout::V1 => (Path::new("/sys/fs/cgroup/unified"), true),
            Layout::V2 => (Path::new("/sys/fs/cgroup"), false),
        };
        let controllers = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_else(|e| {
            panic!("{}: {e}: no cgroup2 hierarchy for hugetlb", root.display())
        });
        assert!(
            controllers.split_whitespace().any(|c| c == "hugetlb"),
            "{} offers no hugetlb controller ({})",
            root.display(),
            controllers.trim()
        );
        fs::write(root.join("cgroup.subtree_control"), "+hugetlb").expect("enabling hugetlb");
        let dir = root.join(&cg.rel);
        if ours {
            fs::create_dir(&dir).unwrap();
        }
        HugetlbDir { dir, ours }
    }

    fn write(&self, file: &str, value: &str) {
        fs::write(self.dir.join(file), value)
            .unwrap_or_else(|e| panic!("{}/{file}: {e}", self.dir.display()));
    }
}

impl Drop for HugetlbDir {
    fn drop(&mut self) {
        if self.ours {
            // The container has exited by now; its processes were moved back by dying.
            let _ = fs::remove_dir(&self.dir);
        }
    }
}

#[test]
fn a_hugetlb_limit_bounds_the_huge_page_lines() {
    let _pages = HostPages::at_least(WANT_PAGES);
    let d = Daemon::start(&[]);
    let cg = Cgroup::with_memory_limit("huge", 256 * MIB);
    let huge = HugetlbDir::for_group(&cg);
    huge.write("hugetlb.2MB.max", &(4 * MIB).to_string());
    let procs = huge.dir.join("cgroup.procs");

    // Join the hugetlb group (on a hybrid host it is outside the harness's v1 groups),
    // read, then fault one huge page in and read again while it is held (after the
    // 100 ms the daemon may serve a rendering for).
    let out = run(
        &cg,
        &d.mnt,
        &format!(
            "echo 0 > '{}' || exit 97\n\
             cat /proc/meminfo; echo ---\n\
             /usr/bin/python3 -c '\n\
import mmap, time\n\
m = mmap.mmap(-1, 2 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x40000)\n\
m[0] = 1\n\
time.sleep(0.3)\n\
print(open(\"/proc/meminfo\").read())\n'",
            procs.display()
        ),
    );
    let s = sections(out.ok());
    assert_eq!(s.len(), 2, "{}", out.stdout);
    let (before, held) = (&s[0], &s[1]);

    assert_eq!(value(before, "HugePages_Total"), 2, "{before}");
    assert_eq!(value(before, "HugePages_Free"), 2, "{before}");
    assert_eq!(value(before, "HugePages_Rsvd"), 0, "{before}");
    assert_eq!(value(before, "Hugepagesize"), 2048);
    // Every other size's pages as the host has them, the default size's bounded.
    let host_total = host_huge("HugePages_Total");
    let host_hugetlb = host_huge("Hugetlb");
    assert_eq!(
        value(before, "Hugetlb"),
        host_hugetlb - host_total * 2048 + 2 * 2048,
        "{before}"
    );
    // The memory lines are the container's as before.
    assert_eq!(value(before, "MemTotal"), 256 * 1024);

    assert_eq!(value(held, "HugePages_Total"), 2, "{held}");
    assert_eq!(value(held, "HugePages_Free"), 1, "{held}");

    // The host's own file is untouched by the bound.
    assert_eq!(host_huge("HugePages_Total"), host_total);
}
