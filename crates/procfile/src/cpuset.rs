//! CPU lists (`0-3,8,10-11`) as in `cpuset.cpus` and `/sys/devices/system/cpu/online`.

/// A set of CPU ids.
///
/// Invariant: `words` never ends with a zero word, so the derived `PartialEq` compares
/// sets by their members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuSet {
    words: Vec<u64>,
}

/// CPU ids at or above this are rejected: the kernel's NR_CPUS tops out at 8192, and an
/// id like `4000000000` in a malformed file must not make us allocate gigabytes.
pub const MAX_CPUS: u32 = 8192;

const WORD_BITS: u32 = u64::BITS;

impl CpuSet {
    /// Parse a list; an empty or whitespace-only string is the empty set.
    ///
    /// Accepts the kernel's list format: comma-separated ids or inclusive `a-b` ranges,
    /// the whole string surrounded by optional whitespace (the files end with `\n`).
    /// Returns `None` for anything else: empty items, reversed ranges, ids at or above
    /// [`MAX_CPUS`], signs, spaces inside the list, the `a-b:used/group` write syntax.
    pub fn parse(s: &str) -> Option<CpuSet> {
        let s = s.trim_ascii();
        let mut set = CpuSet::default();
        if s.is_empty() {
            return Some(set);
        }
        for item in s.split(',') {
            let (first, last) = match item.split_once('-') {
                Some((a, b)) => (cpu_id(a)?, cpu_id(b)?),
                None => {
                    let id = cpu_id(item)?;
                    (id, id)
                }
            };
            if first > last {
                return None;
            }
            set.insert_range(first, last);
        }
        Some(set)
    }

    /// Add `first..=last`; both must be below [`MAX_CPUS`] and `first <= last`.
    fn insert_range(&mut self, first: u32, last: u32) {
        let last_word = (last / WORD_BITS) as usize;
        if self.words.len() <= last_word {
            self.words.resize(last_word + 1, 0);
        }
        let mut cpu = first;
        while cpu <= last {
            let word = (cpu / WORD_BITS) as usize;
            let lo = cpu % WORD_BITS;
            let hi = if last / WORD_BITS == cpu / WORD_BITS {
                last % WORD_BITS
            } else {
                WORD_BITS - 1
            };
            // Bits lo..=hi set.
            let mask = (u64::MAX >> (WORD_BITS - 1 - hi)) & (u64::MAX << lo);
            if let Some(w) = self.words.get_mut(word) {
                *w |= mask;
            }
            cpu = match (cpu - lo).checked_add(WORD_BITS) {
                Some(next) => next,
                None => break,
            };
        }
    }

    /// Add `cpu`; ids at or above [`MAX_CPUS`] are ignored.
    pub fn insert(&mut self, cpu: u32) {
        if cpu < MAX_CPUS {
            self.insert_range(cpu, cpu);
        }
    }

    pub fn contains(&self, cpu: u32) -> bool {
        self.words
            .get((cpu / WORD_BITS) as usize)
            .is_some_and(|w| w & (1u64 << (cpu % WORD_BITS)) != 0)
    }

    /// Number of CPUs in the set.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// The ids in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let base = (i as u32).saturating_mul(WORD_BITS);
            Bits(word).map(move |bit| base + bit)
        })
    }

    /// Maximal runs of consecutive ids, as inclusive `(first, last)` pairs, ascending.
    pub fn ranges(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let mut cpus = self.iter().peekable();
        std::iter::from_fn(move || {
            let first = cpus.next()?;
            let mut last = first;
            while let Some(&next) = cpus.peek() {
                if Some(next) != last.checked_add(1) {
                    break;
                }
                last = next;
                cpus.next();
            }
            Some((first, last))
        })
    }
}

/// Set bits of one word, lowest first.
struct Bits(u64);

impl Iterator for Bits {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

/// A CPU id: ASCII digits only, below [`MAX_CPUS`].
fn cpu_id(s: &str) -> Option<u32> {
    let v = crate::value::parse_digits(s)?;
    u32::try_from(v).ok().filter(|&id| id < MAX_CPUS)
}

impl FromIterator<u32> for CpuSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> CpuSet {
        let mut set = CpuSet::default();
        for cpu in iter {
            set.insert(cpu);
        }
        set
    }
}

/// Kernel list format: ranges joined by commas, no trailing newline.
impl std::fmt::Display for CpuSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (first, last)) in self.ranges().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if first == last {
                write!(f, "{first}")?;
            } else {
                write!(f, "{first}-{last}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn ids(s: &CpuSet) -> Vec<u32> {
        s.iter().collect()
    }

    #[test]
    fn parses_kernel_lists() {
        let s = CpuSet::parse("0-3,8,10-11\n").unwrap();
        assert_eq!(ids(&s), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(s.len(), 7);
        assert!(s.contains(8));
        assert!(!s.contains(9));
        assert!(!s.contains(100_000));
        assert_eq!(s.to_string(), "0-3,8,10-11");

        assert_eq!(CpuSet::parse("5").unwrap().to_string(), "5");
        assert_eq!(CpuSet::parse("2-3,6").unwrap().to_string(), "2-3,6");
        assert_eq!(CpuSet::parse("7-7").unwrap().to_string(), "7");
    }

    #[test]
    fn empty_input_is_empty_set() {
        for s in ["", "\n", "  \t\n"] {
            let set = CpuSet::parse(s).unwrap();
            assert!(set.is_empty());
            assert_eq!(set.len(), 0);
            assert_eq!(set.to_string(), "");
            assert_eq!(set, CpuSet::default());
        }
    }

    #[test]
    fn non_canonical_input_is_canonicalised() {
        let s = CpuSet::parse("3,0-2,1,63-64,65").unwrap();
        assert_eq!(s.to_string(), "0-3,63-65");
        let s = CpuSet::parse("0-8191").unwrap();
        assert_eq!(s.len(), 8192);
        assert_eq!(s.to_string(), "0-8191");
        let s = CpuSet::parse("62-129").unwrap();
        assert_eq!(s.len(), 68);
        assert_eq!(ids(&s).first(), Some(&62));
        assert_eq!(ids(&s).last(), Some(&129));
    }

    #[test]
    fn rejects_junk() {
        for s in [
            "3-1",
            "8192",
            "0-8192",
            "4000000000",
            "a",
            "1,",
            ",1",
            "1,,2",
            "-1",
            "1-",
            "1-2-3",
            "+1",
            "0-3:1/2",
            "1 ,2",
            "1, 2",
            "0x1",
            "1\n2",
        ] {
            assert_eq!(CpuSet::parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn insert_ignores_out_of_range_ids() {
        let mut s = CpuSet::default();
        s.insert(MAX_CPUS);
        s.insert(u32::MAX);
        assert!(s.is_empty());
        assert_eq!(s, CpuSet::default());
        s.insert(MAX_CPUS - 1);
        s.insert(0);
        assert_eq!(s.to_string(), "0,8191");
        assert!(s.contains(8191));
    }

    #[test]
    fn equality_is_by_members() {
        let a: CpuSet = [1, 200].into_iter().collect();
        let b = CpuSet::parse("200,1").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, CpuSet::parse("1").unwrap());
    }

    #[test]
    fn ranges_are_maximal() {
        let s = CpuSet::parse("0-1,2-3,5,6,9").unwrap();
        assert_eq!(s.ranges().collect::<Vec<_>>(), vec![(0, 3), (5, 6), (9, 9)]);
    }
}
