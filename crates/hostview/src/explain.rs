//! Why a reader gets what it gets. `lxcfs-rs check --pid` asks, file by file, whether
//! the container's own content is rendered or the host's file stands in for it, and
//! why. The answer comes from the rendering code that serves reads, run once more: each
//! place where a rendering gives the host's file instead says why through
//! [`Host::host_instead`], so what `check` reports cannot drift from what is served.

use std::cell::Cell;

use crate::Host;
use crate::error::Result;
use crate::files::VirtualFile;
use crate::reason::HostReason;

thread_local! {
    /// The reason the last rendering on this thread served the host's file. A thread
    /// renders one file at a time, so it is read back right after the rendering.
    static HOST_INSTEAD: Cell<Option<HostReason>> = const { Cell::new(None) };
}

/// Where a reader's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Rendered from the container's cgroups.
    Container,
    /// The host's own file, and why.
    Host(String),
}

impl Host {
    /// The host's `file` where the container has no content of its own, for `why`.
    pub(crate) fn host_instead(
        &self,
        file: VirtualFile,
        out: &mut Vec<u8>,
        why: HostReason,
    ) -> Result<()> {
        HOST_INSTEAD.with(|r| r.set(Some(why)));
        self.host_file(file, out)
    }

    /// Forget any earlier [`host_instead`](Self::host_instead) on this thread, before a
    /// rendering.
    pub(crate) fn clear_host_instead() {
        HOST_INSTEAD.with(|r| r.set(None));
    }

    /// Why the rendering just made on this thread is the host's file, if it is.
    pub(crate) fn took_host_instead() -> Option<HostReason> {
        HOST_INSTEAD.with(Cell::take)
    }

    /// Where reader `tid`'s `file` comes from now: a fresh rendering (no cache), whose
    /// failure is what makes [`Host::rendering`] serve the host's file.
    pub fn explain(&self, file: VirtualFile, tid: u32) -> Source {
        if self.serves_host_files() {
            return Source::Host("every reader is served the host's files (SIGUSR2)".into());
        }
        HOST_INSTEAD.with(|r| r.set(None));
        let mut out = Vec::new();
        let rendered = self
            .container(tid)
            .and_then(|c| self.render_fresh(file, &c, tid, &mut out));
        match (rendered, HOST_INSTEAD.with(Cell::take)) {
            (Err(e), _) => Source::Host(format!("the container's data cannot be read: {e}")),
            (Ok(()), Some(why)) => Source::Host(why.why().to_string()),
            (Ok(()), None) => Source::Container,
        }
    }
}
