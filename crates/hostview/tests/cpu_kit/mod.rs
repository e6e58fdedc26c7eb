//! Shared by the CPU-view test crates (`cpu_v1`, `cpu_v2_hybrid_edge`): opening a
//! fixture tree, rendering for a reader, parsing and checking `/proc/stat`, cpuinfo and
//! the sysfs CPU lists, and editing a copied tree (clock, usage) to make time pass.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use hostview::{Host, Options, ResolverKind, VirtualFile};

pub const S: u64 = 1_000_000_000;
/// ns per USER_HZ tick (100 Hz on Linux).
pub const TICK: u64 = 10_000_000;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

pub fn open(root: &Path, cfs: bool) -> Host {
    Host::open(
        root,
        Options {
            resolver: ResolverKind::Procfs,
            cfs,
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("opening {}: {e}", root.display()))
}

pub fn render(host: &Host, file: VirtualFile, tid: u32) -> String {
    let mut buf = Vec::new();
    host.render(file, tid, &mut buf)
        .unwrap_or_else(|e| panic!("rendering {file:?} for {tid}: {e}"));
    String::from_utf8(buf).expect("utf-8")
}

pub fn host_file(root: &Path, file: VirtualFile) -> String {
    fs::read_to_string(root.join(file.host_path())).unwrap()
}

/// The ids on the `processor` lines, in order.
pub fn processors(cpuinfo: &str) -> Vec<u32> {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .map(|l| {
            let (label, v) = l.split_once(':').unwrap();
            assert_eq!(label, "processor\t", "label padding kept: {l:?}");
            v.trim().parse().unwrap()
        })
        .collect()
}

/// Field `key` of the processor block shown as `processor : shown`.
pub fn field(cpuinfo: &str, shown: u32, key: &str) -> String {
    let block = cpuinfo
        .split("\n\n")
        .find(|b| b.lines().next() == Some(&format!("processor\t: {shown}")))
        .unwrap_or_else(|| panic!("no block for processor {shown}:\n{cpuinfo}"));
    block
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim_end() == key).then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {key} in block {shown}"))
}

#[allow(unused_imports)]
pub use testkit::procstat::{Stat, assert_monotonic};

pub fn stat(host: &Host, tid: u32) -> Stat {
    Stat::parse(&render(host, VirtualFile::Stat, tid))
}

/// The expected line of a CPU with `user`/`system` ns of busy time and `cap` ns of
/// capacity over the period (idle = capacity − busy).
pub fn line(id: u32, user: u64, system: u64, cap: u64) -> String {
    let idle = cap.saturating_sub(user + system);
    format!(
        "cpu{id} {} 0 {} {} 0 0 0 0 0 0",
        user / TICK,
        system / TICK,
        idle / TICK
    )
}

/// `0-3,8,10-11` → its members.
pub fn list(s: &str) -> Vec<u32> {
    let s = s.strip_suffix('\n').expect("ends in a newline");
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u32>().unwrap()..=b.parse().unwrap()),
            None => out.push(part.parse().unwrap()),
        }
    }
    out
}

/// cpuinfo, stat and the sysfs lists of reader `tid` show the same CPUs, `want`, and
/// nothing is offline: the container's machine has exactly the CPUs it sees (the
/// kernel's invariants, offline ⊆ possible and online ∪ offline = present).
pub fn assert_one_view(host: &Host, tid: u32, want: &[u32]) {
    let cpuinfo = render(host, VirtualFile::Cpuinfo, tid);
    assert_eq!(processors(&cpuinfo), want, "cpuinfo:\n{cpuinfo}");
    assert_eq!(stat(host, tid).ids(), want);
    for f in [
        VirtualFile::CpuOnline,
        VirtualFile::CpuPossible,
        VirtualFile::CpuPresent,
    ] {
        assert_eq!(list(&render(host, f, tid)), want, "{f:?}");
    }
    assert_eq!(render(host, VirtualFile::CpuOffline, tid), "\n");
}

/// Copy a fixture tree (files, directories, symlinks as symlinks) into a temp dir.
pub fn copy_tree(src: &Path) -> tempfile::TempDir {
    fn copy(src: &Path, dst: &Path) {
        fs::create_dir_all(dst).unwrap();
        for e in fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            let (from, to) = (e.path(), dst.join(e.file_name()));
            let t = e.file_type().unwrap();
            if t.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&from).unwrap(), &to).unwrap();
            } else if t.is_dir() {
                copy(&from, &to);
            } else {
                fs::copy(&from, &to).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(src, dir.path());
    dir
}

pub fn set_clock(root: &Path, uptime: &str) {
    fs::write(root.join("proc/uptime"), format!("{uptime} 1.00\n")).unwrap();
}

/// Add `user`/`system` ns to `cpu`'s row of a `cpuacct.usage_all`.
pub fn bump_usage_all(file: &Path, cpu: u32, user: u64, system: u64) {
    let text = fs::read_to_string(file).unwrap();
    let mut out = String::new();
    for (i, l) in text.lines().enumerate() {
        let f: Vec<&str> = l.split_ascii_whitespace().collect();
        if i > 0 && f[0].parse::<u32>().unwrap() == cpu {
            let u: u64 = f[1].parse().unwrap();
            let s: u64 = f[2].parse().unwrap();
            out.push_str(&format!("{cpu} {} {}\n", u + user, s + system));
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    fs::write(file, out).unwrap();
}

pub fn write(root: &Path, rel: &str, content: &str) {
    fs::write(root.join(rel), content).unwrap();
}
