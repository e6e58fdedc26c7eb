//! The activity files: loadavg, diskstats, pressure and slabinfo (vmstat in its own
//! module).

use procfile::diskstats::{self, Dev, DevIo};
use procfile::loadavg::{self, LoadAvg, TaskCounts};

use crate::cache::Container;
use crate::cgroup::{Backend, Controller};
use crate::error::Result;
use crate::files::VirtualFile;
use crate::reason::HostReason;
use crate::{Host, tasks};

impl Host {
    pub(crate) fn render_activity(
        &self,
        file: VirtualFile,
        c: &Container,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        match file {
            VirtualFile::Loadavg => self.render_loadavg(c, out),
            VirtualFile::Diskstats => self.render_diskstats(c, out),
            VirtualFile::PressureCpu | VirtualFile::PressureMemory | VirtualFile::PressureIo => {
                self.render_pressure(file, c, out)
            }
            VirtualFile::Slabinfo => self.render_slabinfo(c, out),
            VirtualFile::Vmstat => self.render_vmstat(c, out),
            _ => self.host_instead(file, out, HostReason::NotVirtualized),
        }
    }

    fn render_loadavg(&self, c: &Container, out: &mut Vec<u8>) -> Result<()> {
        match self.load_values(c)? {
            Ok((load, tasks)) => {
                loadavg::render(&load, &tasks, out);
                Ok(())
            }
            Err(why) => self.host_instead(VirtualFile::Loadavg, out, why),
        }
    }

    /// The container's load and task counts, as `/proc/loadavg` and sysinfo(2) show
    /// them; `Err(why)` where the host's are shown instead.
    pub(crate) fn load_values(
        &self,
        c: &Container,
    ) -> Result<std::result::Result<(LoadAvg, TaskCounts), HostReason>> {
        let Some(path) = tasks::container_path(&self.hier, &c.paths) else {
            return Ok(Err(HostReason::NoTaskCgroup));
        };
        if !self.loads.running() {
            return Ok(Err(HostReason::LoadavgOff));
        }
        if path == "." {
            return Ok(Err(HostReason::LoadRoot));
        }
        // A container younger than one sampling interval has no sample yet: load 0.
        let load = self.loads.get(path).unwrap_or_default();
        let counts = self.task_counts(c)?;
        let tasks = TaskCounts {
            // As in /proc/stat: the reader itself is running.
            running: counts.running.max(1),
            total: counts.total,
            last_pid: counts.last_pid.unwrap_or(0),
        };
        Ok(Ok((load, tasks)))
    }

    fn render_diskstats(&self, c: &Container, out: &mut Vec<u8>) -> Result<()> {
        let Some(io) = self.container_io(c)? else {
            return self.host_instead(VirtualFile::Diskstats, out, HostReason::IoRoot);
        };
        let host = self.root.read_string(VirtualFile::Diskstats.host_path())?;
        diskstats::render(&host, &io, out);
        Ok(())
    }

    /// The container's I/O per device; `None` at the root (the host's own file).
    ///
    /// v1 accounts I/O in `blkio.throttle.*` only for devices with a throttle rule in
    /// the cgroup's hierarchy on current kernels (the CFQ-era files are gone since 5.0);
    /// without a rule those files are empty and the container's diskstats is empty.
    fn container_io(&self, c: &Container) -> Result<Option<Vec<(Dev, DevIo)>>> {
        let (Some(backend), Some((dir, path))) = (
            self.hier.backend(Controller::Io),
            c.paths.locate(&self.hier, Controller::Io),
        ) else {
            return Ok(None);
        };
        if path == "." {
            return Ok(None);
        }
        Ok(Some(match backend {
            Backend::V2 => diskstats::parse_io_stat(&dir.read_string(&format!("{path}/io.stat"))?),
            Backend::V1(_) => diskstats::parse_blkio(
                &dir.read_string(&format!("{path}/blkio.throttle.io_serviced_recursive"))?,
                &dir.read_string(&format!("{path}/blkio.throttle.io_service_bytes_recursive"))?,
            ),
        }))
    }

    /// The container's own PSI file from the v2 hierarchy (also on hybrid hosts, where
    /// it has no controllers but still tracks pressure); the host's only where the
    /// container has none.
    fn render_pressure(&self, file: VirtualFile, c: &Container, out: &mut Vec<u8>) -> Result<()> {
        let (Some(v2), Some(path)) = (self.hier.v2.as_ref(), c.paths.unified()) else {
            return self.host_instead(file, out, HostReason::NoCgroup2);
        };
        if path == "." {
            return self.host_instead(file, out, HostReason::Cgroup2Root);
        }
        let name = match file {
            VirtualFile::PressureCpu => "cpu.pressure",
            VirtualFile::PressureMemory => "memory.pressure",
            _ => "io.pressure",
        };
        match v2.dir.read_optional(&format!("{path}/{name}"))? {
            Some(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(())
            }
            None => self.host_instead(file, out, HostReason::NoPressure),
        }
    }

    /// v1 `memory.kmem.slabinfo` where the kernel has it; else the host's file.
    fn render_slabinfo(&self, c: &Container, out: &mut Vec<u8>) -> Result<()> {
        if let (Some(Backend::V1(_)), Some((dir, path))) = (
            self.hier.backend(Controller::Memory),
            c.paths.locate(&self.hier, Controller::Memory),
        ) {
            if path != "." {
                if let Some(text) = dir.read_optional(&format!("{path}/memory.kmem.slabinfo"))? {
                    if !text.trim().is_empty() {
                        out.extend_from_slice(text.as_bytes());
                        return Ok(());
                    }
                }
            }
        }
        self.host_instead(VirtualFile::Slabinfo, out, HostReason::NoSlabinfo)
    }
}
