//! Single-value cgroup files (`memory.max`, `memory.limit_in_bytes`, `cpu.cfs_quota_us`…).

/// A resource limit as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// No limit (`max` on v2, a value ≥ 2^62 on v1, or no controller at all).
    Max,
    /// A limit in the file's unit (bytes for memory).
    Value(u64),
}

/// v1 reports "unlimited" as `PAGE_COUNTER_MAX` in bytes, rounded down to a page
/// (9223372036854771712 on x86_64 with 4 KiB pages). Anything at or above 2^62 cannot
/// be a real limit on any machine, so it is read as [`Limit::Max`].
pub const V1_UNLIMITED_THRESHOLD: u64 = 1 << 62;

impl Limit {
    /// The tighter of two limits; [`Limit::Max`] is the identity.
    pub fn min(self, other: Limit) -> Limit {
        match (self, other) {
            (Limit::Max, x) | (x, Limit::Max) => x,
            (Limit::Value(a), Limit::Value(b)) => Limit::Value(a.min(b)),
        }
    }

    /// `Some(v)` for a finite limit.
    pub fn value(self) -> Option<u64> {
        match self {
            Limit::Max => None,
            Limit::Value(v) => Some(v),
        }
    }
}

/// Digits only (no sign, no whitespace, not empty), without overflow.
pub(crate) fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// A decimal `u64`, surrounding ASCII whitespace ignored. `None` on anything else.
pub fn parse_u64(s: &str) -> Option<u64> {
    parse_digits(s.trim_ascii())
}

/// A decimal `i64` (v1 `cpu.cfs_quota_us` is `-1` when unset).
pub fn parse_i64(s: &str) -> Option<i64> {
    let s = s.trim_ascii();
    match s.strip_prefix('-') {
        Some(digits) => 0i64.checked_sub_unsigned(parse_digits(digits)?),
        None => i64::try_from(parse_digits(s)?).ok(),
    }
}

/// A v2 limit file: `max` or a number.
pub fn parse_limit_v2(s: &str) -> Option<Limit> {
    let s = s.trim_ascii();
    if s == "max" {
        Some(Limit::Max)
    } else {
        parse_digits(s).map(Limit::Value)
    }
}

/// A v1 limit file: a number; values ≥ 2^62 mean unlimited (the kernel reports
/// `PAGE_COUNTER_MAX` rounded to pages, 9223372036854771712 on x86_64).
pub fn parse_limit_v1(s: &str) -> Option<Limit> {
    let v = parse_u64(s)?;
    Some(if v >= V1_UNLIMITED_THRESHOLD {
        Limit::Max
    } else {
        Limit::Value(v)
    })
}

/// A decimal number of seconds with an optional fraction (`12345.67`, the first field of
/// `/proc/uptime`), in nanoseconds. Digits past nanoseconds are dropped.
pub fn parse_seconds_ns(s: &str) -> Option<u64> {
    let s = s.trim_ascii();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs = parse_u64(int)?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (int.is_empty()) {
        return None;
    }
    let mut ns = 0u64;
    for (i, b) in frac.bytes().take(9).enumerate() {
        ns += u64::from(b - b'0') * 10u64.pow(8 - i as u32);
    }
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_min_treats_max_as_identity() {
        assert_eq!(Limit::Max.min(Limit::Max), Limit::Max);
        assert_eq!(Limit::Max.min(Limit::Value(5)), Limit::Value(5));
        assert_eq!(Limit::Value(5).min(Limit::Max), Limit::Value(5));
        assert_eq!(Limit::Value(5).min(Limit::Value(3)), Limit::Value(3));
        assert_eq!(Limit::Value(0).min(Limit::Value(3)), Limit::Value(0));
    }

    #[test]
    fn limit_value() {
        assert_eq!(Limit::Max.value(), None);
        assert_eq!(Limit::Value(42).value(), Some(42));
    }

    #[test]
    fn u64_accepts_decimal_with_surrounding_whitespace() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("268435456\n"), Some(268_435_456));
        assert_eq!(parse_u64("  17 \t\n"), Some(17));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64("007"), Some(7));
    }

    #[test]
    fn u64_rejects_everything_else() {
        for s in [
            "",
            "   ",
            "\n",
            "+1",
            "-1",
            "1 2",
            "0x10",
            "1e3",
            "12a",
            "max",
            "18446744073709551616",
            "99999999999999999999999",
            "１",
        ] {
            assert_eq!(parse_u64(s), None, "{s:?}");
        }
    }

    #[test]
    fn i64_parses_signs_and_bounds() {
        assert_eq!(parse_i64("-1\n"), Some(-1));
        assert_eq!(parse_i64("100000"), Some(100_000));
        assert_eq!(parse_i64("9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64("9223372036854775808"), None);
        assert_eq!(parse_i64("-9223372036854775809"), None);
        assert_eq!(parse_i64("-"), None);
        assert_eq!(parse_i64("--1"), None);
        assert_eq!(parse_i64("+1"), None);
        assert_eq!(parse_i64(""), None);
        assert_eq!(parse_i64("- 1"), None);
    }

    #[test]
    fn limit_v2() {
        assert_eq!(parse_limit_v2("max\n"), Some(Limit::Max));
        assert_eq!(
            parse_limit_v2("268435456\n"),
            Some(Limit::Value(268_435_456))
        );
        assert_eq!(parse_limit_v2("0"), Some(Limit::Value(0)));
        assert_eq!(parse_limit_v2("Max"), None);
        assert_eq!(parse_limit_v2("maximum"), None);
        assert_eq!(parse_limit_v2(""), None);
        assert_eq!(parse_limit_v2("-1"), None);
    }

    #[test]
    fn limit_v1() {
        assert_eq!(parse_limit_v1("9223372036854771712\n"), Some(Limit::Max));
        assert_eq!(parse_limit_v1("4611686018427387904"), Some(Limit::Max));
        assert_eq!(
            parse_limit_v1("4611686018427387903"),
            Some(Limit::Value(4_611_686_018_427_387_903))
        );
        assert_eq!(
            parse_limit_v1("268435456\n"),
            Some(Limit::Value(268_435_456))
        );
        assert_eq!(parse_limit_v1("max"), None);
        assert_eq!(parse_limit_v1("-1"), None);
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds_ns("12.34"), Some(12_340_000_000));
        assert_eq!(parse_seconds_ns("5"), Some(5_000_000_000));
        assert_eq!(parse_seconds_ns("1.1234567891"), Some(1_123_456_789));
        assert_eq!(parse_seconds_ns("x.1"), None);
        assert_eq!(parse_seconds_ns(".1"), None);
        assert_eq!(parse_seconds_ns("1.x"), None);
        assert_eq!(parse_seconds_ns("99999999999999999999"), None);
    }
}
