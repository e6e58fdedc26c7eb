//! What the tests of several crates and the benchmark share, written once: dev-only,
//! never part of the daemon.
//!
//! - [`cgroup`]: real groups with limits on v1, hybrid and pure v2 hosts;
//! - [`mounts`], [`proc`]: mountinfo and `/proc/<pid>` readers;
//! - [`procstat`]: the one `/proc/stat` parser of the tests;
//! - [`e2e`]: the end-to-end harness (a mounted daemon, containers), which panics with
//!   what failed;
//! - [`runtime`]: real runtimes (runc, crun, Podman, Docker, LXC) with a busybox rootfs
//!   and the CDI spec.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cgroup;
pub mod e2e;
pub mod mounts;
pub mod proc;
pub mod procstat;
pub mod runtime;
