//! The `cgroup/` tree (`--enable-cgroup`): every cgroup hierarchy of the host, each
//! rooted at the reader's container's cgroup, so that a container without a cgroup
//! namespace can bind it over `/sys/fs/cgroup` and see its own limits at the top and
//! nothing of its neighbours.
//!
//! Paths here are relative to the `cgroup/` directory, as the container names them:
//! `memory/memory.limit_in_bytes`, `unified/cgroup.procs`. With v1 hierarchies each
//! has a directory (named after its controllers, `cpu,cpuacct`, or `systemd` for
//! `name=systemd`) and the v2 hierarchy is `unified`, as hybrid hosts mount them; on a
//! pure v2 host `cgroup/` itself is the v2 hierarchy. Values are the host's files read
//! at read time; only the pid lists are rewritten, into the reader's pid numbering.

use crate::Host;
use crate::cgroup::Hierarchies;
use crate::error::{Error, Result};
use crate::fsio::DirEntry;
use crate::pidns::{self, NsId};
use crate::sys;
use rustix::io::Errno;

/// The directory the v2 hierarchy takes beside v1 ones.
pub const UNIFIED: &str = "unified";

/// Files that list pids (`tasks`, `cgroup.threads`: thread ids), rewritten per reader.
pub fn lists_pids(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    matches!(name, "cgroup.procs" | "tasks" | "cgroup.threads")
}

/// Which hierarchy a top-level name stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    V1(usize),
    V2,
}

/// The directory name of v1 hierarchy `i`: its controllers, `name=` dropped.
fn v1_name(hier: &Hierarchies, i: usize) -> Option<String> {
    let h = hier.v1.get(i)?;
    Some(
        h.controllers
            .iter()
            .map(|c| c.strip_prefix("name=").unwrap_or(c))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// `cgroup/` is the v2 hierarchy itself: no v1 hierarchy at all.
fn pure_v2(hier: &Hierarchies) -> bool {
    hier.v1.is_empty() && hier.v2.is_some()
}

/// The names of `cgroup/`'s hierarchy directories (none on a pure v2 host).
pub fn hierarchy_names(hier: &Hierarchies) -> Vec<String> {
    if pure_v2(hier) {
        return Vec::new();
    }
    let mut names: Vec<String> = (0..hier.v1.len())
        .filter_map(|i| v1_name(hier, i))
        .collect();
    if hier.v2.is_some() {
        names.push(UNIFIED.to_string());
    }
    names
}

/// `rel` split into its hierarchy and the rest below that hierarchy's root.
fn split<'a>(hier: &Hierarchies, rel: &'a str) -> Option<(Which, &'a str)> {
    if pure_v2(hier) {
        return Some((Which::V2, rel));
    }
    let (first, rest) = rel.split_once('/').unwrap_or((rel, ""));
    if first == UNIFIED && hier.v2.is_some() {
        return Some((Which::V2, rest));
    }
    (0..hier.v1.len())
        .find(|&i| v1_name(hier, i).as_deref() == Some(first))
        .map(|i| (Which::V1(i), rest))
}

/// `a/b` joined, where `.` or empty stand for nothing.
fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty() && *p != ".")
        .collect::<Vec<_>>()
        .join("/")
}

impl Host {
    /// The host path (relative to the host root) behind `rel` (non-empty) for reader
    /// `tid`: below its container's cgroup in that hierarchy. Not found (`ENOENT`) when
    /// the reader's container cannot be told or has no cgroup there: unlike the virtual
    /// files this fails closed, since the host's whole tree is exactly what must not be
    /// shown. A container whose init another search is still looking for (before Linux
    /// 6.11, see `initscan`) is told to try again (`EAGAIN`) instead.
    pub fn cgroup_host_path(&self, tid: u32, rel: &str) -> Result<String> {
        let not_found = || Error::io(format!("cgroup/{rel}"), rustix::io::Errno::NOENT);
        let (which, rest) = split(&self.hier, rel).ok_or_else(not_found)?;
        if rest.split('/').any(|c| c == "..") {
            return Err(not_found());
        }
        let c = match self.container(tid) {
            Ok(c) => c,
            Err(e @ Error::InitScanBusy { .. }) => return Err(e),
            Err(_) => return Err(not_found()),
        };
        let (mount, own) = match which {
            Which::V1(i) => (
                self.hier.v1.get(i).map(|h| h.mount_point.as_str()),
                c.paths.v1_at(i),
            ),
            Which::V2 => (
                self.hier.v2.as_ref().map(|h| h.mount_point.as_str()),
                c.paths.unified(),
            ),
        };
        match (mount, own) {
            (Some(mount), Some(own)) => Ok(join(&[mount, own, rest])),
            _ => Err(not_found()),
        }
    }

    /// The entries of directory `rel` of `cgroup/` (`""`: the top) for reader `tid`.
    pub fn cgroup_entries(&self, tid: u32, rel: &str) -> Result<Vec<DirEntry>> {
        if rel.is_empty() && !pure_v2(&self.hier) {
            return Ok(hierarchy_names(&self.hier)
                .into_iter()
                .map(|name| DirEntry {
                    name,
                    kind: rustix::fs::FileType::Directory,
                })
                .collect());
        }
        let host = self.cgroup_host_path(tid, rel)?;
        self.root.entries(&host)
    }

    /// Pid list `host_rel` (a `cgroup.procs`, `tasks` or `cgroup.threads`) as reader
    /// `tid` numbers its processes: pids the reader's pid namespace cannot see are left
    /// out (a reader in the daemon's namespace sees them all).
    ///
    /// Each pid of a container's list is translated on its own: an `ioctl` from Linux
    /// 6.11 (1-2 µs here), before it a lookup in `/proc` (about 20 µs, so that an open
    /// of a list of 50 000 tasks holds a serving thread for about a second). Those
    /// threads serve every container: each container may have one list translated at a
    /// time and one more open waiting for it; its other opens meanwhile fail with
    /// `EAGAIN` (said once per container within the log budget) rather than hold every
    /// thread while neighbours wait.
    pub fn cgroup_pids(&self, tid: u32, host_rel: &str, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        let reader = NsId::of(&self.proc, tid)?;
        if reader == self.self_ns {
            let text = self.root.read_lossy(host_rel)?;
            for pid in pids(&text) {
                push_pid(out, pid);
            }
            return Ok(());
        }
        // A reader whose container cannot be told is gone (or its id was reused): a
        // key of its own would escape the bound (as in `initscan`).
        let owner = self
            .reader_owner(tid, reader)
            .ok_or(Error::NoCaller { tid })?
            .0;
        let mut waited = false;
        let _slot = loop {
            match self.listing.take(owner, &()) {
                Ok(s) => break s,
                Err(()) if !waited => {
                    // A relaying thread must not wait holding the lead.
                    (self.opts.before_slow_work)();
                    if !self.listing.wait(owner, false) {
                        return Err(self.refuse_list(tid, owner, reader));
                    }
                    waited = true;
                }
                Err(()) => return Err(self.refuse_list(tid, owner, reader)),
            }
        };
        (self.opts.before_slow_work)();
        let text = self.root.read_lossy(host_rel)?;
        // For `NS_GET_PID_IN_PIDNS` (one `ioctl` per pid, where `/proc` takes a link
        // and a status read).
        let mut ns_fd = pidns::open_ns(&self.proc, tid, reader).ok();
        for pid in pids(&text) {
            let shown = match ns_fd.as_ref().map(|fd| sys::host_tid_in_ns(fd, pid)) {
                Some(Ok(p)) => Some(p),
                // Gone, or not in the reader's namespace or below it.
                Some(Err(Errno::SRCH)) => None,
                Some(Err(e)) => {
                    // Before Linux 6.11: /proc, for this pid and the rest.
                    said_slow_lists(e);
                    ns_fd = None;
                    self.pid_in(reader, pid)
                }
                None => self.pid_in(reader, pid),
            };
            if let Some(p) = shown {
                push_pid(out, p);
            }
        }
        Ok(())
    }

    fn refuse_list(&self, tid: u32, owner: u64, reader: NsId) -> Error {
        let e = Error::PidListBusy { tid };
        self.log_refused(owner, reader, "pid_list_busy", &e);
        e
    }

    /// Host pid `pid` as numbered in `ns`, when it lives in `ns` itself. Without the
    /// kernel's translation (before 6.11) a process of a pid namespace nested below
    /// `ns` is left out too: `/proc` tells only its innermost and outermost numbers,
    /// not whether the levels between are `ns`.
    fn pid_in(&self, ns: NsId, pid: u32) -> Option<u32> {
        if NsId::of(&self.proc, pid).ok()? != ns {
            return None;
        }
        let status = self.proc.read_lossy(&format!("{pid}/status")).ok()?;
        procfile::pid::parse_status(&status).nspid_inner
    }
}

/// Say once per daemon that pid lists are translated through `/proc` (`NS_GET_PID_IN_PIDNS`
/// failed with `e`: before Linux 6.11, `ENOTTY`): 10-20 times slower, and processes of
/// nested pid namespaces left out.
fn said_slow_lists(e: Errno) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        tracing::info!(
            "cgroup/ pid lists are translated through /proc (NS_GET_PID_IN_PIDNS: {e}): \
             slower, and processes of pid namespaces nested in a container are left out"
        );
    });
}

fn pids(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.lines()
        .filter_map(|l| procfile::value::parse_u64(l.trim()))
        .filter_map(|p| u32::try_from(p).ok())
}

fn push_pid(out: &mut Vec<u8>, pid: u32) {
    out.extend_from_slice(pid.to_string().as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn joins_skip_dots_and_slashes() {
        assert_eq!(
            join(&["/sys/fs/cgroup/memory", ".", ""]),
            "sys/fs/cgroup/memory"
        );
        assert_eq!(
            join(&["/sys/fs/cgroup/unified/", "a/b", "c/d"]),
            "sys/fs/cgroup/unified/a/b/c/d"
        );
    }

    /// A reader that entered the fixture's container from outside (its parent is the
    /// host's pid 100) from a group of its own, more than 256 pids after the
    /// container's init: only a search of every process finds that init. While another
    /// such search holds the host's one (`initscan`), the reader is told to try again,
    /// not that its files do not exist; once it is free, the reader sees its container.
    #[test]
    fn a_reader_whose_init_search_is_taken_is_told_to_try_again() {
        let fixture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/hybrid");
        let tree = tempfile::tempdir().unwrap();
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(fixture.join("."))
            .arg(tree.path())
            .status()
            .unwrap();
        assert!(copied.success());
        let proc = tree.path().join("proc");
        let me = proc.join("5000");
        std::fs::create_dir_all(me.join("ns")).unwrap();
        let of_3001 = |f: &str| std::fs::read_to_string(proc.join("3001").join(f)).unwrap();
        let status = of_3001("status")
            .replace("3001", "5000")
            .replace("PPid:\t3000", "PPid:\t100");
        std::fs::write(me.join("status"), status).unwrap();
        let stat = of_3001("stat").replacen("3001 (node) S 3000", "5000 (node) S 100", 1);
        std::fs::write(me.join("stat"), stat).unwrap();
        let cgroup = of_3001("cgroup").replace("/system.slice/docker-abc123.scope", "/elsewhere");
        std::fs::write(me.join("cgroup"), cgroup).unwrap();
        std::os::unix::fs::symlink("pid:[4026532701]", me.join("ns/pid")).unwrap();
        let opts = crate::Options {
            resolver: crate::ResolverKind::Procfs,
            ..Default::default()
        };
        let host = Host::open(tree.path(), opts).unwrap();
        let rel = "memory/memory.limit_in_bytes";

        let held = host.full_scans.lock().unwrap();
        let e = host.cgroup_host_path(5000, rel).unwrap_err();
        assert_eq!(e.errno(), libc::EAGAIN, "{e}");
        drop(held);
        assert_eq!(
            host.cgroup_host_path(5000, rel).unwrap(),
            "sys/fs/cgroup/memory/system.slice/docker-abc123.scope/memory.limit_in_bytes"
        );
    }

    #[test]
    fn pid_lists_by_name() {
        assert!(lists_pids("memory/x/cgroup.procs"));
        assert!(lists_pids("tasks"));
        assert!(!lists_pids("memory/memory.stat"));
    }
}
