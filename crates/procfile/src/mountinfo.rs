//! `/proc/<pid>/mountinfo`.
//!
//! Line format (proc(5)):
//! `id parent major:minor root mount_point options [optional fields…] - fstype source super_options`

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

/// One line, or `None` if it is not a well-formed mountinfo line. A missing
/// super-options field (never printed that way by the kernel) reads as empty.
pub fn parse_line(line: &str) -> Option<MountEntry<'_>> {
    let mut fields = line.split_ascii_whitespace();
    crate::value::parse_digits(fields.next()?)?; // mount id
    crate::value::parse_digits(fields.next()?)?; // parent id
    let (major, minor) = fields.next()?.split_once(':')?;
    crate::value::parse_digits(major)?;
    crate::value::parse_digits(minor)?;
    let root = fields.next()?;
    let mount_point = fields.next()?;
    fields.next()?; // per-mount options
    // Zero or more optional fields (`shared:1`, `master:2`…), closed by a lone `-`.
    fields.find(|&f| f == "-")?;
    let fstype = fields.next()?;
    let source = fields.next()?;
    let super_options = fields.next().unwrap_or("");
    Some(MountEntry {
        root: unescape(root),
        mount_point: unescape(mount_point),
        fstype,
        source,
        super_options,
    })
}

/// Every well-formed line.
pub fn entries(text: &str) -> impl Iterator<Item = MountEntry<'_>> {
    text.lines().filter_map(parse_line)
}

/// Decode the kernel's `\ooo` octal escapes (it writes space, tab, newline and backslash
/// as `\040`, `\011`, `\012`, `\134`). A backslash not followed by three octal digits
/// with a value ≤ 0o377 is kept as it is.
pub fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\'
            && let Some(v) = bytes.get(i + 1..i + 4).and_then(octal3)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn octal3(digits: &[u8]) -> Option<u8> {
    let v = digits.iter().try_fold(0u32, |acc, &d| {
        (b'0'..=b'7')
            .contains(&d)
            .then(|| acc * 8 + u32::from(d - b'0'))
    })?;
    u8::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn parses_real_mountinfo() {
        let all: Vec<_> = entries(SAMPLE).collect();
        assert_eq!(all.len(), 7);
        let mem = &all[4];
        assert_eq!(mem.root, "/");
        assert_eq!(mem.mount_point, "/sys/fs/cgroup/memory");
        assert_eq!(mem.fstype, "cgroup");
        assert_eq!(mem.source, "cgroup");
        assert_eq!(mem.super_options, "rw,memory");
        assert_eq!(all[6].fstype, "cgroup2");
        assert_eq!(all[1].source, "/dev/vda");
    }

    #[test]
    fn optional_fields_are_skipped() {
        let line = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue";
        let e = parse_line(line).unwrap();
        assert_eq!(e.root, "/mnt1");
        assert_eq!(e.mount_point, "/mnt2");
        assert_eq!(e.fstype, "ext3");
        assert_eq!(e.source, "/dev/root");
        assert_eq!(e.super_options, "rw,errors=continue");
    }

    #[test]
    fn octal_escapes_are_decoded() {
        let line = r"100 1 0:50 /a\040b\011c /mnt/my\040dir\012x\134y rw - fuse.lxcfs-rs lxcfs rw";
        let e = parse_line(line).unwrap();
        assert_eq!(e.root, "/a b\tc");
        assert_eq!(e.mount_point, "/mnt/my dir\nx\\y");
        assert_eq!(e.fstype, "fuse.lxcfs-rs");
        assert_eq!(unescape(r"\0"), r"\0");
        assert_eq!(unescape(r"a\"), r"a\");
        assert_eq!(unescape(r"\400"), r"\400");
        assert_eq!(unescape(r"\08x"), r"\08x");
        assert_eq!(unescape(r"\\134"), r"\\");
    }

    #[test]
    fn malformed_lines_are_skipped() {
        for line in [
            "",
            "22 27 0:21 / /proc rw,relatime proc proc rw",
            "22 27 0:21 / /proc rw,relatime -",
            "22 27 0:21 / /proc rw,relatime - proc",
            "x 27 0:21 / /proc rw - proc proc rw",
            "22 27 021 / /proc rw - proc proc rw",
            "22 27 0:21 /",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
        let e = parse_line("22 27 0:21 / /proc rw - proc proc").unwrap();
        assert_eq!(e.super_options, "");
    }
}
