#![no_main]
//! PSI triggers come straight from a container's write(2): any bytes must parse or be
//! refused, never panic.

use libfuzzer_sys::fuzz_target;
use procfile::psi::Trigger;

fuzz_target!(|data: &[u8]| {
    for privileged in [false, true] {
        if let Some(t) = Trigger::parse(data, privileged) {
            assert_eq!(Trigger::parse(&t.to_write(), privileged), Some(t));
        }
    }
});
