//! Reading a container's CPU inputs: effective cpuset, effective quota, usage.

use procfile::value::{parse_i64, parse_u64};
use procfile::{CpuQuota, CpuSet, CpuUsage, CpuView};

use crate::cgroup::{Backend, CgroupPaths, Controller, Hierarchies, ancestors};
use crate::error::{Error, Result};

/// True when the reader sits at the root of every CPU hierarchy: it is the host, and
/// the host's own files are the truth.
pub fn at_root(hier: &Hierarchies, paths: &CgroupPaths) -> bool {
    [Controller::Cpuset, Controller::Cpu, Controller::Cpuacct]
        .into_iter()
        .all(|c| paths.locate(hier, c).is_none_or(|(_, p)| p == "."))
}

pub fn view(
    hier: &Hierarchies,
    paths: &CgroupPaths,
    host_online: &CpuSet,
    cfs: bool,
    shares: bool,
) -> Result<CpuView> {
    let cpuset = effective_cpuset(hier, paths)?;
    let quota = effective_quota(hier, paths)?;
    let view = CpuView::new(host_online, cpuset.as_ref(), quota, cfs);
    Ok(
        match shares
            .then(|| effective_shares(hier, paths))
            .transpose()?
            .flatten()
        {
            Some(s) => view.at_most(procfile::cpu::shares_cpus(s)),
            None => view,
        },
    )
}

/// The container's cpu shares (`--enable-cpu-shares`): v1 `cpu.shares`, or v2
/// `cpu.weight` mapped back to shares, the smallest over its cgroup and the ones above.
/// Kubernetes writes a container's request on its cgroup and sums on the pod's and the
/// QoS class's, so the smallest is the container's; and a cgroup below it that nobody
/// set (systemd's `init.scope` in the container, weight 100) does not hide it. `None`
/// without the cpu controller.
fn effective_shares(hier: &Hierarchies, paths: &CgroupPaths) -> Result<Option<u64>> {
    let (Some(backend), Some((dir, path))) = (
        hier.backend(Controller::Cpu),
        paths.locate(hier, Controller::Cpu),
    ) else {
        return Ok(None);
    };
    let (name, from_file): (&str, fn(u64) -> u64) = match backend {
        Backend::V1(_) => ("cpu.shares", |s| s),
        Backend::V2 => ("cpu.weight", procfile::cpu::weight_to_shares),
    };
    let mut least: Option<u64> = None;
    // Not the root's: v1 gives it 1024 shares, which say nothing.
    for p in ancestors(path).take_while(|p| *p != ".") {
        if let Some(v) = hier.above.parse(dir, path, p, name, parse_u64)? {
            let shares = from_file(v);
            least = Some(least.map_or(shares, |l| l.min(shares)));
        }
    }
    Ok(least)
}

/// The nearest non-empty cpuset up the tree (an empty `cpuset.cpus` means "inherit").
fn effective_cpuset(hier: &Hierarchies, paths: &CgroupPaths) -> Result<Option<CpuSet>> {
    let Some(backend) = hier.backend(Controller::Cpuset) else {
        return Ok(None);
    };
    let Some((dir, path)) = paths.locate(hier, Controller::Cpuset) else {
        return Ok(None);
    };
    let names: &[&str] = match backend {
        Backend::V1(_) => &["cpuset.effective_cpus", "cpuset.cpus"],
        Backend::V2 => &["cpuset.cpus.effective"],
    };
    for p in ancestors(path) {
        for name in names {
            if let Some(set) = hier.above.parse(dir, path, p, name, CpuSet::parse)? {
                if !set.is_empty() {
                    return Ok(Some(set));
                }
                break;
            }
        }
    }
    Ok(None)
}

/// The tightest CFS quota over the cgroup and its ancestors.
fn effective_quota(hier: &Hierarchies, paths: &CgroupPaths) -> Result<Option<CpuQuota>> {
    let Some(backend) = hier.backend(Controller::Cpu) else {
        return Ok(None);
    };
    let Some((dir, path)) = paths.locate(hier, Controller::Cpu) else {
        return Ok(None);
    };
    let mut quota: Option<CpuQuota> = None;
    for p in ancestors(path) {
        let q = match backend {
            Backend::V1(_) => {
                let Some(q) = hier
                    .above
                    .parse(dir, path, p, "cpu.cfs_quota_us", parse_i64)?
                else {
                    continue;
                };
                let period = hier
                    .above
                    .read(dir, path, p, "cpu.cfs_period_us")?
                    .and_then(|s| parse_u64(&s))
                    .unwrap_or(100_000);
                CpuQuota::from_v1(q, period)
            }
            Backend::V2 => {
                let Some(q) = hier
                    .above
                    .parse(dir, path, p, "cpu.max", CpuQuota::parse_v2)?
                else {
                    continue;
                };
                q
            }
        };
        quota = match (quota, q) {
            (Some(a), Some(b)) => Some(a.tighter(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(quota)
}

/// The container's CPU time: v1 per-CPU from `cpuacct.usage_all` (or the total from
/// `cpuacct.usage`), v2 totals from `cpu.stat`, which every v2 cgroup has.
pub fn usage(hier: &Hierarchies, paths: &CgroupPaths) -> Result<CpuUsage> {
    if let (Some(Backend::V1(_)), Some((dir, path))) = (
        hier.backend(Controller::Cpuacct),
        paths.locate(hier, Controller::Cpuacct),
    ) {
        let rel = format!("{path}/cpuacct.usage_all");
        if let Some(s) = dir.read_optional(&rel)? {
            let all =
                CpuUsage::parse_usage_all(&s).ok_or_else(|| Error::parse(dir.path_of(&rel)))?;
            // Its user/system split is sampled at ticks; the exact run time per CPU
            // is what the container used (see `CpuUsage::scaled_to`).
            let rel = format!("{path}/cpuacct.usage_percpu");
            return Ok(match dir.read_optional(&rel)? {
                Some(s) => all.scaled_to(
                    &CpuUsage::parse_usage_percpu(&s)
                        .ok_or_else(|| Error::parse(dir.path_of(&rel)))?,
                ),
                None => all,
            });
        }
        // Older kernels: only the total. Counting it as user time keeps the sum right;
        // LXCFS's per-CPU fallback counted it twice.
        let rel = format!("{path}/cpuacct.usage");
        let s = dir.read_string(&rel)?;
        let total = parse_u64(&s).ok_or_else(|| Error::parse(dir.path_of(&rel)))?;
        return Ok(CpuUsage {
            user_ns: total,
            system_ns: 0,
            per_cpu: None,
        });
    }
    let (Some(v2), Some(path)) = (hier.v2.as_ref(), paths.unified()) else {
        return Ok(CpuUsage::default());
    };
    let rel = format!("{path}/cpu.stat");
    let s = v2.dir.read_string(&rel)?;
    CpuUsage::parse_cpu_stat(&s).ok_or_else(|| Error::parse(v2.dir.path_of(&rel)))
}
