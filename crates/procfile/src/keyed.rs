//! Flat-keyed files: one `key value` pair per line (`memory.stat`, `cpu.stat`).

/// Every well-formed `key value` line; malformed lines are skipped.
///
/// A well-formed line has exactly two whitespace-separated fields, the second a decimal
/// `u64` (see [`crate::value::parse_u64`]).
pub fn pairs(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(pair)
}

fn pair(line: &str) -> Option<(&str, u64)> {
    let mut fields = line.split_ascii_whitespace();
    let key = fields.next()?;
    let value = crate::value::parse_digits(fields.next()?)?;
    if fields.next().is_some() {
        return None;
    }
    Some((key, value))
}

/// The value of `key`, matched exactly (never by prefix: `file` must not match
/// `file_mapped`). The first well-formed line with that key wins.
pub fn get(text: &str, key: &str) -> Option<u64> {
    pairs(text).find(|&(k, _)| k == key).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_skip_malformed_lines() {
        let text = "anon 4096\nfile 8192\n\nbroken\ntoo many 1 2\nneg -1\nhex 0x10\n\
                    spaced \t 12  \nlast 7";
        let got: Vec<_> = pairs(text).collect();
        assert_eq!(
            got,
            vec![("anon", 4096), ("file", 8192), ("spaced", 12), ("last", 7)]
        );
    }

    #[test]
    fn get_matches_keys_exactly() {
        let text = "file_mapped 4096\nfile_dirty 1\nfile 8192\n";
        assert_eq!(get(text, "file"), Some(8192));
        assert_eq!(get(text, "file_mapped"), Some(4096));
        assert_eq!(get(text, "file_"), None);
        assert_eq!(get(text, "fil"), None);
        assert_eq!(get(text, "mapped"), None);
        let text = "total_rss 100\ntotal_rss_huge 200\n";
        assert_eq!(get(text, "total_rss_huge"), Some(200));
        assert_eq!(get(text, "total_rss"), Some(100));
    }

    #[test]
    fn get_on_empty_and_missing() {
        assert_eq!(get("", "anon"), None);
        assert_eq!(get("anon\n", "anon"), None);
        assert_eq!(get("anon x\nanon 3\n", "anon"), Some(3));
    }
}
