//! A container's CPU time and the per-CPU counters shown in its `/proc/stat`.
//!
//! Counters are *accumulated*: each read adds what happened since the previous one, so
//! every shown counter only grows — also when the cpuset or quota changes, when the
//! container's usage counters are reset, or when CPUs appear and disappear (a vanished
//! CPU's time is folded into the first remaining one, keeping the `cpu` total growing).
//! Idle is the view's capacity (all of its n CPUs' time, or the quota in the quota
//! view) minus the busy time: a busy loop held to half a CPU shows as half of one CPU
//! busy by default, and as fully busy in the quota view, whose CPUs stand for the quota.

use crate::cpu::CpuView;

/// Cumulative CPU time of a container's cgroup, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuUsage {
    pub user_ns: u64,
    pub system_ns: u64,
    /// Per host CPU `(cpu, user_ns, system_ns)`, when the kernel accounts per CPU
    /// (v1 `cpuacct.usage_all`); v2 has only totals.
    pub per_cpu: Option<Vec<(u32, u64, u64)>>,
}

impl CpuUsage {
    /// v1 `cpuacct.usage_all`: a header, then `cpu user system` in ns.
    pub fn parse_usage_all(text: &str) -> Option<CpuUsage> {
        let mut lines = text.lines();
        let header = lines.next()?;
        if !header.starts_with("cpu") {
            return None;
        }
        let mut per = Vec::new();
        let (mut user, mut system) = (0u64, 0u64);
        for line in lines {
            let mut f = line.split_ascii_whitespace();
            let (Some(c), Some(u), Some(s), None) = (f.next(), f.next(), f.next(), f.next()) else {
                continue;
            };
            let parsed = crate::value::parse_u64(c)
                .and_then(|c| u32::try_from(c).ok())
                .zip(crate::value::parse_u64(u))
                .zip(crate::value::parse_u64(s));
            if let Some(((c, u), s)) = parsed {
                user = user.saturating_add(u);
                system = system.saturating_add(s);
                per.push((c, u, s));
            }
        }
        Some(CpuUsage {
            user_ns: user,
            system_ns: system,
            per_cpu: Some(per),
        })
    }

    /// v1 `cpuacct.usage_percpu`: each CPU's exact run time in ns, indexed by CPU id.
    pub fn parse_usage_percpu(text: &str) -> Option<Vec<u64>> {
        text.split_ascii_whitespace()
            .map(crate::value::parse_u64)
            .collect()
    }

    /// Each CPU's user and system time scaled so that together they are that CPU's
    /// exact run time (`exact`, from `cpuacct.usage_percpu`). `cpuacct.usage_all`
    /// splits user from system by sampling at ticks, and a CFS period near the tick
    /// aliases with it: a loop held to half a CPU read as three quarters on a loaded
    /// host. The split keeps its proportions; a CPU with no sampled time but run time
    /// counts it as user. CPUs `exact` does not list are left as they are.
    pub fn scaled_to(self, exact: &[u64]) -> CpuUsage {
        let Some(per) = self.per_cpu else {
            return self;
        };
        let (mut user, mut system) = (0u64, 0u64);
        let per: Vec<(u32, u64, u64)> = per
            .into_iter()
            .map(|(c, u, s)| {
                let (u, s) = match exact.get(c as usize) {
                    Some(&e) => {
                        let sampled = u128::from(u) + u128::from(s);
                        // u / sampled ≤ 1, so the quotient fits in u64 again.
                        let u2 = (u128::from(e) * u128::from(u))
                            .checked_div(sampled)
                            .map_or(e, |v| u64::try_from(v).unwrap_or(e));
                        (u2, e - u2.min(e))
                    }
                    None => (u, s),
                };
                user = user.saturating_add(u);
                system = system.saturating_add(s);
                (c, u, s)
            })
            .collect();
        CpuUsage {
            user_ns: user,
            system_ns: system,
            per_cpu: Some(per),
        }
    }

    /// v2 `cpu.stat`: `user_usec`, `system_usec` (µs).
    pub fn parse_cpu_stat(text: &str) -> Option<CpuUsage> {
        let user = crate::keyed::get(text, "user_usec")?;
        let system = crate::keyed::get(text, "system_usec")?;
        Some(CpuUsage {
            user_ns: user.saturating_mul(1000),
            system_ns: system.saturating_mul(1000),
            per_cpu: None,
        })
    }

    pub fn busy_ns(&self) -> u64 {
        self.user_ns.saturating_add(self.system_ns)
    }
}

/// Shown counters of one CPU, in nanoseconds (converted to ticks when rendered).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub user: u64,
    pub system: u64,
    pub idle: u64,
}

impl Counters {
    fn add(&mut self, o: Counters) {
        self.user = self.user.saturating_add(o.user);
        self.system = self.system.saturating_add(o.system);
        self.idle = self.idle.saturating_add(o.idle);
    }
}

/// What one container's `/proc/stat` has shown so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatState {
    /// `(shown id, counters)` in view order.
    slots: Vec<(u32, Counters)>,
    last_usage: CpuUsage,
    last_wall_ns: u64,
}

impl StatState {
    /// The first reading of a container `age_ns` old: its whole usage so far, spread
    /// over its CPUs, and idle for the rest of its life.
    pub fn start(view: &CpuView, usage: &CpuUsage, age_ns: u64, wall_ns: u64) -> StatState {
        let mut st = StatState {
            slots: (0..view.len())
                .map(|i| (view.shown_id(i), Counters::default()))
                .collect(),
            last_usage: CpuUsage::default(),
            last_wall_ns: wall_ns.saturating_sub(age_ns),
        };
        st.advance(view, usage, wall_ns);
        st
    }

    /// Account for what happened since the last reading.
    pub fn advance(&mut self, view: &CpuView, usage: &CpuUsage, wall_ns: u64) {
        self.reshape(view);
        let n = self.slots.len().max(1) as u64;
        let mut busy: Vec<Counters> = vec![Counters::default(); self.slots.len()];

        let mut spread_user = 0u64;
        let mut spread_system = 0u64;
        match (&usage.per_cpu, view.renumbered()) {
            (Some(per), false) => {
                for &(cpu, u, s) in per {
                    let (lu, ls) = self.last_per_cpu(cpu);
                    let (du, ds) = (delta(u, lu), delta(s, ls));
                    match view.slot_of_host(cpu).and_then(|i| busy.get_mut(i)) {
                        Some(b) => {
                            b.user = b.user.saturating_add(du);
                            b.system = b.system.saturating_add(ds);
                        }
                        None => {
                            spread_user = spread_user.saturating_add(du);
                            spread_system = spread_system.saturating_add(ds);
                        }
                    }
                }
            }
            _ => {
                spread_user = delta(usage.user_ns, self.last_usage.user_ns);
                spread_system = delta(usage.system_ns, self.last_usage.system_ns);
            }
        }
        for (i, b) in busy.iter_mut().enumerate() {
            let extra = |total: u64| total / n + u64::from(i == 0) * (total % n);
            b.user = b.user.saturating_add(extra(spread_user));
            b.system = b.system.saturating_add(extra(spread_system));
        }

        // The container may use `capacity` CPUs' worth of the elapsed time in all; what
        // it did not use is idle. Idle is computed for the whole container and then
        // split over the CPUs in proportion to each one's unused share, so a container
        // that spends its whole quota on one of several CPUs shows no idle at all.
        let elapsed = delta(wall_ns, self.last_wall_ns);
        let capacity = u128::from(elapsed) * u128::from(view.capacity_milli()) / 1000;
        let per_cpu = (capacity / u128::from(n)).min(u128::from(elapsed));
        let busy_total: u128 = busy
            .iter()
            .map(|b| u128::from(b.user) + u128::from(b.system))
            .sum();
        let idle_total = capacity.saturating_sub(busy_total);
        let rooms: Vec<u128> = busy
            .iter()
            .map(|b| per_cpu.saturating_sub(u128::from(b.user) + u128::from(b.system)))
            .collect();
        let room_total: u128 = rooms.iter().sum();
        for (((_, c), b), room) in self.slots.iter_mut().zip(&busy).zip(&rooms) {
            let idle = (idle_total.min(room_total) * room)
                .checked_div(room_total)
                .map_or(0, |i| u64::try_from(i).unwrap_or(u64::MAX));
            c.add(Counters {
                user: b.user,
                system: b.system,
                idle,
            });
        }
        self.last_usage = usage.clone();
        self.last_wall_ns = self.last_wall_ns.max(wall_ns);
    }

    /// `(shown id, counters)` per CPU, in view order.
    pub fn slots(&self) -> &[(u32, Counters)] {
        &self.slots
    }

    pub fn total(&self) -> Counters {
        let mut t = Counters::default();
        for (_, c) in &self.slots {
            t.add(*c);
        }
        t
    }

    fn last_per_cpu(&self, cpu: u32) -> (u64, u64) {
        self.last_usage
            .per_cpu
            .as_ref()
            .and_then(|p| p.iter().find(|(c, _, _)| *c == cpu))
            .map_or((0, 0), |&(_, u, s)| (u, s))
    }

    /// Match the slots to the view's shown ids; counters of ids that disappeared go to
    /// the first slot so that nothing shown ever decreases.
    fn reshape(&mut self, view: &CpuView) {
        let ids: Vec<u32> = (0..view.len()).map(|i| view.shown_id(i)).collect();
        if self.slots.iter().map(|(id, _)| *id).eq(ids.iter().copied()) {
            return;
        }
        let mut orphaned = Counters::default();
        let mut next: Vec<(u32, Counters)> =
            ids.iter().map(|&id| (id, Counters::default())).collect();
        for (id, c) in &self.slots {
            match next.iter_mut().find(|(n, _)| n == id) {
                Some((_, slot)) => *slot = *c,
                None => orphaned.add(*c),
            }
        }
        if let Some((_, first)) = next.first_mut() {
            first.add(orphaned);
        }
        self.slots = next;
    }
}

/// Growth of a cumulative counter; a counter that went backwards (cgroup recreated,
/// stats reset) contributes nothing rather than a huge wrapped value.
fn delta(now: u64, before: u64) -> u64 {
    now.saturating_sub(before)
}

/// Nanoseconds to USER_HZ ticks.
pub fn ticks(ns: u64, ticks_per_sec: u64) -> u64 {
    u64::try_from(u128::from(ns) * u128::from(ticks_per_sec) / 1_000_000_000).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn usage_all_scaled_to_the_exact_run_time() {
        let all = CpuUsage::parse_usage_all("cpu user system\n0 300 100\n1 0 0\n2 50 50\n5 7 3\n")
            .unwrap();
        let exact = CpuUsage::parse_usage_percpu("200 40 100 9 \n").unwrap();
        let u = all.scaled_to(&exact);
        // 3:1 of 200; no sampled time: all user; 1:1 of 100; CPU 5 not listed: as is.
        assert_eq!(
            u.per_cpu.as_deref(),
            Some(&[(0, 150, 50), (1, 40, 0), (2, 50, 50), (5, 7, 3)][..])
        );
        assert_eq!((u.user_ns, u.system_ns), (247, 103));
        assert_eq!(CpuUsage::parse_usage_percpu("1 x 2"), None);
        // Huge values do not overflow.
        let big =
            CpuUsage::parse_usage_all(&format!("cpu user system\n0 {} {}\n", u64::MAX, u64::MAX))
                .unwrap()
                .scaled_to(&[u64::MAX]);
        let (_, u, s) = big.per_cpu.unwrap()[0];
        assert_eq!(u.checked_add(s), Some(u64::MAX));
    }
    use crate::CpuSet;
    use crate::cpu::CpuQuota;

    const S: u64 = 1_000_000_000;

    fn view(cpuset: &str, quota: Option<(u64, u64)>, cfs: bool) -> CpuView {
        CpuView::new(
            &CpuSet::parse("0-7").unwrap(),
            Some(&CpuSet::parse(cpuset).unwrap()),
            quota.and_then(|(q, p)| CpuQuota::new(q, p)),
            cfs,
        )
    }

    fn usage(user: u64, system: u64) -> CpuUsage {
        CpuUsage {
            user_ns: user,
            system_ns: system,
            per_cpu: None,
        }
    }

    #[test]
    fn usage_all_and_cpu_stat_parse() {
        let u = CpuUsage::parse_usage_all("cpu user system\n0 100 50\n1 10 5\nbad line\n").unwrap();
        assert_eq!((u.user_ns, u.system_ns), (110, 55));
        assert_eq!(u.per_cpu.as_deref(), Some(&[(0, 100, 50), (1, 10, 5)][..]));
        let u = CpuUsage::parse_cpu_stat("usage_usec 30\nuser_usec 20\nsystem_usec 10\n").unwrap();
        assert_eq!((u.user_ns, u.system_ns), (20_000, 10_000));
        assert!(CpuUsage::parse_cpu_stat("nr_periods 0\n").is_none());
    }

    #[test]
    fn quota_spent_on_one_of_two_cpus_leaves_no_idle_in_the_quota_view() {
        // --enable-cfs with 1.5 CPUs on a cpuset of 0-1: two CPUs shown, capacity 1.5.
        let v = view("0-1", Some((150_000, 100_000)), true);
        let u0 = CpuUsage {
            user_ns: 0,
            system_ns: 0,
            per_cpu: Some(vec![(0, 0, 0), (1, 0, 0)]),
        };
        let mut st = StatState::start(&v, &u0, 0, 0);
        let u1 = CpuUsage {
            user_ns: 15 * S,
            system_ns: 0,
            per_cpu: Some(vec![(0, 10 * S, 0), (1, 5 * S, 0)]),
        };
        st.advance(&v, &u1, 10 * S);
        assert_eq!(st.total().idle, 0);
        // A third of it used: the rest of the capacity is idle. The quota view's CPUs
        // are not the host's, so the usage is spread evenly and so is the idle.
        let u2 = CpuUsage {
            user_ns: 20 * S,
            system_ns: 0,
            per_cpu: Some(vec![(0, 15 * S, 0), (1, 5 * S, 0)]),
        };
        st.advance(&v, &u2, 20 * S);
        assert_eq!(st.total().idle, 10 * S);
        assert_eq!(st.slots()[0].1.idle, 5 * S);
        assert_eq!(st.slots()[1].1.idle, 5 * S);
    }

    #[test]
    fn saturated_half_cpu_quota_is_half_of_one_cpu_by_default() {
        // Cpuset 0-1, 0.5 CPU, one loop on cpu0: what top's process list shows (50 % of
        // one CPU) is what its header shows (25 % of two), and the per-CPU rows agree.
        let v = view("0-1", Some((50_000, 100_000)), false);
        let u0 = CpuUsage {
            user_ns: 0,
            system_ns: 0,
            per_cpu: Some(vec![(0, 0, 0), (1, 0, 0)]),
        };
        let mut st = StatState::start(&v, &u0, 0, 0);
        let u1 = CpuUsage {
            user_ns: 5 * S,
            system_ns: 0,
            per_cpu: Some(vec![(0, 5 * S, 0), (1, 0, 0)]),
        };
        st.advance(&v, &u1, 10 * S);
        let t = st.total();
        assert_eq!((t.user, t.idle), (5 * S, 15 * S));
        assert_eq!(st.slots()[0].1.idle, 5 * S);
        assert_eq!(st.slots()[1].1.idle, 10 * S);
    }

    #[test]
    fn saturating_half_cpu_quota_looks_fully_busy_in_the_quota_view() {
        let v = view("0", Some((50_000, 100_000)), true);
        let mut st = StatState::start(&v, &usage(0, 0), 0, 100 * S);
        // 10 s of wall time, 5 s of CPU: the whole quota.
        st.advance(&v, &usage(5 * S, 0), 110 * S);
        let t = st.total();
        assert_eq!(t.user, 5 * S);
        assert_eq!(t.idle, 0);
        // The same without the quota view: half of the one CPU shown.
        let v = view("0", Some((50_000, 100_000)), false);
        let mut st = StatState::start(&v, &usage(0, 0), 0, 100 * S);
        st.advance(&v, &usage(5 * S, 0), 110 * S);
        assert_eq!(st.total().idle, 5 * S);
    }

    #[test]
    fn idle_fills_the_rest_and_lines_sum_to_capacity() {
        let v = view("0-1", None, false);
        let mut st = StatState::start(&v, &usage(0, 0), 0, 0);
        st.advance(&v, &usage(S, S), 10 * S);
        let t = st.total();
        assert_eq!(t.user + t.system + t.idle, 20 * S);
        assert_eq!(st.slots().len(), 2);
    }

    #[test]
    fn per_cpu_usage_lands_on_its_cpu() {
        let v = view("2-3", None, false);
        let u0 = CpuUsage {
            user_ns: 0,
            system_ns: 0,
            per_cpu: Some(vec![(2, 0, 0), (3, 0, 0), (5, 0, 0)]),
        };
        let mut st = StatState::start(&v, &u0, 0, 0);
        let u1 = CpuUsage {
            user_ns: 4 * S,
            system_ns: 0,
            per_cpu: Some(vec![(2, 3 * S, 0), (3, 0, 0), (5, S, 0)]),
        };
        st.advance(&v, &u1, 10 * S);
        let s = st.slots();
        assert_eq!(s[0].0, 2);
        // cpu2: its own 3 s plus half of cpu5's (not visible) 1 s.
        assert_eq!(s[0].1.user, 3 * S + S / 2);
        assert_eq!(s[1].1.user, S / 2);
    }

    #[test]
    fn shrinking_view_keeps_total_monotonic() {
        let wide = view("0-3", None, false);
        let narrow = view("1", None, false);
        let mut st = StatState::start(&wide, &usage(0, 0), 0, 0);
        st.advance(&wide, &usage(4 * S, 0), 10 * S);
        let before = st.total();
        st.advance(&narrow, &usage(4 * S, 0), 11 * S);
        let after = st.total();
        assert!(after.user >= before.user && after.idle >= before.idle);
        assert_eq!(st.slots().len(), 1);
        assert_eq!(st.slots()[0].0, 1);
    }

    #[test]
    fn usage_reset_does_not_wrap() {
        let v = view("0", None, false);
        let mut st = StatState::start(&v, &usage(100 * S, 0), 200 * S, 200 * S);
        let before = st.total();
        st.advance(&v, &usage(S, 0), 201 * S);
        let after = st.total();
        assert!(after.user >= before.user && after.user < before.user + 2 * S);
    }

    #[test]
    fn ticks_convert() {
        assert_eq!(ticks(S, 100), 100);
        assert_eq!(ticks(u64::MAX, 100), u64::MAX / 10_000_000);
    }
}
