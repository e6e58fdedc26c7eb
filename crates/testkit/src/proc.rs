//! Small readers of `/proc/<pid>` and signals, for tests and the benchmark. They return
//! errors or empty answers for a process that is gone; they never panic.

use std::fs;
use std::io::{self, ErrorKind};

use rustix::process::{Pid, Signal, kill_process};

pub fn signal(pid: u32, sig: Signal) -> rustix::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(rustix::io::Errno::SRCH)?;
    kill_process(pid, sig)
}

/// The fields of `/proc/<pid>/stat` after `(comm)`: index 0 is the state (field 3).
fn stat_fields(pid: u32) -> io::Result<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // comm may hold spaces and ')': the fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, format!("bad /proc/{pid}/stat")))?;
    Ok(rest.split_whitespace().map(str::to_string).collect())
}

fn stat_u64(f: &[String], i: usize, pid: u32) -> io::Result<u64> {
    f.get(i).and_then(|v| v.parse().ok()).ok_or_else(|| {
        io::Error::new(
            ErrorKind::InvalidData,
            format!("no field {} in /proc/{pid}/stat", i + 3),
        )
    })
}

/// utime + stime of `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> io::Result<u64> {
    let f = stat_fields(pid)?;
    Ok(stat_u64(&f, 11, pid)? + stat_u64(&f, 12, pid)?)
}

/// cutime + cstime: CPU of the children `pid` has waited for.
pub fn reaped_children_ticks(pid: u32) -> io::Result<u64> {
    let f = stat_fields(pid)?;
    Ok(stat_u64(&f, 13, pid)? + stat_u64(&f, 14, pid)?)
}

pub fn ticks_to_ms(ticks: u64) -> f64 {
    ticks as f64 * 1000.0 / rustix::param::clock_ticks_per_second() as f64
}

/// `VmRSS` in KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                ErrorKind::InvalidData,
                format!("no VmRSS in /proc/{pid}/status"),
            )
        })
}

/// `pid`'s soft and hard limits on open descriptors, as `/proc/<pid>/limits` shows
/// them (`unlimited` or a number).
pub fn open_files_limit(pid: u32) -> io::Result<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    limits
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("Max open files")?;
            let mut w = rest.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .ok_or_else(|| io::Error::other(format!("no open files line in {limits:?}")))
}

/// Alive and not a zombie.
pub fn is_running(pid: u32) -> bool {
    stat_fields(pid)
        .ok()
        .and_then(|f| f.first().cloned())
        .is_some_and(|s| s != "Z" && s != "X")
}

/// Live child processes of `pid` (`/proc/<pid>/task/*/children`).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// The worker processes of an lxcfs-rs supervisor: its children started with `--worker`.
pub fn worker_pids(supervisor: u32) -> Vec<u32> {
    children(supervisor)
        .into_iter()
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .split(|&b| b == 0)
                .any(|a| a == b"--worker")
        })
        .collect()
}

/// Where each thread of `pid` is blocked: for a daemon that does not exit.
pub fn thread_states(pid: u32) -> String {
    let mut out = String::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("(pid {pid} is gone)\n");
    };
    for t in tasks.flatten() {
        let p = t.path();
        let read = |f: &str| fs::read_to_string(p.join(f)).unwrap_or_default();
        let state = read("status")
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap_or("")
            .to_string();
        out.push_str(&format!(
            "thread {} {} {state} wchan={}\n{}",
            t.file_name().to_string_lossy(),
            read("comm").trim(),
            read("wchan"),
            read("stack")
        ));
    }
    out
}

/// Thread `task` (a `/proc/<pid>/task/<tid>` directory) keeps exactly the capabilities
/// `kept` (a bit mask, `1 << CAP_*`) in its effective, permitted and bounding sets,
/// none inheritable, with no_new_privs and a seccomp filter; returns its name.
pub fn assert_thread_confined(task: &std::path::Path, kept: u64) -> String {
    let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
    let name = name.trim().to_string();
    let status = std::fs::read_to_string(task.join("status"))
        .unwrap_or_else(|e| panic!("{}: {e}", task.display()));
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {key} in {}:\n{status}", task.display()))
    };
    for set in ["CapEff:", "CapPrm:", "CapBnd:"] {
        let got = u64::from_str_radix(&field(set), 16).unwrap_or(u64::MAX);
        assert_eq!(got, kept, "{set} of thread {name}:\n{status}");
    }
    assert_eq!(field("CapInh:"), "0000000000000000", "thread {name}");
    assert_eq!(field("NoNewPrivs:"), "1", "thread {name}");
    assert_eq!(field("Seccomp:"), "2", "filter mode in thread {name}");
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process() {
        let me = std::process::id();
        cpu_ticks(me).unwrap();
        reaped_children_ticks(me).unwrap();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(is_running(me));
        assert!(thread_states(me).contains("thread "));
    }

    #[test]
    fn a_gone_process_is_an_error_not_a_panic() {
        // pid_max is at most 2^22: this pid never exists.
        let gone = 1 << 23;
        assert!(cpu_ticks(gone).is_err());
        assert!(rss_kib(gone).is_err());
        assert!(!is_running(gone));
        assert!(children(gone).is_empty());
        assert!(signal(gone, Signal::KILL).is_err());
    }
}
