//! Renderers: each writes one virtual file into a caller's buffer.

mod meminfo;
mod swaps;

pub use meminfo::meminfo;
pub use swaps::swaps;
