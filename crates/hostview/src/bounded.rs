//! Tables kept per container or pid namespace, which a tenant making a namespace or a
//! cgroup for every read would otherwise grow without end.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Make room for a new key in a table bounded to `max` entries: those unused for
/// `idle` go, and if that is not enough the least recently used eighth (more, when
/// entries at its edge were used at the same instant), so that a full table is not
/// scanned (or sorted) again on every insert.
pub(crate) fn make_room<K, V>(
    map: &mut HashMap<K, V>,
    max: usize,
    idle: Duration,
    now: Instant,
    used: impl Fn(&V) -> Instant,
) {
    map.retain(|_, v| now.saturating_duration_since(used(v)) < idle);
    if map.len() < max.max(1) {
        return;
    }
    let mut ages: Vec<Instant> = map.values().map(&used).collect();
    let cut = ages.len() / 8;
    let (_, &mut oldest_kept, _) = ages.select_nth_unstable(cut);
    map.retain(|_, v| used(v) > oldest_kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(120);

    #[test]
    fn a_full_table_drops_its_least_recently_used_eighth_and_stays_bounded() {
        let t0 = Instant::now();
        let mut map: HashMap<u64, Instant> = HashMap::new();
        let max = 64;
        // A key per read, every read recent (none idle long enough to go by age).
        for k in 0..10_000u64 {
            let now = t0 + Duration::from_millis(k);
            if map.len() >= max && !map.contains_key(&k) {
                make_room(&mut map, max, IDLE, now, |at| *at);
            }
            map.insert(k, now);
            assert!(map.len() <= max, "{} entries", map.len());
        }
        // The newest are kept.
        assert!((9_990..10_000).all(|k| map.contains_key(&k)));
        // Idle ones go whatever the table's size.
        make_room(
            &mut map,
            max,
            IDLE,
            t0 + Duration::from_secs(10) + IDLE,
            |at| *at,
        );
        assert!(map.is_empty());
        // A bound of 0 still makes room.
        map.insert(1, t0);
        make_room(&mut map, 0, IDLE, t0, |at| *at);
        assert!(map.is_empty());
    }
}
