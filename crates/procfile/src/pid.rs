//! Per-process files: `/proc/<pid>/cgroup`, `/proc/<pid>/stat`, `/proc/<pid>/status`.

use crate::value::parse_digits;

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupLine<'a> {
    pub hierarchy: u32,
    /// Comma-separated controllers; empty for the v2 (`0::`) line.
    pub controllers: &'a str,
    pub path: &'a str,
}

/// Every well-formed line. The path is everything after the second `:` (a cgroup name
/// may itself contain `:`).
pub fn cgroup_lines(text: &str) -> impl Iterator<Item = CgroupLine<'_>> {
    text.lines().filter_map(cgroup_line)
}

fn cgroup_line(line: &str) -> Option<CgroupLine<'_>> {
    let (hierarchy, rest) = line.split_once(':')?;
    let (controllers, path) = rest.split_once(':')?;
    let hierarchy = u32::try_from(parse_digits(hierarchy)?).ok()?;
    Some(CgroupLine {
        hierarchy,
        controllers,
        path,
    })
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
    let (_, after_comm) = text.rsplit_once(')')?;
    // Fields after `)` start at field 3 (state).
    let mut fields = after_comm.split_ascii_whitespace();
    let state = fields.next()?;
    let &[state] = state.as_bytes() else {
        return None;
    };
    let ppid = u32::try_from(parse_digits(fields.next()?)?).ok()?;
    // Field 4 consumed; field 22 is 18 further on.
    let starttime = parse_digits(fields.nth(22 - 5)?)?;
    Some(ProcStat {
        state,
        ppid,
        starttime,
    })
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

/// The effective capabilities (`CapEff:`, hexadecimal) of a `/proc/<pid>/status`.
pub fn cap_eff(text: &str) -> Option<u64> {
    let value = text.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(value.trim(), 16).ok()
}

/// Unknown or malformed lines are ignored; a malformed `NSpid:` line leaves
/// `nspid_inner` at `None` and `nspid_depth` at 0.
pub fn parse_status(text: &str) -> ProcStatus {
    let mut st = ProcStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "Tgid" => st.tgid = pid(value),
            "PPid" => st.ppid = pid(value),
            "NSpid" => {
                let (inner, depth) = nspid(value).unwrap_or((None, 0));
                st.nspid_inner = inner;
                st.nspid_depth = depth;
            }
            _ => {}
        }
    }
    st
}

fn pid(s: &str) -> Option<u32> {
    u32::try_from(parse_digits(s.trim_ascii())?).ok()
}

fn nspid(s: &str) -> Option<(Option<u32>, usize)> {
    let mut last = None;
    let mut depth = 0usize;
    for entry in s.split_ascii_whitespace() {
        last = Some(pid(entry)?);
        depth += 1;
    }
    Some((last, depth))
}

/// The one-letter state of `/proc/<pid>/status` (`State:\tR (running)`).
pub fn status_state(text: &str) -> Option<u8> {
    text.lines()
        .find_map(|l| l.strip_prefix("State:"))
        .and_then(|rest| rest.trim_start().bytes().next())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn cgroup_v1_and_v2_lines() {
        let text = "9:name=systemd:/\n4:memory:/process_api/2ab666f0\n3:cpu,cpuacct:/\n\
                    0::/system.slice/docker-abc.scope\n";
        let lines: Vec<_> = cgroup_lines(text).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[1],
            CgroupLine {
                hierarchy: 4,
                controllers: "memory",
                path: "/process_api/2ab666f0"
            }
        );
        assert_eq!(lines[2].controllers, "cpu,cpuacct");
        assert_eq!(lines[3].hierarchy, 0);
        assert_eq!(lines[3].controllers, "");
        assert_eq!(lines[3].path, "/system.slice/docker-abc.scope");
    }

    #[test]
    fn cgroup_path_may_contain_colons() {
        let l: Vec<_> = cgroup_lines("0::/kubepods/pod:a:b\n").collect();
        assert_eq!(l[0].path, "/kubepods/pod:a:b");
    }

    #[test]
    fn cgroup_malformed_lines_skipped() {
        let text = "\nx::/\n-1::/\n4:memory\n99999999999::/\n 1::/\n1::/ok\n";
        let l: Vec<_> = cgroup_lines(text).collect();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].path, "/ok");
    }

    const STAT: &str = "3075 (cat) R 3067 3067 2634 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 18107 \
        3133440 393 18446744073709551615 93970223214592 93970223234473 140725617416336 0 0 0 0 \
        0 0 0 0 0 17 0 0 0 0 0 0 93970223250480 93970223252096 93971083587584 140725617425122 \
        140725617425142 140725617425142 140725617426411 0\n";

    #[test]
    fn stat_real_line() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(
            s,
            ProcStat {
                state: b'R',
                ppid: 3067,
                starttime: 18107
            }
        );
    }

    #[test]
    fn stat_comm_with_parens_and_spaces() {
        let text = "42 (we ird) (x) ) S 1 42 42 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 999 0 0\n";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.starttime, 999);
    }

    #[test]
    fn stat_malformed() {
        for t in [
            "",
            "1 (x R 1 2",
            "1 (x) R",
            "1 (x) RR 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 999",
            "1 (x) R 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0",
            "1 (x) R -1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 999",
            "1 (x) R 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 -5",
        ] {
            assert_eq!(parse_stat(t), None, "{t:?}");
        }
    }

    #[test]
    fn status_fields() {
        let text = "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t3076\nNgid:\t0\n\
                    Pid:\t3076\nPPid:\t3067\nTracerPid:\t0\nNStgid:\t3076\t12\t1\n\
                    NSpid:\t3076\t12\t1\nNSpgid:\t3076\t12\t1\nNSsid:\t1\t1\t1\n";
        let st = parse_status(text);
        assert_eq!(
            st,
            ProcStatus {
                tgid: Some(3076),
                ppid: Some(3067),
                nspid_inner: Some(1),
                nspid_depth: 3
            }
        );
    }

    #[test]
    fn status_host_process_and_garbage() {
        let st = parse_status("Tgid:\t3076\nPPid:\t0\nNSpid:\t3076\n");
        assert_eq!(st.nspid_inner, Some(3076));
        assert_eq!(st.nspid_depth, 1);
        assert_eq!(st.ppid, Some(0));
        assert_eq!(parse_status(""), ProcStatus::default());
        let st = parse_status("Tgid: x\nNSpid:\t1 y 2\nPPid:\n");
        assert_eq!(st, ProcStatus::default());
        let st = parse_status("NSpid:  7   8 \n");
        assert_eq!((st.nspid_inner, st.nspid_depth), (Some(8), 2));
    }

    #[test]
    fn cap_eff_is_hex_and_total() {
        assert_eq!(
            cap_eff("Name:\tx\nCapEff:\t000001ffffffffff\n"),
            Some(0x1ff_ffff_ffff)
        );
        assert_eq!(cap_eff("CapEff:\t0000000000080004"), Some(0x80004));
        assert_eq!(cap_eff("CapEff:\tzz\n"), None);
        assert_eq!(cap_eff(""), None);
    }
}
