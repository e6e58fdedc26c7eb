//! Renderers: each writes one virtual file into a caller's buffer.

mod cpuinfo;
mod meminfo;
mod simple;
mod stat;
mod swaps;
mod vmstat;

pub use cpuinfo::cpuinfo;
pub use meminfo::meminfo;
pub use simple::{cpu_list, uptime};
pub use stat::{ProcessCounts, stat};
pub use swaps::swaps;
pub use vmstat::vmstat;
