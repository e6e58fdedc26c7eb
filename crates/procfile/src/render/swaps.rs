use crate::MemValues;

/// `/proc/swaps`: the header, then one `none … virtual` line when there is swap.
pub fn swaps(vals: &MemValues, out: &mut Vec<u8>) {
    todo!()
}
