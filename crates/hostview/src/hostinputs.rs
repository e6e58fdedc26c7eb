//! The host's own files that every container's rendering reads, read once per
//! [`FRESH`] for all containers, and the host's clock.
//!
//! At a thousand containers each polling once a second, every rendering re-reading
//! `/proc/meminfo`, `/proc/stat` and the online CPU list would have the kernel generate
//! them thousands of times a second (`/proc/stat` grows with CPUs and interrupts: on a
//! large host it is the dearest file there is) for text that is the same for all of
//! them. Renderings already reuse a container's own values for [`FRESH`]; the host's
//! inputs get the same bound, shared by every container.
//!
//! A miss is read under that file's lock and stamped when the read ends, so an entry
//! only ever moves forward: a rendering never uses an older snapshot of the host than
//! one already served (`vmstat` and `sar` subtract successive `/proc/stat`s; a
//! counter that went back would show as a huge rate).
//!
//! Only for the real host: a fixture tree's files are rewritten by tests between reads.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::fsio::Dir;
use crate::rendercache::FRESH;

/// A host file more than one container's rendering reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostInput {
    Meminfo,
    Stat,
    CpuOnline,
}

impl HostInput {
    const COUNT: usize = 3;

    pub(crate) fn path(self) -> &'static str {
        match self {
            HostInput::Meminfo => "proc/meminfo",
            HostInput::Stat => "proc/stat",
            HostInput::CpuOnline => "sys/devices/system/cpu/online",
        }
    }
}

type Entry = Mutex<Option<(Instant, Arc<str>)>>;

/// The latest text of each [`HostInput`], when the host's files are shared.
#[derive(Debug)]
pub(crate) struct HostInputs {
    /// `None` for a fixture tree: every read goes to the file.
    entries: Option<[Entry; HostInput::COUNT]>,
}

impl HostInputs {
    pub(crate) fn new(shared: bool) -> HostInputs {
        HostInputs {
            entries: shared.then(|| std::array::from_fn(|_| Mutex::new(None))),
        }
    }

    /// The text of `input` under `root`, at most [`FRESH`] old.
    pub(crate) fn text(&self, root: &Dir, input: HostInput) -> Result<Arc<str>> {
        let Some(entries) = &self.entries else {
            return Ok(root.read_string(input.path())?.into());
        };
        let Some(slot) = entries.get(input as usize) else {
            return Ok(root.read_string(input.path())?.into());
        };
        let mut g = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, text)) = &*g {
            if at.elapsed() < FRESH {
                return Ok(text.clone());
            }
        }
        let text: Arc<str> = root.read_string(input.path())?.into();
        *g = Some((Instant::now(), text.clone()));
        Ok(text)
    }
}

/// Nanoseconds since boot: `CLOCK_BOOTTIME`, the clock the first field of
/// `/proc/uptime` shows, without generating the file; a fixture tree's own
/// `proc/uptime` otherwise, so that it carries its clock.
pub(crate) fn boottime_ns(root: &Dir, real: bool) -> Result<u64> {
    if real {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let secs = u64::try_from(t.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
        return Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos));
    }
    let s = root.read_string("proc/uptime")?;
    s.split_ascii_whitespace()
        .next()
        .and_then(procfile::value::parse_seconds_ns)
        .ok_or_else(|| Error::parse(root.path_of("proc/uptime")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tree() -> (tempfile::TempDir, Dir) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("proc")).unwrap();
        std::fs::write(t.path().join("proc/stat"), "cpu 1\n").unwrap();
        let d = Dir::open(t.path()).unwrap();
        (t, d)
    }

    #[test]
    fn shared_text_is_reused_within_fresh_and_reread_after() {
        let (t, d) = tree();
        let h = HostInputs::new(true);
        assert_eq!(&*h.text(&d, HostInput::Stat).unwrap(), "cpu 1\n");
        std::fs::write(t.path().join("proc/stat"), "cpu 2\n").unwrap();
        assert_eq!(&*h.text(&d, HostInput::Stat).unwrap(), "cpu 1\n");
        std::thread::sleep(FRESH);
        assert_eq!(&*h.text(&d, HostInput::Stat).unwrap(), "cpu 2\n");
    }

    #[test]
    fn unshared_text_is_always_the_file() {
        let (t, d) = tree();
        let h = HostInputs::new(false);
        assert_eq!(&*h.text(&d, HostInput::Stat).unwrap(), "cpu 1\n");
        std::fs::write(t.path().join("proc/stat"), "cpu 2\n").unwrap();
        assert_eq!(&*h.text(&d, HostInput::Stat).unwrap(), "cpu 2\n");
        assert!(h.text(&d, HostInput::Meminfo).unwrap_err().is_not_found());
    }

    #[test]
    fn the_clock_is_the_fixture_file_or_boottime() {
        let (t, d) = tree();
        std::fs::write(t.path().join("proc/uptime"), "12.50 3.00\n").unwrap();
        assert_eq!(boottime_ns(&d, false).unwrap(), 12_500_000_000);
        let up: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let ns = boottime_ns(&d, true).unwrap();
        assert!((ns as f64 / 1e9 - up).abs() < 1.0, "{ns} vs {up}");
    }
}
