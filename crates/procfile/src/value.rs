//! Single-value cgroup files (`memory.max`, `memory.limit_in_bytes`, `cpu.cfs_quota_us`…).

/// A resource limit as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// No limit (`max` on v2, a value ≥ 2^62 on v1, or no controller at all).
    Max,
    /// A limit in the file's unit (bytes for memory).
    Value(u64),
}

impl Limit {
    /// The tighter of two limits.
    pub fn min(self, other: Limit) -> Limit {
        todo!()
    }
    /// `Some(v)` for a finite limit.
    pub fn value(self) -> Option<u64> {
        todo!()
    }
}

/// A decimal `u64`, surrounding ASCII whitespace ignored. `None` on anything else.
pub fn parse_u64(s: &str) -> Option<u64> {
    todo!()
}

/// A decimal `i64` (v1 `cpu.cfs_quota_us` is `-1` when unset).
pub fn parse_i64(s: &str) -> Option<i64> {
    todo!()
}

/// A v2 limit file: `max` or a number.
pub fn parse_limit_v2(s: &str) -> Option<Limit> {
    todo!()
}

/// A v1 limit file: a number; values ≥ 2^62 mean unlimited (the kernel reports
/// `PAGE_COUNTER_MAX` rounded to pages, 9223372036854771712 on x86_64).
pub fn parse_limit_v1(s: &str) -> Option<Limit> {
    todo!()
}
