use crate::MemValues;

/// `/proc/meminfo`: the host's lines in the host's order, with the container's values
/// substituted (`%-16s%8u kB`), every other line copied unchanged.
pub fn meminfo(host_meminfo: &str, vals: &MemValues, out: &mut Vec<u8>) {
    todo!()
}
