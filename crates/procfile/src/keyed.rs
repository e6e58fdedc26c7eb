//! Flat-keyed files: one `key value` pair per line (`memory.stat`, `cpu.stat`).

/// Every well-formed `key value` line; malformed lines are skipped.
pub fn pairs(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|_l| todo!())
}

/// The value of `key`, matched exactly (never by prefix: `file` must not match
/// `file_mapped`).
pub fn get(text: &str, key: &str) -> Option<u64> {
    todo!()
}
