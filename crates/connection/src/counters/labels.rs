//! The label sets the counters are kept under: closed, so that every series exists
//! from the start in fixed words of the shared memory, and a label never carries a
//! container's name, path or any other unbounded value.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Open = 0,
    Read = 1,
}

impl Op {
    pub const ALL: [Op; 2] = [Op::Open, Op::Read];
    pub fn name(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Read => "read",
        }
    }
}

/// How an open was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// FUSE passthrough: the kernel reads the backing file, we see no READ.
    Passthrough = 0,
    /// A backing file attached, but reads still come to us (a reader that may rewind).
    Flagged = 1,
    /// `FOPEN_DIRECT_IO`: every read comes to us.
    Direct = 2,
}

impl OpenMode {
    pub const ALL: [OpenMode; 3] = [OpenMode::Passthrough, OpenMode::Flagged, OpenMode::Direct];
    pub fn name(self) -> &'static str {
        match self {
            OpenMode::Passthrough => "passthrough",
            OpenMode::Flagged => "passthrough_flagged",
            OpenMode::Direct => "direct",
        }
    }
}

/// What a rendering served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The container's own values, rendered now.
    Virtualized = 0,
    /// The container's own values, from a rendering of the last 100 ms.
    Cached = 1,
    /// The host's file because the container's data could not be read.
    HostFallback = 2,
    /// The host's file because every reader gets it (SIGUSR2, safe mode).
    HostSwitch = 3,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Virtualized,
        Outcome::Cached,
        Outcome::HostFallback,
        Outcome::HostSwitch,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Virtualized => "virtualized",
            Outcome::Cached => "cached",
            Outcome::HostFallback => "host_fallback",
            Outcome::HostSwitch => "host_switch",
        }
    }
}

/// Why the supervisor started a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartCause {
    /// The first worker of a new mount.
    First = 0,
    /// The previous one was killed by a signal other than SIGKILL (a crash).
    Crash = 1,
    /// The previous one was killed by SIGKILL: `kill -9` or the OOM killer.
    Killed = 2,
    /// The previous one exited (an error, or a stop from outside).
    Exit = 3,
    /// SIGUSR1: a live upgrade.
    Upgrade = 4,
    /// Trying a virtualizing worker again after safe mode.
    Retry = 5,
    /// Replacing the orphaned workers of a supervisor that is gone.
    Adopt = 6,
}

pub const START_CAUSES: usize = 7;

impl StartCause {
    pub const ALL: [StartCause; START_CAUSES] = [
        StartCause::First,
        StartCause::Crash,
        StartCause::Killed,
        StartCause::Exit,
        StartCause::Upgrade,
        StartCause::Retry,
        StartCause::Adopt,
    ];
    pub fn name(self) -> &'static str {
        match self {
            StartCause::First => "first",
            StartCause::Crash => "crash",
            StartCause::Killed => "killed",
            StartCause::Exit => "exit",
            StartCause::Upgrade => "upgrade",
            StartCause::Retry => "retry",
            StartCause::Adopt => "adopt",
        }
    }
}

/// The errors requests are answered with, each its own label value; anything else
/// is `other`.
pub const ERRNOS: [(i32, &str); 8] = [
    (libc::EACCES, "EACCES"),
    (libc::EBADF, "EBADF"),
    (libc::EINVAL, "EINVAL"),
    (libc::EIO, "EIO"),
    (libc::EISDIR, "EISDIR"),
    (libc::EMFILE, "EMFILE"),
    (libc::ENOENT, "ENOENT"),
    (libc::ESRCH, "ESRCH"),
];
/// [`ERRNOS`] and `other`.
pub const ERRNO_LABELS: usize = ERRNOS.len() + 1;

/// The label index of `errno`.
pub fn errno_index(errno: i32) -> usize {
    ERRNOS
        .iter()
        .position(|&(e, _)| e == errno)
        .unwrap_or(ERRNOS.len())
}

/// The label value of index `i` (see [`errno_index`]).
pub fn errno_name(i: usize) -> &'static str {
    ERRNOS.get(i).map_or("other", |&(_, n)| n)
}
