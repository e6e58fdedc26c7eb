//! PSI triggers as the kernel reads them from a write to a pressure file
//! (`some 150000 1000000`): what stalls to watch, how long they may add up to
//! (threshold) within what window, both in microseconds.
//!
//! The kernel takes at most 32 bytes of the write and overwrites the last one it took
//! with a NUL (writers end the line with `\n` or `\0` for that), then reads it with
//! `sscanf("some %u %u")` or `"full %u %u"`, ignoring anything after the second number.
//! Every malformed trigger is its `EINVAL`, and so are these limits.

/// The shortest and longest window the kernel accepts.
pub const WINDOW_MIN_US: u32 = 500_000;
pub const WINDOW_MAX_US: u32 = 10_000_000;
/// Without `CAP_SYS_RESOURCE` a window must be a multiple of this (Linux 6.5+).
pub const UNPRIVILEGED_WINDOW_US: u32 = 2_000_000;
/// What the kernel copies of a write.
const WRITE_MAX: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    Some,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trigger {
    pub stall: Stall,
    pub threshold_us: u32,
    pub window_us: u32,
}

impl Trigger {
    /// The trigger written to a pressure file, as the kernel parses it; `None` where the
    /// kernel answers `EINVAL`. `privileged`: the writer has `CAP_SYS_RESOURCE`.
    pub fn parse(write: &[u8], privileged: bool) -> Option<Trigger> {
        let taken = write.get(..write.len().min(WRITE_MAX))?;
        let text = taken.get(..taken.len().checked_sub(1)?)?;
        let text = text.split(|&b| b == 0).next().unwrap_or_default();
        let (stall, rest) = if let Some(r) = text.strip_prefix(b"some") {
            (Stall::Some, r)
        } else if let Some(r) = text.strip_prefix(b"full") {
            (Stall::Full, r)
        } else {
            return None;
        };
        let (threshold_us, rest) = number(rest)?;
        let (window_us, _) = number(rest)?;
        let t = Trigger {
            stall,
            threshold_us,
            window_us,
        };
        t.valid(privileged).then_some(t)
    }

    fn valid(&self, privileged: bool) -> bool {
        (WINDOW_MIN_US..=WINDOW_MAX_US).contains(&self.window_us)
            && (privileged || self.window_us % UNPRIVILEGED_WINDOW_US == 0)
            && self.threshold_us != 0
            && self.threshold_us <= self.window_us
    }

    /// The trigger in the kernel's syntax, NUL-terminated, to write to a cgroup's
    /// pressure file.
    pub fn to_write(&self) -> Vec<u8> {
        let stall = match self.stall {
            Stall::Some => "some",
            Stall::Full => "full",
        };
        format!("{stall} {} {}\0", self.threshold_us, self.window_us).into_bytes()
    }
}

/// An unsigned decimal after optional whitespace (`%u`), and what follows it.
fn number(s: &[u8]) -> Option<(u32, &[u8])> {
    let start = s.iter().position(|b| !b.is_ascii_whitespace())?;
    let s = s.get(start..)?;
    let s = s.strip_prefix(b"+").unwrap_or(s);
    let end = s
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let digits = std::str::from_utf8(s.get(..end)?).ok()?;
    let n = digits.parse::<u32>().ok()?;
    Some((n, s.get(end..)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_kernels_examples() {
        let t = Trigger::parse(b"some 150000 1000000\0", true).unwrap();
        assert_eq!(
            t,
            Trigger {
                stall: Stall::Some,
                threshold_us: 150_000,
                window_us: 1_000_000
            }
        );
        assert_eq!(Trigger::parse(&t.to_write(), true), Some(t));
        assert!(Trigger::parse(b"full 50000 1000000\n", true).is_some());
        // The last byte is the kernel's NUL: without a terminator the window loses a digit.
        assert_eq!(
            Trigger::parse(b"some 150000 1000000", true).map(|t| t.window_us),
            None
        );
        assert_eq!(
            Trigger::parse(b"some 150000 10000000", true).map(|t| t.window_us),
            Some(1_000_000)
        );
        // Trailing words are ignored, as by sscanf.
        assert!(Trigger::parse(b"some 1 2000000 extra\n", true).is_some());
    }

    #[test]
    fn what_the_kernel_refuses() {
        for bad in [
            &b""[..],
            b"\n",
            b"any 1 1000000\n",
            b"some 1\n",
            b"some x 1000000\n",
            b"some 0 1000000\n",
            b"some 2000000 1000000\n",
            b"some 1000 400000\n",
            b"some 1000 20000000\n",
            b"some -1 1000000\n",
            b"some 99999999999 1000000\n",
        ] {
            assert!(Trigger::parse(bad, true).is_none(), "{bad:?}");
        }
        // Unprivileged writers: windows in whole multiples of 2 s only.
        assert!(Trigger::parse(b"some 150000 1000000\n", false).is_none());
        assert!(Trigger::parse(b"some 150000 2000000\n", false).is_some());
    }

    proptest! {
        #[test]
        fn any_write_parses_or_is_refused(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(t) = Trigger::parse(&b, true) {
                prop_assert!(t.threshold_us >= 1 && t.threshold_us <= t.window_us);
                prop_assert_eq!(Trigger::parse(&t.to_write(), true), Some(t));
            }
        }
    }
}
