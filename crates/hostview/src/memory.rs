//! Reading a container's memory controller into a [`MemoryView`].

use procfile::value::{parse_limit_v1, parse_limit_v2, parse_u64};
use procfile::{HugeView, Limit, MemStat, MemoryView, SwapView};

use crate::cgroup::{Above, Backend, CgroupPaths, Controller, Hierarchies, ancestors};
use crate::error::{Error, Result};
use crate::fsio::Dir;

/// The container's memory, or `None` when it has no memory controller or sits at the
/// hierarchy root: then the host's own values are the truth.
pub fn read(hier: &Hierarchies, paths: &CgroupPaths) -> Result<Option<MemoryView>> {
    let Some((backend, dir, path)) = below_root(hier, paths, Controller::Memory) else {
        return Ok(None);
    };
    match backend {
        Backend::V1(_) => read_v1(&hier.above, dir, path).map(Some),
        Backend::V2 => read_v2(&hier.above, dir, path),
    }
}

/// Where the container's cgroup of `c` is, unless it has none or it is the hierarchy's
/// root (whose values are the host's own).
fn below_root<'h>(
    hier: &'h Hierarchies,
    paths: &'h CgroupPaths,
    c: Controller,
) -> Option<(Backend, &'h Dir, &'h str)> {
    let backend = hier.backend(c)?;
    let (dir, path) = paths.locate(hier, c)?;
    (path != ".").then_some((backend, dir, path))
}

/// The nearest of `path` and its ancestors (the root excluded) that has file `name`,
/// with the file's text: v2 may not enable a controller in the container's own cgroup.
fn nearest<'p>(dir: &Dir, path: &'p str, name: &str) -> Result<Option<(&'p str, String)>> {
    for p in ancestors(path).take_while(|p| *p != ".") {
        if let Some(s) = dir.read_optional(&file(p, name))? {
            return Ok(Some((p, s)));
        }
    }
    Ok(None)
}

fn file(path: &str, name: &str) -> String {
    format!("{path}/{name}")
}

fn read_u64(dir: &Dir, rel: &str) -> Result<u64> {
    let s = dir.read_string(rel)?;
    parse_u64(&s).ok_or_else(|| Error::parse(dir.path_of(rel)))
}

/// Minimum of a limit file over `path` and its ancestors; missing files are skipped
/// (the root has none on v2, and a level without the controller enabled has none).
fn min_limit(
    above: &Above,
    dir: &Dir,
    path: &str,
    name: &str,
    parse: fn(&str) -> Option<Limit>,
) -> Result<Limit> {
    let mut limit = Limit::Max;
    for p in ancestors(path) {
        if let Some(l) = above.parse(dir, path, p, name, parse)? {
            limit = limit.min(l);
        }
    }
    Ok(limit)
}

fn read_v1(above: &Above, dir: &Dir, path: &str) -> Result<MemoryView> {
    let limit = min_limit(above, dir, path, "memory.limit_in_bytes", parse_limit_v1)?;
    let usage = read_u64(dir, &file(path, "memory.usage_in_bytes"))?;
    let stat = MemStat::from_v1(&dir.read_string(&file(path, "memory.stat"))?);
    // memsw files exist only when the kernel accounts swap (swapaccount=1).
    let swap = match dir.read_optional(&file(path, "memory.memsw.usage_in_bytes"))? {
        Some(s) => {
            let memsw_usage = parse_u64(&s).ok_or_else(|| {
                Error::parse(dir.path_of(&file(path, "memory.memsw.usage_in_bytes")))
            })?;
            let memsw_limit = min_limit(
                above,
                dir,
                path,
                "memory.memsw.limit_in_bytes",
                parse_limit_v1,
            )?;
            let swappiness = dir
                .read_optional(&file(path, "memory.swappiness"))?
                .and_then(|s| parse_u64(&s));
            Some(SwapView::from_v1(
                limit,
                memsw_limit,
                usage,
                memsw_usage,
                swappiness,
            ))
        }
        None => None,
    };
    Ok(MemoryView {
        limit,
        usage,
        stat,
        swap,
    })
}

fn read_v2(above: &Above, dir: &Dir, path: &str) -> Result<Option<MemoryView>> {
    // Usage and statistics come from the nearest level where the controller is enabled
    // (a runtime may not delegate it to the container's own cgroup); limits from every
    // level.
    let Some((at, current)) = nearest(dir, path, "memory.current")? else {
        return Ok(None);
    };
    let limit = min_limit(above, dir, path, "memory.max", parse_limit_v2)?;
    let usage = parse_u64(&current)
        .ok_or_else(|| Error::parse(dir.path_of(&file(at, "memory.current"))))?;
    let stat = MemStat::from_v2(&dir.read_string(&file(at, "memory.stat"))?);
    let swap = match dir.read_optional(&file(at, "memory.swap.current"))? {
        Some(s) => {
            let usage = parse_u64(&s)
                .ok_or_else(|| Error::parse(dir.path_of(&file(at, "memory.swap.current"))))?;
            let limit = min_limit(above, dir, path, "memory.swap.max", parse_limit_v2)?;
            Some(SwapView {
                limit,
                usage,
                swappiness_zero: false,
            })
        }
        None => None,
    };
    Ok(Some(MemoryView {
        limit,
        usage,
        stat,
        swap,
    }))
}

/// The container's hugetlb cgroup for one page size (`size` as the controller names it:
/// `2MB`), or `None` without the controller or at the hierarchy root.
pub fn read_huge(hier: &Hierarchies, paths: &CgroupPaths, size: &str) -> Result<Option<HugeView>> {
    let Some((backend, dir, path)) = below_root(hier, paths, Controller::Hugetlb) else {
        return Ok(None);
    };
    let (limit_name, parse, usage_name, rsvd_name): (_, fn(&str) -> Option<Limit>, _, _) =
        match backend {
            Backend::V1(_) => (
                format!("hugetlb.{size}.limit_in_bytes"),
                parse_limit_v1,
                format!("hugetlb.{size}.usage_in_bytes"),
                format!("hugetlb.{size}.rsvd.usage_in_bytes"),
            ),
            Backend::V2 => (
                format!("hugetlb.{size}.max"),
                parse_limit_v2,
                format!("hugetlb.{size}.current"),
                format!("hugetlb.{size}.rsvd.current"),
            ),
        };
    // Usage from the nearest level that has it, limits from every level.
    let Some((at, usage)) = nearest(dir, path, &usage_name)? else {
        return Ok(None);
    };
    let usage =
        parse_u64(&usage).ok_or_else(|| Error::parse(dir.path_of(&file(at, &usage_name))))?;
    let rsvd_usage = dir
        .read_optional(&file(at, &rsvd_name))?
        .and_then(|s| parse_u64(&s));
    Ok(Some(HugeView {
        limit: min_limit(&hier.above, dir, path, &limit_name, parse)?,
        usage,
        rsvd_usage,
    }))
}
