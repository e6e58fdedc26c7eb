//! Shared by the fixture test crates (`fixtures_layout`, `fixtures_memory`): where the
//! trees are, how a tree is opened and read, and the checks of a rendered meminfo and
//! swaps against the host's files and the expectation tables of `expected.rs`.
#![allow(dead_code)]

pub mod expected;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hostview::{Dir, Host, NsId, Options, ResolverKind, VirtualFile};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");
pub const EXPECTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/expected");

pub const HOST_NS: NsId = NsId(4026531836);
pub const SWAPS_HEADER: &str = "Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n";
pub const TREES: [&str; 7] = [
    "v1-legacy",
    "v2-unified",
    "v2-nested-max",
    "v2-no-memory-controller",
    "hybrid",
    "swap-off",
    "edge-malformed",
];

pub fn tree_root(tree: &str) -> PathBuf {
    Path::new(FIXTURES).join(tree)
}

pub fn procfs() -> Options {
    Options {
        resolver: ResolverKind::Procfs,
        ..Options::default()
    }
}

pub fn open(tree: &str) -> Host {
    open_with(tree, procfs())
}

pub fn open_with(tree: &str, opts: Options) -> Host {
    Host::open(&tree_root(tree), opts).unwrap_or_else(|e| panic!("opening {tree}: {e}"))
}

pub fn render(host: &Host, file: VirtualFile, tid: u32) -> String {
    let mut out = b"stale".to_vec();
    host.render(file, tid, &mut out)
        .unwrap_or_else(|e| panic!("rendering {file:?} for {tid}: {e}"));
    String::from_utf8(out).unwrap()
}

pub fn meminfo(host: &Host, tid: u32) -> String {
    render(host, VirtualFile::Meminfo, tid)
}

pub fn swaps(host: &Host, tid: u32) -> String {
    render(host, VirtualFile::Swaps, tid)
}

/// A file of the tree, as the host would serve it.
pub fn host_text(tree: &str, rel: &str) -> String {
    std::fs::read_to_string(tree_root(tree).join(rel)).unwrap()
}

/// The one `none` line LXCFS and lxcfs-rs show when the container has swap.
pub fn swaps_with(total_kb: u64, used_kb: u64) -> String {
    format!(
        "{SWAPS_HEADER}none{:36}virtual\t\t{total_kb}\t{used_kb}\t0\n",
        ""
    )
}

/// label → kB of every `Label: N kB` line.
pub fn values(meminfo: &str) -> HashMap<String, u64> {
    meminfo
        .lines()
        .filter_map(|l| {
            let (label, rest) = l.split_once(':')?;
            let n = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
            Some((label.to_string(), n))
        })
        .collect()
}

pub fn kb(meminfo: &str, label: &str) -> u64 {
    *values(meminfo)
        .get(label)
        .unwrap_or_else(|| panic!("no {label} line in\n{meminfo}"))
}

/// `out` is the host's meminfo with exactly the `expected` lines replaced, each in the
/// kernel's `%-16s%8lu kB` layout; every other line is the host's, byte for byte.
pub fn assert_meminfo(tree: &str, tid: u32, out: &str, expected: &[(&str, u64)]) {
    let host = host_text(tree, "proc/meminfo");
    let want: HashMap<&str, u64> = expected.iter().copied().collect();
    assert_eq!(want.len(), expected.len(), "a label is listed twice");
    assert!(out.ends_with('\n'), "{tree}/{tid}: no final newline");
    let out_lines: Vec<&str> = out.lines().collect();
    let host_lines: Vec<&str> = host.lines().collect();
    assert_eq!(
        out_lines.len(),
        host_lines.len(),
        "{tree}/{tid}: line count"
    );
    let mut replaced = 0;
    for (o, h) in out_lines.iter().zip(&host_lines) {
        let label = h.split_once(':').unwrap().0;
        match want.get(label) {
            Some(v) => {
                let line = format!("{:<16}{v:>8} kB", format!("{label}:"));
                assert_eq!(*o, line, "{tree}/{tid}: {label}");
                replaced += 1;
            }
            None => assert_eq!(o, h, "{tree}/{tid}: {label} must be the host's line"),
        }
    }
    assert_eq!(
        replaced,
        want.len(),
        "{tree}/{tid}: an expected label is missing"
    );
}

/// A key of a `memory.stat` fixture file, matched exactly, in kB.
pub fn stat_kb(tree: &str, cgroup: &str, key: &str) -> u64 {
    let text = host_text(tree, &format!("sys/fs/cgroup/{cgroup}/memory.stat"));
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse::<u64>().ok())?
        })
        .unwrap_or_else(|| panic!("{key} not in {cgroup}/memory.stat"))
        / 1024
}

/// Compare with `tests/expected/<name>`, or rewrite it under `UPDATE_EXPECTED=1`.
pub fn check_expected(name: &str, actual: &str) {
    let path = Path::new(EXPECTED).join(name);
    if std::env::var("UPDATE_EXPECTED").as_deref() == Ok("1") {
        std::fs::create_dir_all(EXPECTED).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (UPDATE_EXPECTED=1 writes it; review it before committing)",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .map(|(i, (e, a))| format!("line {}:\n  expected {e:?}\n  actual   {a:?}", i + 1))
            .collect();
        panic!(
            "{name}: rendering differs from {} ({} lines expected, {} rendered)\n{}",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// The host's meminfo and swaps, byte for byte.
pub fn assert_host_files(tree: &str, host: &Host, tid: u32) {
    assert_eq!(
        meminfo(host, tid),
        host_text(tree, "proc/meminfo"),
        "{tree}: reader {tid} must get the host's meminfo"
    );
    assert_eq!(
        swaps(host, tid),
        host_text(tree, "proc/swaps"),
        "{tree}: reader {tid} must get the host's swaps"
    );
}

pub fn dir_name_ends(dir: &Dir, suffix: &str) -> bool {
    dir.name().ends_with(suffix)
}
