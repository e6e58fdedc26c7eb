//! Huge pages in `/proc/meminfo`: the host's `HugePages_*` counts bounded by the
//! container's hugetlb cgroup, for the default huge page size.
//!
//! The kernel's meminfo describes only the default size (`Hugepagesize`) in the four
//! counts, and all sizes together in `Hugetlb` (kB). A container whose hugetlb limit for
//! the default size is set sees at most that many pages; without a limit the host's
//! lines are its truth and stay unchanged.

use crate::Limit;

/// The host's huge page lines of `/proc/meminfo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostHuge {
    pub total: u64,
    pub free: u64,
    pub rsvd: u64,
    pub surp: u64,
    /// `Hugepagesize`, the default size, in kB.
    pub page_kb: u64,
    /// `Hugetlb`: every size's pages together, in kB (kernels since 5.16).
    pub hugetlb_kb: Option<u64>,
}

impl HostHuge {
    /// `None` when the host shows no default huge page size (no hugetlbfs support).
    pub fn parse(meminfo: &str) -> Option<HostHuge> {
        let mut h = HostHuge::default();
        let mut page_kb = None;
        for line in meminfo.lines() {
            let Some((label, rest)) = line.split_once(':') else {
                continue;
            };
            let Some(value) = crate::memory::kb_value(rest) else {
                continue;
            };
            match label {
                "HugePages_Total" => h.total = value,
                "HugePages_Free" => h.free = value,
                "HugePages_Rsvd" => h.rsvd = value,
                "HugePages_Surp" => h.surp = value,
                "Hugepagesize" => page_kb = Some(value),
                "Hugetlb" => h.hugetlb_kb = Some(value),
                _ => {}
            }
        }
        h.page_kb = page_kb.filter(|&kb| kb > 0)?;
        Some(h)
    }

    /// The name the hugetlb controller gives the default size in its file names
    /// (`hugetlb.2MB.max`, `hugetlb.1GB.limit_in_bytes`, `hugetlb.64KB.…`).
    pub fn cgroup_size_name(&self) -> String {
        const MB: u64 = 1024;
        const GB: u64 = 1024 * 1024;
        match self.page_kb {
            kb if kb >= GB => format!("{}GB", kb / GB),
            kb if kb >= MB => format!("{}MB", kb / MB),
            kb => format!("{kb}KB"),
        }
    }
}

/// The container's hugetlb cgroup for the default size, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HugeView {
    /// The smallest limit over the container's cgroup and its ancestors.
    pub limit: Limit,
    /// Pages in use (faulted in).
    pub usage: u64,
    /// Reservations charged plus pages in use (`rsvd.current`/`rsvd.usage_in_bytes`,
    /// kernels since 5.7); `None` where the kernel does not account reservations.
    pub rsvd_usage: Option<u64>,
}

/// The four counts and `Hugetlb` as the container sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HugeValues {
    pub total: u64,
    pub free: u64,
    pub rsvd: u64,
    pub surp: u64,
    pub hugetlb_kb: Option<u64>,
}

/// `None` without a limit on the default size: the host's lines are the container's.
///
/// Invariants: `free ≤ total ≤ host.total`, `free ≤ host.free`, `rsvd ≤ free`,
/// `surp ≤ total`, `hugetlb_kb ≤ host.hugetlb_kb`; saturating everywhere.
pub fn compute(host: &HostHuge, view: &HugeView) -> Option<HugeValues> {
    let Limit::Value(limit) = view.limit else {
        return None;
    };
    let page = host.page_kb.saturating_mul(1024).max(1);
    let total = (limit / page).min(host.total);
    let used = view.usage / page;
    let free = total.saturating_sub(used).min(host.free);
    // The kernel's Rsvd is reserved but not yet faulted in; the cgroup's reservation
    // counter includes the faulted pages. Without it, the host's count bounded by what
    // this container could still fault in.
    let rsvd = match view.rsvd_usage {
        Some(r) => (r / page).saturating_sub(used),
        None => host.rsvd,
    }
    .min(free);
    let surp = host.surp.min(total);
    // Other sizes' pages are not bounded here: only the default size's part changes.
    let hugetlb_kb = host.hugetlb_kb.map(|kb| {
        let host_default = host.total.saturating_mul(host.page_kb);
        kb.saturating_sub(host_default)
            .saturating_add(total.saturating_mul(host.page_kb))
            .min(kb)
    });
    Some(HugeValues {
        total,
        free,
        rsvd,
        surp,
        hugetlb_kb,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HOST: &str = "MemTotal:       16384000 kB\n\
        HugePages_Total:     512\n\
        HugePages_Free:      500\n\
        HugePages_Rsvd:        6\n\
        HugePages_Surp:        2\n\
        Hugepagesize:       2048 kB\n\
        Hugetlb:         2097152 kB\n";

    #[test]
    fn parses_the_hosts_lines() {
        let h = HostHuge::parse(HOST).unwrap();
        assert_eq!(
            h,
            HostHuge {
                total: 512,
                free: 500,
                rsvd: 6,
                surp: 2,
                page_kb: 2048,
                hugetlb_kb: Some(2_097_152)
            }
        );
        assert_eq!(h.cgroup_size_name(), "2MB");
        assert_eq!(HostHuge::parse("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn size_names_follow_the_controller() {
        let name = |page_kb| {
            HostHuge {
                page_kb,
                ..HostHuge::default()
            }
            .cgroup_size_name()
        };
        assert_eq!(name(64), "64KB");
        assert_eq!(name(2048), "2MB");
        assert_eq!(name(32 * 1024), "32MB");
        assert_eq!(name(1024 * 1024), "1GB");
        assert_eq!(name(16 * 1024 * 1024), "16GB");
    }

    #[test]
    fn a_limit_bounds_the_counts() {
        let h = HostHuge::parse(HOST).unwrap();
        let mib = 1024 * 1024;
        let v = compute(
            &h,
            &HugeView {
                limit: Limit::Value(256 * mib),
                usage: 20 * mib,
                rsvd_usage: Some(28 * mib),
            },
        )
        .unwrap();
        assert_eq!(
            v,
            HugeValues {
                total: 128,
                free: 118,
                rsvd: 4,
                surp: 2,
                // 1 GiB of 1 GiB pages untouched, 256 MiB of 2 MiB pages.
                hugetlb_kb: Some(1_048_576 + 262_144),
            }
        );
        // Kubernetes writes 0 for pods that requested none.
        let zero = compute(
            &h,
            &HugeView {
                limit: Limit::Value(0),
                usage: 0,
                rsvd_usage: None,
            },
        )
        .unwrap();
        assert_eq!((zero.total, zero.free, zero.rsvd, zero.surp), (0, 0, 0, 0));
        let none = HugeView {
            limit: Limit::Max,
            usage: 0,
            rsvd_usage: None,
        };
        assert_eq!(compute(&h, &none), None);
    }

    #[test]
    fn never_more_free_than_the_host_has() {
        let h = HostHuge {
            free: 3,
            ..HostHuge::parse(HOST).unwrap()
        };
        let v = compute(
            &h,
            &HugeView {
                limit: Limit::Value(u64::MAX),
                usage: 0,
                rsvd_usage: None,
            },
        )
        .unwrap();
        assert_eq!((v.total, v.free, v.rsvd), (512, 3, 3));
    }
}
