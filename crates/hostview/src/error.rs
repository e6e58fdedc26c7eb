//! Errors that carry the path they concern and map to an errno at the FUSE boundary.

use rustix::io::Errno;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: Errno },
    #[error("malformed {path}")]
    Parse { path: String },
    #[error("no init found for the pid namespace of thread {tid}")]
    InitNotFound { tid: u32 },
    #[error("another search of /proc for a pid namespace's init (thread {tid}'s) was under way")]
    InitScanBusy { tid: u32 },
    #[error("another open of a pid list by thread {tid}'s container was being translated")]
    PidListBusy { tid: u32 },
    #[error("thread {tid} is not visible in the daemon's pid namespace")]
    NoCaller { tid: u32 },
    #[error("no cgroup hierarchy is mounted (no cgroup or cgroup2 line in mountinfo)")]
    NoCgroups,
    #[error("the {controller} path {path} of pid {pid} lies outside the mounted hierarchy")]
    OutsideHierarchy {
        controller: &'static str,
        path: String,
        pid: u32,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<String>, source: Errno) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse(path: impl Into<String>) -> Error {
        Error::Parse { path: path.into() }
    }

    /// The errno a reader gets when nothing at all can be served.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Io { source, .. } if *source == Errno::NOENT => libc::ENOENT,
            Error::Io { source, .. } if *source == Errno::ACCESS => libc::EACCES,
            Error::InitNotFound { .. } | Error::NoCaller { .. } => libc::ESRCH,
            Error::InitScanBusy { .. } | Error::PidListBusy { .. } => libc::EAGAIN,
            _ => libc::EIO,
        }
    }

    /// The system's own errno of a failed call (what a kernel file answered), where
    /// there was one.
    pub fn os_errno(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => Some(source.raw_os_error()),
            _ => None,
        }
    }

    /// True when the file does not exist (a controller not enabled, a process gone).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if *source == Errno::NOENT)
    }
}

pub type Result<T> = std::result::Result<T, Error>;
