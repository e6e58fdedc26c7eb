//! Per-process files: `/proc/<pid>/cgroup`, `/proc/<pid>/stat`, `/proc/<pid>/status`.

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupLine<'a> {
    pub hierarchy: u32,
    /// Comma-separated controllers; empty for the v2 (`0::`) line.
    pub controllers: &'a str,
    pub path: &'a str,
}

pub fn cgroup_lines(text: &str) -> impl Iterator<Item = CgroupLine<'_>> {
    text.lines().filter_map(|_l| todo!())
}

/// The fields of `/proc/<pid>/stat` we use. The comm field may contain spaces and `)`,
/// so fields are counted from the last `)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub state: u8,
    pub ppid: u32,
    /// Field 22: start time in clock ticks since boot.
    pub starttime: u64,
}

pub fn parse_stat(text: &str) -> Option<ProcStat> {
    todo!()
}

/// The fields of `/proc/<pid>/status` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcStatus {
    pub tgid: Option<u32>,
    pub ppid: Option<u32>,
    /// Last entry of `NSpid:` (the pid in the process's own pid namespace).
    pub nspid_inner: Option<u32>,
    /// Number of entries in `NSpid:` (nesting depth of the process's pid namespace + 1).
    pub nspid_depth: usize,
}

pub fn parse_status(text: &str) -> ProcStatus {
    todo!()
}
