//! lxcfs-rs's NRI plugin. NRI (the Node Resource Interface of containerd and CRI-O)
//! calls plugins at container lifecycle events over a unix socket; this crate speaks
//! its protocol (ttRPC over NRI's connection multiplexer, [`mux`]) with the `ttrpc`
//! crate and the message subset in `proto/nri.proto` ([`api`], [`service`]), and
//! decides which containers get an lxcfs-rs mount's files bound in ([`plugin`]).
//! [`session`] is one connection's life; the `harness` feature adds the runtime's side,
//! for tests.
//!
//! The protocol as this crate relies on it (read in containerd/nri: `pkg/api/api.proto`,
//! `pkg/net/multiplex/{mux,ttrpc}.go`, `pkg/stub/stub.go`, `pkg/adaptation/plugin.go`,
//! `pkg/api/{event,plugin,timeouts}.go`):
//!
//! - an external plugin connects to `/var/run/nri/nri.sock`;
//! - the socket is multiplexed: frames of a big-endian u32 connection id, a big-endian
//!   u32 payload length, the payload; connection 1 carries the plugin's ttRPC service
//!   (`nri.pkg.api.v1alpha1.Plugin`, the runtime calls), connection 2 the runtime's
//!   (`nri.pkg.api.v1alpha1.Runtime`, the plugin calls); frames for unopened
//!   connections are dropped;
//! - the plugin calls `RegisterPlugin` (name; a two-digit index; within 5 s), then the
//!   runtime calls `Configure` (the answer's `events` has bit `event - 1` set per event
//!   subscribed, CreateContainer being event 4; 0 means all) and `Synchronize` (the
//!   answer echoes `more`, else the runtime drops the plugin), then the subscribed
//!   events, each within the request timeout (2 s by default);
//! - a `CreateContainerResponse`'s `adjust.mounts` are added to the container; one that
//!   shares a destination with a mount of the container's own replaces it, and two
//!   plugins adjusting the same destination fail the creation.

#[cfg(feature = "protocol")]
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
#[cfg(feature = "protocol")]
pub use generated::nri as api;
/// NRI's Runtime and Plugin ttRPC services: clients, server traits, registration.
#[cfg(feature = "protocol")]
pub use generated::nri_ttrpc as service;

#[cfg(all(feature = "protocol", any(test, feature = "harness")))]
pub mod harness;
pub mod mux;
#[cfg(feature = "protocol")]
pub mod plugin;
#[cfg(all(test, feature = "protocol"))]
mod protocol_tests;
#[cfg(feature = "protocol")]
pub mod session;
