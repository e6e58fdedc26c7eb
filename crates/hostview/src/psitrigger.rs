//! PSI triggers (`--enable-psi-poll`): a trigger a reader writes to its
//! `proc/pressure/*` is registered on its container's own cgroup pressure file, whose
//! descriptor the caller keeps open (closing it removes the trigger) and polls for
//! `POLLPRI`. The neighbour's pressure never reaches it: the kernel fires a cgroup's
//! trigger from that cgroup's stalls alone.

use std::os::fd::OwnedFd;

use procfile::psi::Trigger;
use rustix::io::Errno;

use crate::Host;
use crate::error::{Error, Result};
use crate::files::VirtualFile;

/// `CAP_SYS_RESOURCE`'s bit in `CapEff`.
const CAP_SYS_RESOURCE: u32 = 24;

impl Host {
    /// Register the trigger `write` (the bytes a reader `tid` wrote to `file`) on its
    /// container's pressure file; the descriptor holding it. `EINVAL` for what the
    /// kernel refuses (checked here first, as for a writer with the reader's
    /// capabilities, so that only a well-formed trigger is ever written to the host's
    /// file), `EOPNOTSUPP` when the container has no pressure file of its own, and the
    /// kernel's errno when it refuses the registration.
    pub fn psi_trigger(&self, tid: u32, file: VirtualFile, write: &[u8]) -> Result<OwnedFd> {
        let name = match file {
            VirtualFile::PressureCpu => "cpu",
            VirtualFile::PressureMemory => "memory",
            VirtualFile::PressureIo => "io",
            _ => return Err(Error::io(file.host_path(), Errno::ACCESS)),
        };
        let trigger = Trigger::parse(write, self.has_sys_resource(tid))
            .ok_or_else(|| Error::io(file.host_path(), Errno::INVAL))?;
        let c = self.container(tid)?;
        let bytes = trigger.to_write();
        match (self.hier.v2.as_ref(), c.paths.unified()) {
            (Some(v2), Some(path)) if path != "." => v2
                .dir
                .open_and_write(&format!("{path}/{name}.pressure"), &bytes),
            // A host reader in the root group: the system-wide file, as without us.
            _ if c.ns.is_none() => self.root.open_and_write(file.host_path(), &bytes),
            _ => Err(Error::io(file.host_path(), Errno::OPNOTSUPP)),
        }
    }

    /// The reader holds `CAP_SYS_RESOURCE` (the kernel lets such writers pick any
    /// window, others only multiples of 2 s).
    fn has_sys_resource(&self, tid: u32) -> bool {
        self.proc
            .read_lossy(&format!("{tid}/status"))
            .ok()
            .and_then(|s| procfile::pid::cap_eff(&s))
            .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
    }
}
