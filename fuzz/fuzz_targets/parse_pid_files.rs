//! `/proc/<pid>/{cgroup,stat,status}` parsing is total.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procfile::pid;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in pid::cgroup_lines(&text) {
        let _ = (line.hierarchy, line.controllers, line.path);
    }
    let _ = pid::parse_stat(&text);
    let status = pid::parse_status(&text);
    assert_eq!(status.nspid_inner.is_some(), status.nspid_depth > 0);
});
