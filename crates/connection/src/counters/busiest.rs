//! The busiest containers of the last window, in a fixed table of the shared counters:
//! the serving worker ranks them (see `hostview::ReadTally`) and writes the top
//! [`SLOTS`] here every few seconds; the supervisor reads the table to answer
//! `status`. The table outlives the worker like every counter (after a restart it shows
//! the last window the old worker published until the new one publishes its own).
//!
//! A seqlock over plain words: the writer makes the sequence odd, writes, makes it
//! even; a reader retries while it is odd or changed. Two writers (an upgrade's old and
//! new worker, for a moment) cannot interleave: a writer that finds it odd skips its
//! turn. Nobody ever waits on the read path: only this table's writer and the
//! supervisor touch it.

use std::sync::atomic::{AtomicU64, Ordering, fence};

/// Containers kept.
pub const SLOTS: usize = 10;
/// Bytes of a cgroup name kept (a longer one keeps its end, where a runtime puts the
/// container's id).
pub const NAME_BYTES: usize = 192;
const NAME_WORDS: usize = NAME_BYTES / 8;
/// pidns, reads over the window, reads in all, name length, name.
const SLOT: usize = 4 + NAME_WORDS;
/// Sequence, window (ms), when published (ms since the epoch), containers filled.
const HEAD: usize = 4;
/// Words the table takes.
pub const WORDS: usize = HEAD + SLOTS * SLOT;

/// One container's row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Busy {
    pub cgroup: String,
    pub pidns: u64,
    /// Files read over the window.
    pub reads: u64,
    /// Files read since the worker that published it first saw the container.
    pub reads_total: u64,
}

/// The table as last published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Busiest {
    pub window_ms: u64,
    /// 0: never published.
    pub published_unix_ms: u64,
    /// Busiest first.
    pub containers: Vec<Busy>,
}

/// Write `b` into `w` (a table of [`WORDS`] words); false when another writer holds it.
pub fn publish(w: &[AtomicU64], b: &Busiest) -> bool {
    let Some(seq) = w.first() else { return false };
    let s = seq.load(Ordering::Relaxed);
    if s % 2 == 1
        || seq
            .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return false;
    }
    let set = |i: usize, v: u64| {
        if let Some(x) = w.get(i) {
            x.store(v, Ordering::Relaxed);
        }
    };
    set(1, b.window_ms);
    set(2, b.published_unix_ms);
    set(3, b.containers.len().min(SLOTS) as u64);
    for (i, c) in b.containers.iter().take(SLOTS).enumerate() {
        let base = HEAD + i * SLOT;
        set(base, c.pidns);
        set(base + 1, c.reads);
        set(base + 2, c.reads_total);
        let name = c.cgroup.as_bytes();
        let name = &name[name.len().saturating_sub(NAME_BYTES)..];
        set(base + 3, name.len() as u64);
        for (j, chunk) in name.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            set(base + 4 + j, u64::from_le_bytes(word));
        }
    }
    seq.store(s + 2, Ordering::Release);
    true
}

/// The table in `w` as last published (empty while a writer keeps it busy).
pub fn read(w: &[AtomicU64]) -> Busiest {
    let get = |i: usize| w.get(i).map_or(0, |x| x.load(Ordering::Relaxed));
    let Some(seq) = w.first() else {
        return Busiest::default();
    };
    for _ in 0..100 {
        let s1 = seq.load(Ordering::Acquire);
        if s1 % 2 == 1 {
            std::thread::yield_now();
            continue;
        }
        let n = (get(3) as usize).min(SLOTS);
        let mut b = Busiest {
            window_ms: get(1),
            published_unix_ms: get(2),
            containers: Vec::with_capacity(n),
        };
        for i in 0..n {
            let base = HEAD + i * SLOT;
            let len = (get(base + 3) as usize).min(NAME_BYTES);
            let mut bytes = Vec::with_capacity(NAME_WORDS * 8);
            for j in 0..NAME_WORDS {
                bytes.extend_from_slice(&get(base + 4 + j).to_le_bytes());
            }
            bytes.truncate(len);
            b.containers.push(Busy {
                cgroup: String::from_utf8_lossy(&bytes).into_owned(),
                pidns: get(base),
                reads: get(base + 1),
                reads_total: get(base + 2),
            });
        }
        fence(Ordering::Acquire);
        if seq.load(Ordering::Relaxed) == s1 {
            return b;
        }
    }
    Busiest::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<AtomicU64> {
        (0..WORDS).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn a_published_table_reads_back_with_long_names_cut_at_their_start() {
        let w = table();
        assert_eq!(read(&w), Busiest::default());
        let long = format!("/{}/end", "x".repeat(300));
        let b = Busiest {
            window_ms: 5000,
            published_unix_ms: 42,
            containers: (0..SLOTS + 3)
                .map(|i| Busy {
                    cgroup: if i == 1 {
                        long.clone()
                    } else {
                        format!("/c{i}")
                    },
                    pidns: 100 + i as u64,
                    reads: 50 - i as u64,
                    reads_total: 1000,
                })
                .collect(),
        };
        assert!(publish(&w, &b));
        let r = read(&w);
        assert_eq!(r.window_ms, 5000);
        assert_eq!(r.containers.len(), SLOTS);
        assert_eq!(r.containers[0].cgroup, "/c0");
        assert_eq!(r.containers[1].cgroup.len(), NAME_BYTES);
        assert!(r.containers[1].cgroup.ends_with("xx/end"));
        assert_eq!(r.containers[2].pidns, 102);
        // A shorter table later leaves no stale rows.
        let fewer = Busiest {
            containers: b.containers[..2].to_vec(),
            ..b
        };
        assert!(publish(&w, &fewer));
        assert_eq!(read(&w).containers.len(), 2);
    }

    #[test]
    fn a_writer_finding_the_table_busy_skips_its_turn() {
        let w = table();
        w[0].store(7, Ordering::Relaxed);
        assert!(!publish(&w, &Busiest::default()));
        assert_eq!(read(&w), Busiest::default(), "gives up, empty");
    }
}
