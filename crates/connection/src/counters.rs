//! The daemon's counters, in memory the supervisor creates and every worker maps, so
//! that what a worker counted outlives it: a worker killed (`SIGKILL`, OOM) or replaced
//! by an upgrade (`SIGUSR1`) loses nothing, and a counter never goes backwards while
//! the supervisor lives (no `_created` reset to explain to `rate()`). The supervisor
//! reads them to answer a scrape; workers only add.
//!
//! The hot path is one relaxed `fetch_add` per counter on a word of a shared mapping:
//! no lock, no allocation, no system call. Words are not padded to cache lines: the
//! counters of one file are written by whichever FUSE thread serves it, and the
//! benchmark's open+read+close latency is the same with them (the `cost` test below
//! measures what counting adds).
//!
//! Layout, 64-bit words of a sealed memfd:
//!
//! | word | meaning |
//! |---|---|
//! | 0 | [`MAGIC`] |
//! | 1 | words in the layout (checked by every process that maps it) |
//! | 4 .. 4+[`START_CAUSES`] | worker starts by [`StartCause`] |
//! | 12 | the current worker's generation |
//! | 13 | containers the current worker tracks (a gauge it refreshes) |
//! | 14, 15 | reserved (zero) |
//! | 16 + [`PER_FILE`]·i .. | file i ([`file_name`]): opens by [`OpenMode`], renderings by [`Outcome`], reads served, errors by [`Op`], then per [`Op`] a latency histogram ([`BUCKETS_US`] + overflow, sum in ns, count) |

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use hostview::VirtualFile;
use rustix::fs::{MemfdFlags, SealFlags};

use crate::sys::SharedWords;

const MAGIC: u64 = u64::from_le_bytes(*b"lxcfsMC1");

/// Files counted: every virtual file, then the mirrored `sys/devices/system/cpu` tree.
pub const FILES: usize = VirtualFile::ALL.len() + 1;
/// The index of the mirrored CPU tree among [`FILES`].
pub const SYS_CPU: usize = VirtualFile::ALL.len();

/// Upper bounds of the latency buckets, in microseconds (then one for everything
/// slower). From a cached rendering (a few µs) to a reader stuck behind a slow cgroup
/// file system (hundreds of ms).
pub const BUCKETS_US: [u64; 12] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 250_000,
];

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

const STARTS: usize = 4;
const GENERATION: usize = 12;
const CONTAINERS: usize = 13;
const HEADER: usize = 16;

const OPENS: usize = 0;
const OUTCOMES: usize = OPENS + OpenMode::ALL.len();
const READS: usize = OUTCOMES + Outcome::ALL.len();
const ERRORS: usize = READS + 1;
const HISTS: usize = ERRORS + Op::ALL.len();
/// Buckets, overflow, sum (ns), count.
const HIST: usize = BUCKETS_US.len() + 3;
pub const PER_FILE: usize = HISTS + HIST * Op::ALL.len();

fn words_needed() -> usize {
    HEADER + PER_FILE * FILES
}

/// The label a file is counted under: its path below the mountpoint.
pub fn file_name(i: usize) -> &'static str {
    match VirtualFile::ALL.get(i) {
        Some(f) => f.host_path(),
        None => "sys/devices/system/cpu",
    }
}

/// The index of `file` among [`FILES`].
pub fn file_index(file: VirtualFile) -> usize {
    // The enum's order is ALL's order (a test says so): no search on the hot path.
    file as usize
}

pub struct Counters {
    fd: OwnedFd,
    words: SharedWords,
}

impl Counters {
    /// Fresh counters, all zero.
    pub fn create() -> std::io::Result<Counters> {
        let fd = rustix::fs::memfd_create(
            "lxcfs-rs:counters",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        let bytes = (words_needed() * 8).next_multiple_of(4096);
        rustix::fs::ftruncate(&fd, bytes as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
        let words = SharedWords::map(&fd, words_needed())?;
        let w = words.words();
        w[0].store(MAGIC, Ordering::Relaxed);
        w[1].store(words_needed() as u64, Ordering::Relaxed);
        Ok(Counters { fd, words })
    }

    /// The counters another process created, from its descriptor.
    pub fn from_fd(fd: OwnedFd) -> std::io::Result<Counters> {
        let size = rustix::fs::fstat(&fd)?.st_size;
        if size < (words_needed() * 8) as i64 {
            return Err(std::io::Error::other(
                "counters were made by an incompatible lxcfs-rs build",
            ));
        }
        let words = SharedWords::map(&fd, words_needed())?;
        let w = words.words();
        if w[0].load(Ordering::Relaxed) != MAGIC
            || w[1].load(Ordering::Relaxed) != words_needed() as u64
        {
            return Err(std::io::Error::other(
                "counters were made by an incompatible lxcfs-rs build",
            ));
        }
        Ok(Counters { fd, words })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn add(&self, word: usize, n: u64) {
        if let Some(w) = self.words.words().get(word) {
            w.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn set(&self, word: usize, v: u64) {
        if let Some(w) = self.words.words().get(word) {
            w.store(v, Ordering::Relaxed);
        }
    }

    fn get(&self, word: usize) -> u64 {
        self.words
            .words()
            .get(word)
            .map_or(0, |w| w.load(Ordering::Relaxed))
    }

    fn base(file: usize) -> usize {
        HEADER + PER_FILE * file.min(FILES - 1)
    }

    pub fn opened(&self, file: usize, mode: OpenMode) {
        self.add(Self::base(file) + OPENS + mode as usize, 1);
    }

    pub fn rendered(&self, file: usize, outcome: Outcome) {
        self.add(Self::base(file) + OUTCOMES + outcome as usize, 1);
    }

    pub fn read(&self, file: usize) {
        self.add(Self::base(file) + READS, 1);
    }

    pub fn failed(&self, file: usize, op: Op) {
        self.add(Self::base(file) + ERRORS + op as usize, 1);
    }

    /// One request of `op` on `file` took `took`, from its arrival to its reply.
    pub fn observe(&self, file: usize, op: Op, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BUCKETS_US.len());
        let h = Self::base(file) + HISTS + HIST * op as usize;
        self.add(h + bucket, 1);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.add(h + BUCKETS_US.len() + 1, ns);
        self.add(h + BUCKETS_US.len() + 2, 1);
    }

    /// Said by the supervisor when it starts worker `generation`.
    pub fn worker_started(&self, cause: StartCause, generation: u64) {
        self.add(STARTS + cause as usize, 1);
        self.set(GENERATION, generation);
    }

    /// Said by the serving worker now and then: the containers its cache holds.
    pub fn set_containers(&self, tracked: u64) {
        self.set(CONTAINERS, tracked);
    }

    /// Every counter as it is now (each word read once; words of one file may be a
    /// request apart, which a scrape can live with).
    pub fn snapshot(&self) -> Snapshot {
        let mut starts = [0; START_CAUSES];
        for (i, s) in starts.iter_mut().enumerate() {
            *s = self.get(STARTS + i);
        }
        let files = (0..FILES)
            .map(|f| {
                let b = Self::base(f);
                let hist = |op: Op| {
                    let h = b + HISTS + HIST * op as usize;
                    Histogram {
                        buckets: (0..=BUCKETS_US.len()).map(|i| self.get(h + i)).collect(),
                        sum_ns: self.get(h + BUCKETS_US.len() + 1),
                        count: self.get(h + BUCKETS_US.len() + 2),
                    }
                };
                FileCounts {
                    opens: OpenMode::ALL.map(|m| self.get(b + OPENS + m as usize)),
                    outcomes: Outcome::ALL.map(|o| self.get(b + OUTCOMES + o as usize)),
                    reads: self.get(b + READS),
                    errors: Op::ALL.map(|o| self.get(b + ERRORS + o as usize)),
                    latency: Op::ALL.map(hist),
                }
            })
            .collect();
        Snapshot {
            starts,
            generation: self.get(GENERATION),
            containers: self.get(CONTAINERS),
            files,
        }
    }
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}

/// The counters at one moment, plain numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// By [`StartCause`] order.
    pub starts: [u64; START_CAUSES],
    pub generation: u64,
    pub containers: u64,
    /// By [`file_name`] index.
    pub files: Vec<FileCounts>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCounts {
    /// By [`OpenMode`] order.
    pub opens: [u64; 3],
    /// By [`Outcome`] order.
    pub outcomes: [u64; 4],
    pub reads: u64,
    /// By [`Op`] order.
    pub errors: [u64; 2],
    /// By [`Op`] order.
    pub latency: [Histogram; 2],
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Per bucket of [`BUCKETS_US`], then the overflow; not cumulative.
    pub buckets: Vec<u64>,
    pub sum_ns: u64,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn file_index_is_the_position_in_all() {
        for (i, f) in VirtualFile::ALL.iter().enumerate() {
            assert_eq!(file_index(*f), i);
        }
    }

    #[test]
    fn a_second_process_adds_to_the_same_counters() {
        let a = Counters::create().unwrap();
        let b = Counters::from_fd(a.fd().try_clone_to_owned().unwrap()).unwrap();
        a.opened(0, OpenMode::Direct);
        b.opened(0, OpenMode::Direct);
        b.rendered(SYS_CPU, Outcome::HostFallback);
        b.observe(3, Op::Read, Duration::from_micros(30));
        b.observe(3, Op::Read, Duration::from_secs(2));
        a.worker_started(StartCause::Upgrade, 7);
        // Out of range goes to the last file rather than anywhere else.
        a.read(FILES + 5);
        let s = a.snapshot();
        assert_eq!(s.files[0].opens, [0, 0, 2]);
        assert_eq!(s.files[SYS_CPU].outcomes[Outcome::HostFallback as usize], 1);
        assert_eq!(s.files[SYS_CPU].reads, 1);
        let h = &s.files[3].latency[Op::Read as usize];
        assert_eq!(h.count, 2);
        assert_eq!(h.buckets[2], 1, "30 µs is in the ≤50 µs bucket");
        assert_eq!(h.buckets[BUCKETS_US.len()], 1, "2 s overflows");
        assert_eq!(h.sum_ns, 2_000_030_000);
        assert_eq!(s.starts[StartCause::Upgrade as usize], 1);
        assert_eq!(s.generation, 7);
    }

    #[test]
    fn a_foreign_descriptor_is_refused() {
        let other = rustix::fs::memfd_create("x", MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&other, 1 << 16).unwrap();
        assert!(Counters::from_fd(other).is_err());
        let small = rustix::fs::memfd_create("y", MemfdFlags::CLOEXEC).unwrap();
        assert!(Counters::from_fd(small).is_err());
    }
}

#[cfg(test)]
mod cost {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// What one served open adds to a request: `cargo test --release -p connection
    /// counting_cost -- --ignored --nocapture` prints it (100–180 ns on a loaded 2-core
    /// VM, 65–75 ns of it the two clock reads; an open+read+close takes about 10 µs).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn counting_cost() {
        let c = Counters::create().unwrap();
        let n = 5_000_000u32;
        let t = std::time::Instant::now();
        for i in 0..n {
            let start = std::time::Instant::now();
            let f = (i % FILES as u32) as usize;
            c.rendered(f, Outcome::Cached);
            c.opened(f, OpenMode::Direct);
            c.observe(f, Op::Open, start.elapsed());
        }
        let per = t.elapsed().as_nanos() as f64 / f64::from(n);
        let t = std::time::Instant::now();
        let mut sink = Duration::ZERO;
        for _ in 0..n {
            sink += std::time::Instant::now().elapsed();
        }
        let clocks = t.elapsed().as_nanos() as f64 / f64::from(n);
        println!("counting an open: {per:.1} ns, of which the two clock reads {clocks:.1} ns");
        assert!(sink > Duration::ZERO);
        assert!(c.snapshot().files[0].opens[2] > 0);
    }
}
