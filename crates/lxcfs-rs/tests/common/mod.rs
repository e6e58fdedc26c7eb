//! The end-to-end harness lives in `testkit::e2e`, shared with the pure-v2 VM runs.

#![allow(unused_imports)]

pub use testkit::e2e::*;
