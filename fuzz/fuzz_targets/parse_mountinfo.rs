//! mountinfo parsing is total.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procfile::mountinfo;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for entry in mountinfo::entries(&text) {
        // Decoding only ever shortens a path.
        assert!(entry.root.len() <= text.len() * 3);
        assert!(entry.mount_point.len() <= text.len() * 3);
        let _ = (entry.fstype, entry.source, entry.super_options);
    }
    let _ = mountinfo::unescape(&text);
});
