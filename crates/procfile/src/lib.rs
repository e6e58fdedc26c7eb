//! Pure model, parsers and renderers for lxcfs-rs.
//!
//! Nothing here performs I/O: callers hand in the text of cgroup and `/proc` files and a
//! buffer to render into. Every parser is total: malformed input yields `None` or a
//! skipped line, never a panic, because the daemon parses data that containers can
//! influence and a panic would be an outage for every container on the host.
#![forbid(unsafe_code)]

pub mod cpu;
pub mod cpuset;
pub mod cpustat;
pub mod diskstats;
pub mod hugetlb;
pub mod kernel;
pub mod keyed;
pub mod loadavg;
pub mod memory;
pub mod mountinfo;
pub mod netlink;
pub mod pid;
pub mod psi;
pub mod render;
pub mod sysinfo;
pub mod value;

pub use cpu::{CpuQuota, CpuView, SysfsLists};
pub use cpuset::CpuSet;
pub use cpustat::{CpuUsage, StatState};
pub use hugetlb::{HostHuge, HugeValues, HugeView};
pub use memory::{HostMem, MemStat, MemValues, MemoryView, SwapView};
pub use value::Limit;
