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
use crate::pidns::{NsId, find_init, search_every_process};
use crate::{Host, tasks};

/// The pids just below the reader's looked at before every process is: a namespace
/// made just before its reader was forked has its init a few pids below the reader's
/// (pids are handed out in sequence), and a tenant making them over and over is
/// answered after a few reads, without listing `/proc` (milliseconds on a host of
/// thousands of processes).
const JUST_BELOW: u32 = 256;

/// At most this many processes near the reader's cgroup are looked at before every
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
    ) -> Result<(u32, Resolution)> {
        match self.resolver.resolve_cheaply(&self.proc, tid, ns)? {
            Some(found) => Ok(found),
            None => self.search_for_init(tid, ns, slot),
        }
    }

    fn search_for_init<'h>(
        &'h self,
        tid: u32,
        ns: NsId,
        slot: &mut Option<Slot<'h, NsId>>,
    ) -> Result<(u32, Resolution)> {
        // A reader whose owner cannot be told is gone (or its id was reused): nobody
        // is waiting for this answer, and a key of its own would escape the bound.
        let owner = self.walk_owner(tid, ns).ok_or(Error::NoCaller { tid })?.0;
        let mut waited = false;
        *slot = loop {
            match self.scanning.take(owner, &ns) {
                Ok(s) => break Some(s),
                Err(_) if !waited && self.scanning.wait(owner, false) => waited = true,
                Err(_) => return Err(Error::InitScanBusy { tid }),
            }
        };
        if waited {
            // The search this reader waited for may have been for its namespace.
            let init = self.cache.init_of(ns);
            if let Some(i) = init.filter(|&i| NsId::of(&self.proc, i).ok() == Some(ns)) {
                return Ok((i, Resolution::CachedInit));
            }
        }
        let just_below = (tid.saturating_sub(JUST_BELOW)..tid).rev();
        let near = self
            .near_init(tid, ns)
            .or_else(|| find_init(&self.proc, ns, just_below));
        if let Some(i) = near {
            return Ok((i, Resolution::ProcfsNear));
        }
        let _every = match self.full_scans.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(Error::InitScanBusy { tid });
            }
        };
        let init = search_every_process(&self.proc, tid, ns)?;
        Ok((init, Resolution::ProcfsScan))
    }

    /// The init of `ns` among the processes near reader `tid`'s cgroup (in the
    /// hierarchy tasks are counted in), group by group: its own, those below it (a
    /// container's systemd keeps init in `init.scope` below the group `docker exec`
    /// joins), then its parent and the parent's other groups (LXC attaches to a `.lxc`
    /// group beside the container's init), unless the parent is the hierarchy's root,
    /// whose groups are every container's. At most [`MAX_NEIGHBOURS`] processes from
    /// at most [`MAX_GROUPS`] groups, reading at most [`MAX_ENTRIES`] directory
    /// entries.
    fn near_init(&self, tid: u32, ns: NsId) -> Option<u32> {
        let paths = CgroupPaths::read(&self.hier, &self.proc, tid).ok()?;
        let (_, dir, _) = tasks::hierarchy(&self.hier)?;
        let path = tasks::container_path(&self.hier, &paths)?;
        let mut near = Near {
            host: self,
            dir,
            ns,
            pids: 0,
            groups: 0,
            entries: 0,
        };
        near.subtree(path, None).or_else(|| {
            let cut = path.rfind('/')?;
            near.subtree(&path[..cut], Some(path))
        })
    }
}

/// At most this many cgroups are listed for processes near a reader.
const MAX_GROUPS: usize = 64;

/// At most this many directory entries are read to find those groups: a tenant's
/// group of 100 000 children must not cost a search 100 000 of them.
const MAX_ENTRIES: usize = 16_384;

/// A search of the groups near a reader's (see `Host::near_init`), and what it has
/// spent.
struct Near<'h> {
    host: &'h Host,
    dir: &'h crate::fsio::Dir,
    ns: NsId,
    pids: usize,
    groups: usize,
    entries: usize,
}

impl Near<'_> {
    /// The init among the processes of `top` and the groups below it, nearest first,
    /// but for `seen` and below (searched already).
    fn subtree(&mut self, top: &str, seen: Option<&str>) -> Option<u32> {
        let mut queue = std::collections::VecDeque::from([top.to_string()]);
        while let Some(group) = queue.pop_front() {
            if self.groups >= MAX_GROUPS || self.pids >= MAX_NEIGHBOURS {
                return None;
            }
            self.groups += 1;
            let Ok(here) = self.dir.listable(&group) else {
                continue;
            };
            if let Ok(Some(text)) = here.read_optional("cgroup.procs") {
                let room = MAX_NEIGHBOURS - self.pids;
                let pids: Vec<u32> = text
                    .lines()
                    .filter_map(procfile::value::parse_u64)
                    .filter_map(|n| u32::try_from(n).ok())
                    .take(room)
                    .collect();
                self.pids += pids.len();
                if let Some(init) = find_init(&self.host.proc, self.ns, pids) {
                    return Some(init);
                }
            }
            // Only as many groups as can still be searched, and no more entries than
            // the search's budget.
            let room = MAX_GROUPS.saturating_sub(self.groups + queue.len());
            let budget = MAX_ENTRIES.saturating_sub(self.entries);
            let (mut read, mut queued) = (0, 0);
            let _ = here.each_entry(|name, kind| {
                read += 1;
                let child = format!("{group}/{name}");
                if kind == rustix::fs::FileType::Directory && Some(child.as_str()) != seen {
                    queue.push_back(child);
                    queued += 1;
                }
                read < budget && queued < room
            });
            self.entries += read;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::Path;

    /// A tenant's group of thousands of children costs a search near a reader a
    /// listing of the groups it can still search, not of every child.
    #[test]
    fn a_search_near_a_reader_reads_a_bounded_number_of_groups_and_entries() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/hybrid");
        let host = Host::open(&fixture, crate::Options::default()).unwrap();
        let tree = tempfile::tempdir().unwrap();
        for i in 0..5000 {
            std::fs::create_dir_all(tree.path().join(format!("tenant/c{i}"))).unwrap();
        }
        let dir = crate::fsio::Dir::open(tree.path()).unwrap();
        let mut near = Near {
            host: &host,
            dir: &dir,
            ns: NsId(1),
            pids: 0,
            groups: 0,
            entries: 0,
        };
        assert_eq!(near.subtree("tenant", None), None);
        assert_eq!(near.groups, MAX_GROUPS);
        assert!(
            near.entries < 2 * MAX_GROUPS,
            "{} entries read",
            near.entries
        );
    }
}
