//! `kernel::release_version` is total, finds a version only in text that begins with a
//! digit, and a version it finds, printed back as `major.minor`, parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procfile::kernel::release_version;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some((major, minor)) = release_version(&text) {
        assert!(text.starts_with(|c: char| c.is_ascii_digit()), "{text:?}");
        assert_eq!(release_version(&format!("{major}.{minor}")), Some((major, minor)));
    }
});
