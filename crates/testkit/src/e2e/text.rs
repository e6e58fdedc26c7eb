//! Reading what files and tools print, and the host's own values to compare with.

use std::fs;
use std::path::Path;

use crate::cgroup::{CGROUP_ROOT, Layout};

/// The value of `key` in a meminfo text (kB for most keys).
pub fn meminfo_value(text: &str, key: &str) -> u64 {
    meminfo_get(text, key).unwrap_or_else(|| panic!("no {key} in meminfo:\n{text}"))
}

pub fn meminfo_get(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, rest) = l.split_once(':')?;
        if k != key {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The labels, in order.
pub fn meminfo_labels(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.to_string()))
        .collect()
}

/// Every line is `Label:<spaces>number[ kB]`.
pub fn assert_meminfo_well_formed(text: &str) {
    assert!(text.ends_with('\n'), "meminfo does not end with a newline");
    for l in text.lines() {
        let (k, rest) = l
            .split_once(':')
            .unwrap_or_else(|| panic!("meminfo line without ':': {l:?}"));
        assert!(
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_()".contains(c)),
            "bad label in {l:?}"
        );
        let mut words = rest.split_whitespace();
        let n = words.next().unwrap_or("");
        assert!(
            !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()),
            "bad value in {l:?}"
        );
        match words.next() {
            None | Some("kB") => {}
            Some(w) => panic!("unexpected {w:?} in {l:?}"),
        }
        assert!(words.next().is_none(), "trailing text in {l:?}");
    }
}

/// The `total` column of `free`'s `Mem:` line.
pub fn free_total(free_output: &str) -> u64 {
    free_column(free_output, "Mem:", 0)
}

/// Column `i` (0 = total) of the line starting with `label` in `free`'s output.
pub fn free_column(free_output: &str, label: &str, i: usize) -> u64 {
    free_output
        .lines()
        .find(|l| l.starts_with(label))
        .and_then(|l| l.split_whitespace().nth(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {label} column {i} in free's output:\n{free_output}"))
}

/// The text between a line `== name` and the next `== ` line of a script's output (the
/// runtime tests label each command's output so).
pub fn script_part<'a>(out: &'a str, name: &str) -> &'a str {
    let head = format!("== {name}\n");
    let start = out
        .find(&head)
        .unwrap_or_else(|| panic!("no part {name} in:\n{out}"))
        + head.len();
    let rest = &out[start..];
    &rest[..rest.find("\n== ").map_or(rest.len(), |i| i + 1)]
}

/// [`script_part`], trimmed: what a runtime test compares a labelled command's output by.
pub fn part<'a>(out: &'a str, name: &str) -> &'a str {
    script_part(out, name).trim()
}

/// The parts of `text` separated by lines `---`.
pub fn sections(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for l in text.lines() {
        if l == "---" {
            out.push(String::new());
        } else if let Some(last) = out.last_mut() {
            last.push_str(l);
            last.push('\n');
        }
    }
    out
}

pub fn host_meminfo() -> String {
    fs::read_to_string("/proc/meminfo").expect("read the host's /proc/meminfo")
}

/// The host's uptime, s (the first field of its `/proc/uptime`).
pub fn host_uptime_secs() -> f64 {
    fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .expect("the host's /proc/uptime")
}

pub fn host_mem_total_kb() -> u64 {
    meminfo_value(&host_meminfo(), "MemTotal")
}

/// The effective memory limit (bytes) of this test process's own memory cgroup, `None`
/// when unlimited: the smallest limit on the way up to the root.
pub fn own_memory_limit() -> Option<u64> {
    let layout = Layout::host().ok()?;
    let cg = fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cg.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let id = parts.next()?;
        let ctrl = parts.next()?;
        let path = parts.next()?;
        let ours = match layout {
            Layout::V1 => ctrl.split(',').any(|c| c == "memory"),
            Layout::V2 => id == "0" && ctrl.is_empty(),
        };
        ours.then(|| path.to_string())
    })?;
    let (root, file) = match layout {
        Layout::V1 => (
            Path::new(CGROUP_ROOT).join("memory"),
            "memory.limit_in_bytes",
        ),
        Layout::V2 => (Path::new(CGROUP_ROOT).to_path_buf(), "memory.max"),
    };
    let mut dir = root.join(path.trim_start_matches('/'));
    let mut limit: Option<u64> = None;
    loop {
        // v2 writes "max", v1 a huge number, for "unlimited".
        if let Some(v) = fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|v| *v < 1 << 62)
        {
            limit = Some(limit.map_or(v, |l| l.min(v)));
        }
        if dir == root || !dir.pop() {
            break;
        }
    }
    limit
}
