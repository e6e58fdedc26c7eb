//! Arbitrary host meminfo text and arbitrary container numbers (memory and hugetlb)
//! through compute, hugetlb::compute, render::meminfo and render::swaps: no panic, and
//! the invariants hold.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use procfile::{
    HostHuge, HostMem, HugeView, Limit, MemStat, MemoryView, SwapView, hugetlb, memory::compute,
    render,
};

fn limit(u: &mut Unstructured<'_>) -> Result<Limit> {
    Ok(if u.arbitrary()? {
        Limit::Max
    } else {
        Limit::Value(u.arbitrary()?)
    })
}

fn view(u: &mut Unstructured<'_>) -> Result<MemoryView> {
    let mut stat = MemStat::default();
    for slot in [
        &mut stat.cache,
        &mut stat.anon,
        &mut stat.active_anon,
        &mut stat.inactive_anon,
        &mut stat.active_file,
        &mut stat.inactive_file,
        &mut stat.unevictable,
        &mut stat.shmem,
        &mut stat.mapped,
        &mut stat.dirty,
        &mut stat.writeback,
        &mut stat.anon_thp,
        &mut stat.shmem_thp,
        &mut stat.file_thp,
        &mut stat.slab,
        &mut stat.slab_reclaimable,
        &mut stat.slab_unreclaimable,
        &mut stat.kernel_stack,
        &mut stat.pagetables,
        &mut stat.percpu,
        &mut stat.zswap,
        &mut stat.zswapped,
    ] {
        *slot = u.arbitrary()?;
    }
    let swap = if u.arbitrary()? {
        Some(SwapView {
            limit: limit(u)?,
            usage: u.arbitrary()?,
            swappiness_zero: u.arbitrary()?,
        })
    } else {
        None
    };
    Ok(MemoryView {
        limit: limit(u)?,
        usage: u.arbitrary()?,
        stat,
        swap,
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(view) = view(&mut u) else { return };
    let Ok(swap_enabled) = u.arbitrary::<bool>() else {
        return;
    };
    let Ok(huge_view) = (|| {
        Ok::<_, libfuzzer_sys::arbitrary::Error>(HugeView {
            limit: limit(&mut u)?,
            usage: u.arbitrary()?,
            rsvd_usage: u.arbitrary()?,
        })
    })() else {
        return;
    };
    let host_text = String::from_utf8_lossy(u.take_rest());
    let host = HostMem::parse(&host_text).unwrap_or_default();

    let mut vals = compute(&host, &view, swap_enabled);
    if let Some(h) = HostHuge::parse(&host_text) {
        vals.huge = hugetlb::compute(&h, &huge_view);
        if let Some(v) = vals.huge {
            assert!(v.free <= v.total && v.total <= h.total && v.rsvd <= v.free);
        }
    }
    assert!(vals.mem_total <= host.mem_total_kb);
    assert!(vals.mem_free <= vals.mem_total);
    assert!(vals.mem_available <= vals.mem_total);
    assert!(vals.cached <= vals.mem_total);
    assert!(vals.swap_free <= vals.swap_total);
    assert!(vals.swap_total <= host.swap_total_kb);

    let mut out = Vec::new();
    render::meminfo(&host_text, &vals, &mut out);
    let rendered = String::from_utf8(out).expect("renderer emits UTF-8");
    assert_eq!(rendered.lines().count(), host_text.lines().count());
    let mut swaps = Vec::new();
    render::swaps(&vals, &mut swaps);
    assert!(swaps.starts_with(b"Filename\t"));
});
