//! The CPU view: which CPUs a container sees, how they are numbered, and how much of
//! them it may use. One [`CpuView`] drives cpuinfo, stat, uptime and the sysfs files,
//! so they always agree.

use crate::CpuSet;

/// A CFS bandwidth limit: `quota_us` of CPU time every `period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    pub quota_us: u64,
    pub period_us: u64,
}

impl CpuQuota {
    pub fn new(quota_us: u64, period_us: u64) -> Option<CpuQuota> {
        (quota_us > 0 && period_us > 0).then_some(CpuQuota {
            quota_us,
            period_us,
        })
    }

    /// v2 `cpu.max`: `max 100000` (no limit, `Some(None)`) or `150000 100000`.
    pub fn parse_v2(s: &str) -> Option<Option<CpuQuota>> {
        let mut it = s.split_ascii_whitespace();
        let quota = it.next()?;
        let period = match it.next() {
            Some(p) => crate::value::parse_u64(p)?,
            None => 100_000,
        };
        if it.next().is_some() {
            return None;
        }
        if quota == "max" {
            return Some(None);
        }
        let q = crate::value::parse_u64(quota)?;
        Some(CpuQuota::new(q, period))
    }

    /// v1 `cpu.cfs_quota_us` (−1 when unset) and `cpu.cfs_period_us`.
    pub fn from_v1(quota_us: i64, period_us: u64) -> Option<CpuQuota> {
        u64::try_from(quota_us)
            .ok()
            .and_then(|q| CpuQuota::new(q, period_us))
    }

    /// The smaller of two limits, compared as fractions of a CPU.
    pub fn tighter(self, other: CpuQuota) -> CpuQuota {
        let a = u128::from(self.quota_us) * u128::from(other.period_us);
        let b = u128::from(other.quota_us) * u128::from(self.period_us);
        if b < a { other } else { self }
    }

    /// Whole CPUs needed to run at the limit: ⌈quota / period⌉, at least 1.
    pub fn cpus_ceil(self) -> u64 {
        self.quota_us.div_ceil(self.period_us.max(1)).max(1)
    }

    /// The limit in thousandths of a CPU, saturating.
    pub fn millicpus(self) -> u64 {
        let m = u128::from(self.quota_us) * 1000 / u128::from(self.period_us.max(1));
        u64::try_from(m).unwrap_or(u64::MAX)
    }
}

/// The CPUs one container sees.
/// The CPUs a cgroup's cpu shares ask for (`--enable-cpu-shares`): ⌈shares / 1024⌉, at
/// least 1. Kubernetes writes a CPU request of n CPUs as n × 1024 shares.
pub fn shares_cpus(shares: u64) -> u64 {
    shares.div_ceil(1024).max(1)
}

/// v1 shares from a v2 `cpu.weight`, inverting the conversion runc, crun and Kubernetes
/// use (`weight = 1 + (shares − 2) × 9999 / 262142`); rounded up, so that the weight of
/// n × 1024 shares maps back to n CPUs.
pub fn weight_to_shares(weight: u64) -> u64 {
    let w = u128::from(weight.clamp(1, 10_000));
    let s = 2 + ((w - 1) * 262_142).div_ceil(9_999);
    u64::try_from(s).unwrap_or(262_144)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuView {
    /// Host ids of the visible CPUs, ascending.
    host_ids: Vec<u32>,
    /// Quota view (`--enable-cfs`): shown as `0..n-1` instead of host ids.
    renumbered: bool,
    /// The CPU time the shown CPUs stand for, in thousandths of a CPU: what `/proc/stat`
    /// counts as busy plus idle. `1000 × n`, or the quota in the quota view.
    capacity_milli: u64,
}

impl CpuView {
    /// `host_online`: the host's online CPUs; `cpuset`: the container's effective
    /// cpuset (`None` without a cpuset controller); `quota`: the effective quota
    /// (minimum over ancestors); `cfs`: the quota view.
    ///
    /// Visible CPUs are the cpuset's online CPUs, or all online CPUs when that is empty.
    /// In the quota view only the first ⌈quota⌉ of them are shown, renumbered from 0.
    ///
    /// Capacity follows what is shown. Without the quota view the container sees its
    /// cpuset's CPUs, so their whole time is the capacity and a quota only shows as
    /// idle: `top`'s header then agrees with its process list (one loop held to half a
    /// CPU on two CPUs is 25 % us, the loop 50 % of one CPU) and with the per-CPU rows.
    /// Idle as the unused quota there would show that loop as 100 % us on two CPUs.
    /// In the quota view the shown CPUs stand for the quota, and a container spending
    /// all of it looks fully busy.
    pub fn new(
        host_online: &CpuSet,
        cpuset: Option<&CpuSet>,
        quota: Option<CpuQuota>,
        cfs: bool,
    ) -> CpuView {
        let mut ids: Vec<u32> = match cpuset {
            Some(set) => set.iter().filter(|&c| host_online.contains(c)).collect(),
            None => Vec::new(),
        };
        if ids.is_empty() {
            ids = host_online.iter().collect();
        }
        if ids.is_empty() {
            // An unreadable or empty online list still leaves the CPU we run on.
            ids.push(0);
        }
        let renumbered = cfs && quota.is_some();
        if let (true, Some(q)) = (cfs, quota) {
            let n = usize::try_from(q.cpus_ceil()).unwrap_or(usize::MAX);
            ids.truncate(n.max(1));
        }
        let full = (ids.len() as u64).saturating_mul(1000);
        let capacity_milli = match (renumbered, quota) {
            (true, Some(q)) => q.millicpus().clamp(1, full),
            _ => full,
        };
        CpuView {
            host_ids: ids,
            renumbered,
            capacity_milli,
        }
    }

    /// Number of CPUs shown (at least 1).
    /// At most `n` CPUs (at least 1), shown as 0..n−1 like the quota view, and no more
    /// capacity than they have: every CPU file follows from the same count.
    pub fn at_most(mut self, n: u64) -> CpuView {
        let n = usize::try_from(n.max(1)).unwrap_or(usize::MAX);
        if n < self.host_ids.len() {
            self.host_ids.truncate(n);
            self.renumbered = true;
            let full = (n as u64).saturating_mul(1000);
            self.capacity_milli = self.capacity_milli.min(full);
        }
        self
    }

    pub fn len(&self) -> usize {
        self.host_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.host_ids.is_empty()
    }

    pub fn renumbered(&self) -> bool {
        self.renumbered
    }

    pub fn host_ids(&self) -> &[u32] {
        &self.host_ids
    }

    pub fn capacity_milli(&self) -> u64 {
        self.capacity_milli
    }

    /// The id the container sees for the CPU in `slot` (0-based position).
    pub fn shown_id(&self, slot: usize) -> u32 {
        if self.renumbered {
            u32::try_from(slot).unwrap_or(u32::MAX)
        } else {
            self.host_ids.get(slot).copied().unwrap_or(0)
        }
    }

    /// The host CPU behind a shown id.
    pub fn host_id_of(&self, shown: u32) -> Option<u32> {
        if self.renumbered {
            self.host_ids.get(usize::try_from(shown).ok()?).copied()
        } else {
            self.host_ids.contains(&shown).then_some(shown)
        }
    }

    /// The slot of a host CPU, if visible.
    pub fn slot_of_host(&self, host: u32) -> Option<usize> {
        self.host_ids.iter().position(|&c| c == host)
    }

    /// The shown ids as a set (for `online`, `possible`, `present`).
    pub fn shown_set(&self) -> CpuSet {
        let mut s = CpuSet::default();
        for slot in 0..self.len() {
            s.insert(self.shown_id(slot));
        }
        s
    }

    /// The lists of `/sys/devices/system/cpu`. The container's machine has exactly the
    /// CPUs it sees: `possible`, `present` and `online` are the shown CPUs and `offline`
    /// is empty. The kernel keeps `offline` ⊆ `possible` and `online` ∪ `offline` =
    /// `present` ⊆ `possible`, and htop and lscpu rely on it: listing the host's other
    /// CPUs as offline (outside `possible`) showed them phantom rows.
    pub fn sysfs_lists(&self) -> SysfsLists {
        let shown = self.shown_set();
        SysfsLists {
            online: shown.clone(),
            possible: shown.clone(),
            present: shown,
            offline: CpuSet::default(),
        }
    }
}

/// What `online`, `possible`, `present` and `offline` list (see [`CpuView::sysfs_lists`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysfsLists {
    pub online: CpuSet,
    pub possible: CpuSet,
    pub present: CpuSet,
    pub offline: CpuSet,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn set(s: &str) -> CpuSet {
        CpuSet::parse(s).unwrap()
    }

    #[test]
    fn quota_parsing_and_comparison() {
        assert_eq!(CpuQuota::parse_v2("max 100000\n"), Some(None));
        assert_eq!(
            CpuQuota::parse_v2("150000 100000\n"),
            Some(CpuQuota::new(150_000, 100_000))
        );
        assert_eq!(CpuQuota::parse_v2("garbage"), None);
        assert_eq!(CpuQuota::parse_v2(""), None);
        assert_eq!(CpuQuota::from_v1(-1, 100_000), None);
        let a = CpuQuota::new(150_000, 100_000).unwrap();
        let b = CpuQuota::new(50_000, 50_000).unwrap();
        assert_eq!(a.tighter(b), b);
        assert_eq!(a.cpus_ceil(), 2);
        assert_eq!(a.millicpus(), 1500);
        assert_eq!(CpuQuota::new(u64::MAX, 1).unwrap().millicpus(), u64::MAX);
    }

    #[test]
    fn default_view_keeps_host_ids() {
        let v = CpuView::new(&set("0-11"), Some(&set("0-3,8,10-11")), None, false);
        assert_eq!(v.host_ids(), &[0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(v.shown_set().to_string(), "0-3,8,10-11");
        let l = v.sysfs_lists();
        assert_eq!(l.possible.to_string(), "0-3,8,10-11");
        assert_eq!(l.offline.to_string(), "");
        assert_eq!(v.host_id_of(8), Some(8));
        assert_eq!(v.host_id_of(4), None);
        assert_eq!(v.capacity_milli(), 7000);
    }

    #[test]
    fn quota_view_renumbers_and_caps() {
        let q = CpuQuota::new(150_000, 100_000);
        let v = CpuView::new(&set("0-7"), Some(&set("2-5")), q, true);
        assert_eq!(v.host_ids(), &[2, 3]);
        assert_eq!(v.shown_set().to_string(), "0-1");
        assert_eq!(v.host_id_of(1), Some(3));
        assert_eq!(v.sysfs_lists().present.to_string(), "0-1");
        assert_eq!(v.sysfs_lists().offline.to_string(), "");
        assert_eq!(v.capacity_milli(), 1500);
        // Quota larger than the cpuset: the cpuset wins.
        let v = CpuView::new(
            &set("0-7"),
            Some(&set("2-3")),
            CpuQuota::new(800_000, 100_000),
            true,
        );
        assert_eq!(v.len(), 2);
        // Without --enable-cfs a quota limits neither the count nor the capacity: the
        // CPUs shown are the cpuset's, and their time is what idle is counted against.
        let v = CpuView::new(&set("0-1"), None, CpuQuota::new(50_000, 100_000), false);
        assert_eq!(
            (v.len(), v.capacity_milli(), v.renumbered()),
            (2, 2000, false)
        );
    }

    #[test]
    fn empty_or_disjoint_cpuset_falls_back_to_host() {
        let v = CpuView::new(&set("0-3"), Some(&set("")), None, false);
        assert_eq!(v.len(), 4);
        let v = CpuView::new(&set("0-3"), Some(&set("8-9")), None, false);
        assert_eq!(v.len(), 4);
        let v = CpuView::new(&set(""), None, None, false);
        assert_eq!(v.host_ids(), &[0]);
    }

    #[test]
    fn shares_and_weights_give_the_requested_cpus() {
        assert_eq!(shares_cpus(2), 1);
        assert_eq!(shares_cpus(512), 1);
        assert_eq!(shares_cpus(1024), 1);
        assert_eq!(shares_cpus(1025), 2);
        assert_eq!(shares_cpus(2048), 2);
        assert_eq!(shares_cpus(262_144), 256);
        // What runtimes write for n × 1024 shares maps back to n CPUs.
        for shares in [
            2u64, 512, 1024, 1025, 1536, 2048, 3072, 4096, 10_240, 262_144,
        ] {
            let weight = 1 + (shares - 2) * 9999 / 262_142;
            assert_eq!(
                shares_cpus(weight_to_shares(weight)),
                shares_cpus(shares),
                "shares {shares}, weight {weight}"
            );
        }
        // The kernel's default weight, 100, is about 2.5 CPUs' worth of shares.
        assert_eq!(shares_cpus(weight_to_shares(100)), 3);
        assert_eq!(weight_to_shares(0), 2);
        assert_eq!(weight_to_shares(u64::MAX), 262_144);
    }

    #[test]
    fn at_most_renumbers_and_caps_the_capacity() {
        let v = CpuView::new(&set("0-3"), Some(&set("1-3")), None, false).at_most(2);
        assert_eq!(v.host_ids(), &[1, 2]);
        assert!(v.renumbered());
        assert_eq!(v.shown_set().to_string(), "0-1");
        assert_eq!(v.capacity_milli(), 2000);
        // A quota tighter than the count keeps its capacity in the quota view; without
        // it the capacity is the CPUs shown.
        let q = CpuQuota::new(50_000, 100_000);
        let v = CpuView::new(&set("0-3"), None, q, true).at_most(2);
        assert_eq!(v.capacity_milli(), 500);
        let v = CpuView::new(&set("0-3"), None, q, false).at_most(2);
        assert_eq!(v.capacity_milli(), 2000);
        // Never more CPUs than the view had, never none.
        let v = CpuView::new(&set("0-1"), None, None, false).at_most(8);
        assert_eq!(v.host_ids(), &[0, 1]);
        assert!(!v.renumbered());
        assert_eq!(
            CpuView::new(&set("0-1"), None, None, false)
                .at_most(0)
                .len(),
            1
        );
    }
}
