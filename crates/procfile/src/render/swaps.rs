use std::io::Write;

use crate::MemValues;

/// `/proc/swaps`: the header, then one `none … virtual` line when there is swap.
///
/// The layout is LXCFS's: `none` padded to 40 columns, then `virtual`, size and used in
/// kB, priority 0. Appends to `out` (the caller clears it).
pub fn swaps(vals: &MemValues, out: &mut Vec<u8>) {
    out.extend_from_slice(b"Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n");
    if vals.swap_total > 0 {
        // Writing into a Vec<u8> cannot fail.
        let _ = writeln!(
            out,
            "{:<40}virtual\t\t{}\t{}\t0",
            "none",
            vals.swap_total,
            vals.swap_used()
        );
    }
}
