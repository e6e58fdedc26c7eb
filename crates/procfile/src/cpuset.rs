//! CPU lists (`0-3,8,10-11`) as in `cpuset.cpus` and `/sys/devices/system/cpu/online`.

/// A set of CPU ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuSet {
    words: Vec<u64>,
}

/// CPU ids at or above this are rejected: the kernel's NR_CPUS tops out at 8192, and an
/// id like `4000000000` in a malformed file must not make us allocate gigabytes.
pub const MAX_CPUS: u32 = 8192;

impl CpuSet {
    /// Parse a list; an empty or whitespace-only string is the empty set.
    pub fn parse(s: &str) -> Option<CpuSet> {
        todo!()
    }
    pub fn insert(&mut self, cpu: u32) {
        todo!()
    }
    pub fn contains(&self, cpu: u32) -> bool {
        todo!()
    }
    pub fn len(&self) -> usize {
        todo!()
    }
    pub fn is_empty(&self) -> bool {
        todo!()
    }
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::empty()
    }
}

/// Kernel list format: ranges joined by commas, no trailing newline.
impl std::fmt::Display for CpuSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        todo!()
    }
}
