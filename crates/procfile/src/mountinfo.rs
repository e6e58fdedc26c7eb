//! `/proc/<pid>/mountinfo`.

/// One mount. Paths have the kernel's octal escapes (`\040`…) decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry<'a> {
    /// Path inside the filesystem that is mounted (field 4).
    pub root: String,
    /// Where it is mounted (field 5).
    pub mount_point: String,
    /// Filesystem type after the ` - ` separator (`cgroup`, `cgroup2`, `fuse.lxcfs-rs`).
    pub fstype: &'a str,
    /// Mount source.
    pub source: &'a str,
    /// Super-block options (`rw,memory`, `rw,cpu,cpuacct`, `rw,name=systemd`).
    pub super_options: &'a str,
}

pub fn parse_line(line: &str) -> Option<MountEntry<'_>> {
    todo!()
}

/// Every well-formed line.
pub fn entries(text: &str) -> impl Iterator<Item = MountEntry<'_>> {
    text.lines().filter_map(parse_line)
}
