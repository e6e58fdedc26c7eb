//! Finding a pid namespace's init by searching processes, on kernels without
//! `NS_GET_TGID_FROM_PIDNS` (before 6.11) when following parents does not reach it: a
//! reader that entered with `setns` (`docker exec`, `nsenter`, `lxc-attach`) or one
//! forked by such a process.
//!
//! Looking at every process costs two reads per process on the host, tens of
//! milliseconds on a host of thousands, and a container can ask for it at will: a pid
//! namespace made afresh whose reader is not a descendant of its init, over and over
//! (`unshare -p` needs only a user namespace). So:
//! - the processes of the reader's own cgroup and the groups around it are looked at
//!   first: runtimes put an exec'd process in its container's cgroup, beside init or
//!   just above or beside its group, and the cost is the container's size rather than
//!   the host's; then the pids just below the reader's;
//! - a container (by its outermost pid namespace, as in `countslots`) has one search
//!   under way at a time, and one more reader may wait for it; and the host has one
//!   search of every process under way at a time. A reader that finds its container's
//!   search, or the host's, taken is answered as when no init is found (the host's
//!   file, with the reason counted and logged: `HostReason::InitScanBusy`), rather
//!   than holding a serving thread that every container shares.

use crate::cgroup::CgroupPaths;
use crate::countslots::Slot;
use crate::error::{Error, Result};
use crate::observe::Resolution;
use crate::pidns::{NsId, find_init};
use crate::{Host, tasks};

/// The pids just below the reader's looked at before every process is: a namespace
/// made just before its reader was forked has its init a few pids below the reader's
/// (pids are handed out in sequence), and a tenant making them over and over is
/// answered after a few reads, without listing `/proc` (milliseconds on a host of
/// thousands of processes).
const JUST_BELOW: u32 = 256;

/// At most this many processes of the reader's cgroup are looked at before every
/// process is.
const MAX_NEIGHBOURS: usize = 4096;

impl Host {
    /// The init of `ns`, reader `tid`'s pid namespace, and how it was found. A search
    /// keeps its container's slot in `slot` until the caller has cached the answer, so
    /// that the reader waiting for it finds it there.
    pub(crate) fn resolve_init<'h>(
        &'h self,
        tid: u32,
        ns: NsId,
        slot: &mut Option<Slot<'h, NsId>>,
    ) -> (Result<u32>, Resolution) {
        match self.resolver.resolve_cheaply(&self.proc, tid, ns) {
            (Ok(Some(pid)), how) => (Ok(pid), how),
            (Err(e), how) => (Err(e), how),
            (Ok(None), _) => self.search_for_init(tid, ns, slot),
        }
    }

    fn search_for_init<'h>(
        &'h self,
        tid: u32,
        ns: NsId,
        slot: &mut Option<Slot<'h, NsId>>,
    ) -> (Result<u32>, Resolution) {
        // A reader whose owner cannot be told is gone (or its id was reused): nobody
        // is waiting for this answer, and a key of its own would escape the bound.
        let Some(owner) = self.walk_owner(tid, ns).map(|o| o.0) else {
            return (Err(Error::NoCaller { tid }), Resolution::ProcfsScan);
        };
        let mut waited = false;
        *slot = loop {
            match self.scanning.take(owner, &ns) {
                Ok(s) => break Some(s),
                Err(_) if !waited && self.scanning.wait(owner, false) => waited = true,
                Err(_) => return (Err(Error::InitScanBusy { tid }), Resolution::ProcfsScan),
            }
        };
        if waited {
            // The search this reader waited for may have been for its namespace.
            let init = self.cache.init_of(ns);
            if let Some(i) = init.filter(|&i| NsId::of(&self.proc, i).ok() == Some(ns)) {
                return (Ok(i), Resolution::CachedInit);
            }
        }
        let near = self.cgroup_neighbours(tid);
        let just_below = (tid.saturating_sub(JUST_BELOW)..tid).rev();
        if let Some(i) = find_init(&self.proc, ns, near.into_iter().chain(just_below)) {
            return (Ok(i), Resolution::ProcfsNear);
        }
        let _every = match self.full_scans.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return (Err(Error::InitScanBusy { tid }), Resolution::ProcfsScan);
            }
        };
        let found = match self.proc.numeric_entries() {
            Ok(pids) => find_init(&self.proc, ns, pids).ok_or(Error::InitNotFound { tid }),
            Err(e) => Err(e),
        };
        (found, Resolution::ProcfsScan)
    }

    /// The processes near reader `tid`'s cgroup (in the hierarchy tasks are counted
    /// in), at most [`MAX_NEIGHBOURS`] of them from at most [`MAX_GROUPS`] cgroups: its
    /// own, those below it (a container's systemd keeps init in `init.scope` below the
    /// group `docker exec` joins), then its parent and the parent's other groups (LXC
    /// attaches to a `.lxc` group beside the container's init), unless the parent is
    /// the hierarchy's root, whose groups are every container's. None when the cgroup
    /// cannot be read.
    fn cgroup_neighbours(&self, tid: u32) -> Vec<u32> {
        let Ok(paths) = CgroupPaths::read(&self.hier, &self.proc, tid) else {
            return Vec::new();
        };
        let (Some((_, dir, _)), Some(path)) = (
            tasks::hierarchy(&self.hier),
            tasks::container_path(&self.hier, &paths),
        ) else {
            return Vec::new();
        };
        let mut near = Near {
            dir,
            pids: Vec::new(),
            groups: 0,
        };
        near.subtree(path, None);
        if let Some(cut) = path.rfind('/') {
            near.subtree(&path[..cut], Some(path));
        }
        near.pids
    }
}

/// At most this many cgroups are listed for processes near a reader.
const MAX_GROUPS: usize = 64;

/// Processes gathered from the cgroups near a reader's (see `cgroup_neighbours`).
struct Near<'d> {
    dir: &'d crate::fsio::Dir,
    pids: Vec<u32>,
    groups: usize,
}

impl Near<'_> {
    /// The processes of `top` and the groups below it, nearest first, but for those of
    /// `seen` and below (listed already).
    fn subtree(&mut self, top: &str, seen: Option<&str>) {
        let mut queue = std::collections::VecDeque::from([top.to_string()]);
        while let Some(group) = queue.pop_front() {
            if self.groups >= MAX_GROUPS || self.pids.len() >= MAX_NEIGHBOURS {
                return;
            }
            self.groups += 1;
            let Ok(here) = self.dir.listable(&group) else {
                continue;
            };
            if let Ok(Some(text)) = here.read_optional("cgroup.procs") {
                let room = MAX_NEIGHBOURS - self.pids.len();
                self.pids.extend(
                    text.lines()
                        .filter_map(procfile::value::parse_u64)
                        .filter_map(|n| u32::try_from(n).ok())
                        .take(room),
                );
            }
            for e in here.into_entries().unwrap_or_default() {
                let child = format!("{group}/{}", e.name);
                if e.kind == rustix::fs::FileType::Directory && Some(child.as_str()) != seen {
                    queue.push_back(child);
                }
            }
        }
    }
}
