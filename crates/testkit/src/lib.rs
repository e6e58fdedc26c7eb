//! What the tests of several crates share, written once: dev-only, never part of the
//! daemon. (Issue 12 wants the end-to-end harness and the benchmark's helpers here too;
//! so far it holds the `/proc/stat` parser that hostview's fixture tests and the
//! end-to-end tests both need.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod procstat;
