//! Flat-keyed files and memory.stat normalisation are total, and `get` agrees with
//! `pairs` (first exact match wins).
#![no_main]

use libfuzzer_sys::fuzz_target;
use procfile::{MemStat, keyed, value};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut first_key = None;
    for (key, v) in keyed::pairs(&text) {
        first_key.get_or_insert((key, v));
    }
    if let Some((key, v)) = first_key {
        assert_eq!(keyed::get(&text, key), Some(v));
    }
    let _ = MemStat::from_v1(&text);
    let _ = MemStat::from_v2(&text);
    let _ = value::parse_u64(&text);
    let _ = value::parse_i64(&text);
    let _ = value::parse_limit_v1(&text);
    let _ = value::parse_limit_v2(&text);
});
