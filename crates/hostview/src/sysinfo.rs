//! sysinfo(2) for a container: the same numbers its `/proc/meminfo`, `/proc/swaps`,
//! `/proc/uptime` and `/proc/loadavg` show, from the same code, for the seccomp agent
//! that answers the system call in its place.

use procfile::sysinfo::ContainerInfo;

use crate::Host;
use crate::cache::Container;
use crate::error::Result;

impl Host {
    /// What the caller with host thread id `tid` (a container's process stopped in
    /// sysinfo(2)) has of its own. Each field is `None` exactly where its file would
    /// serve the host's content; everything is `None` while the host's files are served
    /// to every reader (SIGUSR2).
    pub fn sysinfo(&self, tid: u32) -> Result<ContainerInfo> {
        if self.serves_host_files() {
            return Ok(ContainerInfo::default());
        }
        let c = self.container(tid)?;
        let load = self.load_values(&c)?.ok();
        Ok(ContainerInfo {
            uptime_ns: self.sysinfo_uptime(&c, tid)?,
            load: load.map(|(load, _)| load),
            // The total of `/proc/loadavg`'s `running/total`.
            procs: load.map(|(_, tasks)| tasks.total),
            mem: self.memory_values(&c)?.ok().map(|(_, vals)| vals),
        })
    }

    fn sysinfo_uptime(&self, c: &Container, tid: u32) -> Result<Option<u64>> {
        // `/proc/uptime` is the host's where the container has no CPU view.
        if self.view_of(c)?.is_none() {
            return Ok(None);
        }
        Ok(self.uptime_ns(c, tid)?.ok())
    }
}
