//! lxcfs-rs's NRI plugin. NRI (the Node Resource Interface of containerd and CRI-O)
//! calls plugins at container lifecycle events over a unix socket; this crate speaks
//! its protocol (ttRPC over NRI's connection multiplexer, [`mux`]) with the `ttrpc`
//! crate and the message subset in `proto/nri.proto` ([`api`], [`service`]), and
//! decides which containers get an lxcfs-rs mount's files bound in ([`plugin`]).
//! [`session`] is one connection's life; the `harness` feature adds the runtime's side,
//! for tests.

mod generated {
    #![allow(
        clippy::all,
        clippy::unwrap_used,
        clippy::expect_used,
        unused_qualifications
    )]
    include!(concat!(env!("OUT_DIR"), "/generated.rs"));
}
/// NRI's messages (generated from proto/nri.proto).
pub use generated::nri as api;
/// NRI's Runtime and Plugin ttRPC services: clients, server traits, registration.
pub use generated::nri_ttrpc as service;

#[cfg(any(test, feature = "harness"))]
pub mod harness;
pub mod mux;
pub mod plugin;
#[cfg(test)]
mod protocol_tests;
pub mod session;
