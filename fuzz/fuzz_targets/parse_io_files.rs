//! Block I/O inputs (v2 io.stat, v1 blkio.throttle.*) and diskstats rendered from
//! arbitrary host text; taskstats netlink replies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procfile::{diskstats, netlink};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    // Split near the middle, on a character boundary.
    let mid = (0..=s.len() / 2)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    let (a, b) = s.split_at(mid);
    let mut io = diskstats::parse_io_stat(&s);
    io.extend(diskstats::parse_blkio(a, b));
    let mut out = Vec::new();
    diskstats::render(&s, &io, &mut out);
    if let Some(r) = netlink::parse_reply(data) {
        let _ = netlink::family_id(&r);
        let _ = netlink::cgroupstats(&r);
    }
});
