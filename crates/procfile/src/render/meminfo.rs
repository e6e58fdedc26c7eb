use std::io::Write;

use crate::MemValues;

/// `/proc/meminfo`: the host's lines in the host's order, with the container's values
/// substituted (`%-16s%8u kB`), every other line copied unchanged.
///
/// A line is substituted when its label (the text before the first `:`) is one we
/// virtualize and the container has a value for it; otherwise the host's line is kept.
/// Every output line ends with `\n`, and there are exactly as many output lines as host
/// lines. Appends to `out` (the caller clears it).
pub fn meminfo(host_meminfo: &str, vals: &MemValues, out: &mut Vec<u8>) {
    out.reserve(host_meminfo.len().saturating_add(64));
    for line in host_meminfo.split_inclusive('\n') {
        let label = line.split_once(':').map(|(label, _)| label);
        // Writing into a Vec<u8> cannot fail.
        if let Some((label, value)) = label.and_then(|l| Some((l, virtual_value(l, vals)?))) {
            // The kernel's `%-16s%8lu kB`, the colon counted in the 16 columns.
            let pad = 16usize.saturating_sub(label.len() + 1);
            let _ = writeln!(out, "{label}:{:pad$}{value:>8} kB", "");
        } else if let Some((label, count)) = label.and_then(|l| Some((l, huge_count(l, vals)?))) {
            // The kernel's `HugePages_Total:   %5lu`: counts, no unit, value at column 19.
            let pad = 19usize.saturating_sub(label.len() + 1);
            let _ = writeln!(out, "{label}:{:pad$}{count:>5}", "");
        } else {
            out.extend_from_slice(line.as_bytes());
            if !line.ends_with('\n') {
                out.push(b'\n');
            }
        }
    }
}

/// The container's value for a meminfo label, in kB; `None` keeps the host's line.
fn virtual_value(label: &str, v: &MemValues) -> Option<u64> {
    let both = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_add(b?));
    match label {
        "MemTotal" => Some(v.mem_total),
        "MemFree" => Some(v.mem_free),
        "MemAvailable" => Some(v.mem_available),
        "Buffers" => Some(0),
        "Cached" => Some(v.cached),
        "SwapCached" => Some(0),
        "Active" => both(v.active_anon, v.active_file),
        "Inactive" => both(v.inactive_anon, v.inactive_file),
        "Active(anon)" => v.active_anon,
        "Inactive(anon)" => v.inactive_anon,
        "Active(file)" => v.active_file,
        "Inactive(file)" => v.inactive_file,
        "Unevictable" => v.unevictable,
        "SwapTotal" => Some(v.swap_total),
        "SwapFree" => Some(v.swap_free),
        "Dirty" => v.dirty,
        "Writeback" => v.writeback,
        "AnonPages" => v.anon_pages,
        "Mapped" => v.mapped,
        "Shmem" => v.shmem,
        "KReclaimable" => v.s_reclaimable,
        "Slab" => v.slab,
        "SReclaimable" => v.s_reclaimable,
        "SUnreclaim" => v.s_unreclaim,
        "KernelStack" => v.kernel_stack,
        "PageTables" => v.page_tables,
        "Percpu" => v.percpu,
        "AnonHugePages" => v.anon_huge,
        "ShmemHugePages" => v.shmem_huge,
        "FileHugePages" => v.file_huge,
        "Zswap" => v.zswap,
        "Zswapped" => v.zswapped,
        "Hugetlb" => v.huge?.hugetlb_kb,
        _ => None,
    }
}

/// The container's huge page count for a `HugePages_*` label; `None` keeps the host's.
fn huge_count(label: &str, v: &MemValues) -> Option<u64> {
    let h = v.huge?;
    match label {
        "HugePages_Total" => Some(h.total),
        "HugePages_Free" => Some(h.free),
        "HugePages_Rsvd" => Some(h.rsvd),
        "HugePages_Surp" => Some(h.surp),
        _ => None,
    }
}
