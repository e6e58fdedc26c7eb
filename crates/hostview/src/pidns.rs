//! Who is reading: from the FUSE caller's thread id to the init of its pid namespace.
//!
//! FUSE hands us the caller's *thread* id as seen from the daemon's pid namespace (the
//! host's). A container is identified by its pid namespace, and its cgroup is the one
//! of that namespace's init, as in LXCFS.

use std::os::fd::{AsFd, OwnedFd};

use procfile::pid::parse_status;
use rustix::fs::{Mode, OFlags, openat};

use crate::error::{Error, Result};
use crate::fsio::Dir;
use crate::observe::Resolution;
use crate::sys;

/// The identity of a pid namespace: its nsfs inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NsId(pub u64);

impl NsId {
    /// The target of a `/proc/<pid>/ns/pid` link: `pid:[4026531836]`.
    pub fn parse(link: &[u8]) -> Option<NsId> {
        let s = std::str::from_utf8(link).ok()?;
        let inner = s.strip_prefix("pid:[")?.strip_suffix(']')?;
        procfile::value::parse_u64(inner).map(NsId)
    }

    /// The pid namespace of `pid` (a tid works too: `/proc/<tid>` resolves though it is
    /// not listed).
    pub fn of(proc: &Dir, pid: u32) -> Result<NsId> {
        NsId::at(proc, &format!("{pid}/ns/pid"))
    }

    /// The pid namespace whose link is `rel` in `dir` (`self/ns/pid` in `/proc`,
    /// `ns/pid` in a process's directory).
    pub fn at(dir: &Dir, rel: &str) -> Result<NsId> {
        let link = dir.readlink(rel)?;
        NsId::parse(link.as_bytes()).ok_or_else(|| Error::parse(dir.path_of(rel)))
    }
}

/// How the daemon finds a namespace's init.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolverKind {
    /// The ioctl where the kernel has it, else the `/proc` walk.
    #[default]
    Auto,
    Ioctl,
    Procfs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitResolver {
    /// `NS_GET_TGID_FROM_PIDNS` on `/proc/<tid>/ns/pid`: one open and one ioctl.
    Ioctl,
    /// Kernels before 6.11: follow `PPid` while the parent shares the namespace, looking
    /// for the process whose innermost `NSpid` is 1; processes that entered with
    /// `setns` (`docker exec`, `nsenter`) have parents outside, so the caller searches
    /// processes (see `Host::resolve_init`). Callers cache the answer per namespace.
    Procfs,
}

impl InitResolver {
    /// Pick a resolver. `Auto` probes the ioctl on our own namespace, where the answer
    /// must be 1.
    pub fn select(kind: ResolverKind, proc: &Dir) -> InitResolver {
        match kind {
            ResolverKind::Ioctl => InitResolver::Ioctl,
            ResolverKind::Procfs => InitResolver::Procfs,
            ResolverKind::Auto => {
                if ioctl_works(proc) {
                    InitResolver::Ioctl
                } else {
                    InitResolver::Procfs
                }
            }
        }
    }

    /// Host pid of the init of `ns`, the pid namespace of thread `tid`, by any means,
    /// a scan of every process included.
    pub fn resolve(self, proc: &Dir, tid: u32, ns: NsId) -> Result<u32> {
        match self.resolve_cheaply(proc, tid, ns)? {
            Some((pid, _)) => Ok(pid),
            None => search_every_process(proc, tid, ns),
        }
    }

    /// The init of `ns` where a few reads tell it, and how: the ioctl, or following
    /// parents. `Ok(None)` when only a search of processes can (the procfs resolver, a
    /// reader that entered with `setns`).
    pub fn resolve_cheaply(
        self,
        proc: &Dir,
        tid: u32,
        ns: NsId,
    ) -> Result<Option<(u32, Resolution)>> {
        Ok(match self {
            InitResolver::Ioctl => Some((resolve_ioctl(proc, tid)?, Resolution::Ioctl)),
            InitResolver::Procfs => {
                walk_parents(proc, tid, ns)?.map(|pid| (pid, Resolution::ProcfsParents))
            }
        })
    }
}

/// Whether `NS_GET_TGID_FROM_PIDNS` exists on this kernel.
pub fn ioctl_works(proc: &Dir) -> bool {
    matches!(resolve_ioctl(proc, 0), Ok(1))
}

/// `tid == 0` probes with our own namespace.
fn resolve_ioctl(proc: &Dir, tid: u32) -> Result<u32> {
    let rel = if tid == 0 {
        "self/ns/pid".to_string()
    } else {
        format!("{tid}/ns/pid")
    };
    let fd = openat(
        proc.fd(),
        rel.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(proc.path_of(&rel), e))?;
    sys::ns_pid_to_host(fd.as_fd(), 1).map_err(|e| Error::io(proc.path_of(&rel), e))
}

/// Parents are followed at most this far; a pid namespace is rarely more than a few
/// levels below its init, and a bound keeps a corrupt tree from looping.
const MAX_WALK: usize = 64;

/// The init of `ns` up the parents of `tid` that share it, `None` when the walk leaves
/// the namespace first.
fn walk_parents(proc: &Dir, tid: u32, ns: NsId) -> Result<Option<u32>> {
    let status = read_status(proc, tid)?;
    let mut pid = status.tgid.unwrap_or(tid);
    let mut current = if pid == tid {
        status
    } else {
        read_status(proc, pid)?
    };
    for _ in 0..MAX_WALK {
        if current.nspid_inner == Some(1) {
            // `tid` may have died and its id gone to another namespace's init.
            return Ok((NsId::of(proc, pid).ok() == Some(ns)).then_some(pid));
        }
        let Some(parent) = current.ppid.filter(|&p| p > 0) else {
            break;
        };
        if NsId::of(proc, parent).ok() != Some(ns) {
            break;
        }
        pid = parent;
        current = read_status(proc, pid)?;
    }
    Ok(None)
}

/// The first of `pids` that is the init of `ns`: in `ns`, and pid 1 there. A candidate
/// is looked at again through one handle of its `/proc` directory, so that both
/// answers are of one process even if its pid was freed and taken meanwhile.
pub fn find_init(proc: &Dir, ns: NsId, pids: impl IntoIterator<Item = u32>) -> Option<u32> {
    pids.into_iter().find(|&pid| {
        NsId::of(proc, pid).ok() == Some(ns)
            && proc.subdir(&pid.to_string()).is_ok_and(|dir| {
                let status = dir.read_lossy("status").map(|t| parse_status(&t));
                status.is_ok_and(|s| s.nspid_inner == Some(1))
                    && NsId::at(&dir, "ns/pid").ok() == Some(ns)
            })
    })
}

/// The init of `ns` among every process in `proc`, for reader `tid`.
pub fn search_every_process(proc: &Dir, tid: u32, ns: NsId) -> Result<u32> {
    find_init(proc, ns, proc.numeric_entries()?).ok_or(Error::InitNotFound { tid })
}

fn read_status(proc: &Dir, pid: u32) -> Result<procfile::pid::ProcStatus> {
    let text = proc.read_lossy(&format!("{pid}/status"))?;
    Ok(parse_status(&text))
}

/// Thread `tid`'s pid namespace, opened, when it is still `ns` (found earlier by its
/// link): `ESRCH` when the thread died and its id went to another namespace's.
pub fn open_ns(proc: &Dir, tid: u32, ns: NsId) -> Result<OwnedFd> {
    let rel = format!("{tid}/ns/pid");
    let err = |e| Error::io(proc.path_of(&rel), e);
    let fd = openat(
        proc.fd(),
        rel.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(err)?;
    if rustix::fs::fstat(&fd).map_err(err)?.st_ino != ns.0 {
        return Err(err(rustix::io::Errno::SRCH));
    }
    Ok(fd)
}

/// The pid namespace a reader's handles and PSI triggers are charged to: the outermost
/// one below `ours` on the way up from `tid`'s, so that the namespaces a container
/// makes inside itself (`unshare -p`, a nested runtime) share its bounds rather than
/// each getting bounds of its own. The kernel nests pid namespaces at most 32 deep.
/// `ns` is the namespace the caller found `tid` in: a thread that died and whose id
/// went to another namespace's is refused rather than answered for.
pub fn outermost(proc: &Dir, tid: u32, ns: NsId, ours: NsId) -> Result<NsId> {
    let rel = format!("{tid}/ns/pid");
    let err = |e| Error::io(proc.path_of(&rel), e);
    let mut fd = open_ns(proc, tid, ns)?;
    let mut here = ns;
    if here == ours {
        return Ok(here);
    }
    for _ in 0..MAX_PID_NS_DEPTH {
        let parent = match sys::ns_parent(&fd) {
            Ok(p) => p,
            // The parent is not ours to see: `here` is as far out as we can tell.
            Err(rustix::io::Errno::PERM) => return Ok(here),
            Err(e) => return Err(err(e)),
        };
        let up = NsId(rustix::fs::fstat(&parent).map_err(err)?.st_ino);
        if up == ours {
            return Ok(here);
        }
        (fd, here) = (parent, up);
    }
    Err(Error::parse(proc.path_of(&rel)))
}

/// `MAX_PID_NS_LEVEL` in the kernel.
const MAX_PID_NS_DEPTH: usize = 32;

#[cfg(test)]
mod owner_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A reader in our own namespace is charged to it (the nested case, a container's
    /// `unshare -p`, is `e2e_hostile`'s).
    #[test]
    fn the_walk_stops_at_ours() {
        let proc = Dir::open(std::path::Path::new("/proc")).unwrap();
        let me = std::process::id();
        let ns = NsId::of(&proc, me).unwrap();
        assert_eq!(outermost(&proc, me, ns, ns).unwrap(), ns);
        // Asked for a namespace the thread is not in: refused, not answered.
        assert!(outermost(&proc, me, NsId(ns.0 + 1), ns).is_err());
    }
}
