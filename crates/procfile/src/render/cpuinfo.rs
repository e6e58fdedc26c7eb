use crate::cpu::CpuView;

/// `/proc/cpuinfo`: the host's processor blocks for the visible CPUs, in view order,
/// each `processor` line carrying the id the container sees; every other field is the
/// host's. Blocks that are not processor blocks (arm32's trailing `Hardware` block) are
/// kept after them.
pub fn cpuinfo(host: &str, view: &CpuView, out: &mut Vec<u8>) {
    let blocks: Vec<&str> = host
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .collect();
    let mut processors: Vec<(u32, &str)> = Vec::new();
    let mut others: Vec<&str> = Vec::new();
    for b in &blocks {
        match processor_id(b) {
            Some(id) => processors.push((id, b)),
            None => others.push(b),
        }
    }
    if processors.is_empty() {
        // A layout we do not know (s390x): better the host's file than a wrong one.
        out.extend_from_slice(host.as_bytes());
        return;
    }
    for slot in 0..view.len() {
        let host_id = view.host_ids().get(slot).copied().unwrap_or(0);
        let Some((_, block)) = processors.iter().find(|(id, _)| *id == host_id) else {
            continue;
        };
        let (first, rest) = block.split_once('\n').unwrap_or((block, ""));
        let label = first.split_once(':').map_or(first, |(l, _)| l);
        out.extend_from_slice(label.as_bytes());
        out.extend_from_slice(format!(": {}\n", view.shown_id(slot)).as_bytes());
        if !rest.is_empty() {
            out.extend_from_slice(rest.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    for b in others {
        out.extend_from_slice(b.as_bytes());
        out.extend_from_slice(b"\n\n");
    }
}

/// The id on a block's first line, `processor\t: 3` (x86_64, arm64).
fn processor_id(block: &str) -> Option<u32> {
    let first = block.trim_start_matches('\n').lines().next()?;
    let (label, value) = first.split_once(':')?;
    if label.trim_end() != "processor" {
        return None;
    }
    crate::value::parse_u64(value).and_then(|v| u32::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::CpuSet;
    use crate::cpu::CpuQuota;

    fn host(n: u32) -> String {
        (0..n)
            .map(|i| format!("processor\t: {i}\nvendor_id\t: GenuineIntel\ncore id\t\t: {i}\n\n"))
            .collect()
    }

    #[test]
    fn keeps_visible_blocks_with_host_ids() {
        let all = CpuSet::parse("0-3").unwrap();
        let v = CpuView::new(&all, Some(&CpuSet::parse("1,3").unwrap()), None, false);
        let mut out = Vec::new();
        cpuinfo(&host(4), &v, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "processor\t: 1\nvendor_id\t: GenuineIntel\ncore id\t\t: 1\n\n\
             processor\t: 3\nvendor_id\t: GenuineIntel\ncore id\t\t: 3\n\n"
        );
    }

    #[test]
    fn quota_view_renumbers() {
        let all = CpuSet::parse("0-3").unwrap();
        let v = CpuView::new(
            &all,
            Some(&CpuSet::parse("2-3").unwrap()),
            CpuQuota::new(50_000, 100_000),
            true,
        );
        let mut out = Vec::new();
        cpuinfo(&host(4), &v, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.matches("processor").count(), 1);
        assert!(s.starts_with("processor\t: 0\n"));
        assert!(s.contains("core id\t\t: 2\n"));
    }

    #[test]
    fn unknown_layout_is_passed_through() {
        let all = CpuSet::parse("0").unwrap();
        let v = CpuView::new(&all, None, None, false);
        let mut out = Vec::new();
        cpuinfo(
            "vendor_id       : IBM/S390\n# processors    : 2\n",
            &v,
            &mut out,
        );
        assert_eq!(out, b"vendor_id       : IBM/S390\n# processors    : 2\n");
    }
}
