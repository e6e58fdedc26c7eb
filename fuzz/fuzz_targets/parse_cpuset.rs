//! `CpuSet::parse` is total, and whatever it accepts prints canonically and re-parses
//! to the same set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procfile::CpuSet;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(set) = CpuSet::parse(&text) {
        let shown = set.to_string();
        let again = CpuSet::parse(&shown);
        assert_eq!(again.as_ref(), Some(&set), "{shown:?}");
        assert_eq!(set.iter().count(), set.len());
        assert!(set.iter().all(|cpu| set.contains(cpu)));
    }
});
