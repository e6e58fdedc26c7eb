//! sysinfo(2) for a container: the same numbers its `/proc/meminfo`, `/proc/swaps`,
//! `/proc/uptime` and `/proc/loadavg` show, from the same code, for the seccomp agent
//! that answers the system call in its place.

use std::time::Instant;

use procfile::sysinfo::ContainerInfo;

use crate::Host;
use crate::cache::Container;
use crate::error::Result;

impl Host {
    /// What the caller with host thread id `tid` (a container's process stopped in
    /// sysinfo(2)) has of its own. Each field is `None` exactly where its file would
    /// serve the host's content; everything is `None` while the host's files are served
    /// to every reader (SIGUSR2).
    ///
    /// Like the files' renderings, one answer serves a container's callers for
    /// [`FRESH`](crate::rendercache::FRESH): a program calling sysinfo in a loop costs
    /// a cache lookup per call, not a read of its cgroup files.
    pub fn sysinfo(&self, tid: u32) -> Result<ContainerInfo> {
        if self.serves_host_files() {
            return Ok(ContainerInfo::default());
        }
        let c = self.container(tid)?;
        // Uptime falls back to the caller's own start when init's is unknown: then the
        // answer is the caller's, not the container's.
        let shareable = self.real_root && c.ns.is_some() && c.start_ns.is_some();
        let now = Instant::now();
        if shareable {
            if let Some(info) = self.sysinfos.get(c.key(), now) {
                return Ok(info);
            }
        }
        (self.opts.before_slow_work)();
        let info = self.sysinfo_fresh(&c, tid)?;
        if shareable {
            self.sysinfos.put(c.key().clone(), info.clone(), now);
        }
        Ok(info)
    }

    fn sysinfo_fresh(&self, c: &Container, tid: u32) -> Result<ContainerInfo> {
        let load = self.load_values(c)?.ok();
        Ok(ContainerInfo {
            uptime_ns: self.sysinfo_uptime(c, tid)?,
            load: load.map(|(load, _)| load),
            // The total of `/proc/loadavg`'s `running/total`.
            procs: load.map(|(_, tasks)| tasks.total),
            mem: self.memory_values(c)?.ok().map(|(_, vals)| vals),
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
