//! `/proc/vmstat`: the host's event counters since the container started (see
//! [`procfile::render::vmstat`]), for tools that divide them by `/proc/stat`'s
//! container CPU time.

use crate::Host;
use crate::cache::Container;
use crate::error::Result;
use crate::files::VirtualFile;
use crate::reason::HostReason;

impl Host {
    pub(crate) fn render_vmstat(&self, c: &Container, out: &mut Vec<u8>) -> Result<()> {
        if c.ns.is_none() {
            return self.host_instead(VirtualFile::Vmstat, out, HostReason::HostReader);
        }
        let Some(start) = c.start_ns else {
            return self.host_instead(VirtualFile::Vmstat, out, HostReason::NoStartTime);
        };
        let now = self.boottime_ns()?;
        let host = self.root.read_string(VirtualFile::Vmstat.host_path())?;
        procfile::render::vmstat(&host, (now.saturating_sub(start), now), out);
        Ok(())
    }
}
