//! lxcfs-rs's kubelet device plugin. The kubelet's device plugin API (v1beta1) is gRPC
//! on unix sockets; this crate speaks it with tonic and the messages of
//! `proto/deviceplugin.proto` ([`api`], generated at build time without protoc), serves
//! the plugin's side ([`plugin`]: a pool of shareable devices whose `Allocate` names a
//! CDI device) and keeps it registered with the kubelet ([`session`]). The `harness`
//! feature adds the kubelet's side, for tests.
//!
//! The protocol as this crate relies on it (read in kubernetes/kubelet
//! `pkg/apis/deviceplugin/v1beta1/{api.proto,constants.go}` and kubernetes/kubernetes
//! `pkg/kubelet/cm/devicemanager/plugin/v1beta1/{server,client}.go`):
//!
//! - the kubelet serves `v1beta1.Registration` on `kubelet.sock` in its device plugin
//!   directory, `/var/lib/kubelet/device-plugins/`;
//! - a plugin serves `v1beta1.DevicePlugin` on a socket of its own in the same
//!   directory, then calls `Register` with the API version (`v1beta1`, the only one the
//!   kubelet accepts), that socket's file name (`endpoint`, relative to the directory),
//!   an extended resource name (`domain/name`, the domain not `kubernetes.io`) and its
//!   options. Within that call the kubelet dials the endpoint (gRPC over plain HTTP/2,
//!   authority `localhost`, 10 s), asks for the options and opens `ListAndWatch`: the
//!   plugin's first message is the device list, and each later one replaces it; a
//!   device is `Healthy` or `Unhealthy`, and only healthy ones count toward the node's
//!   allocatable amount of the resource;
//! - for each container that requests the resource, the kubelet calls `Allocate` with
//!   one entry per container, the devices it picked; the answer's entries, in the same
//!   order, may carry `cdi_devices` (field 5 of `ContainerAllocateResponse`), which the
//!   kubelet hands to the runtime in the container's CRI config (kubelet >= 1.29 by
//!   default: feature DevicePluginCDIDevices, beta in 1.29, GA in 1.31);
//! - when the kubelet starts, it deletes every socket in the directory (every plugin's
//!   too) and creates `kubelet.sock` anew: plugins notice and register again.

#[allow(
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unused_qualifications
)]
pub mod api {
    tonic::include_proto!("v1beta1");
}

#[cfg(feature = "harness")]
pub mod harness;
pub mod names;
pub mod plugin;
#[cfg(test)]
mod protocol_tests;
pub mod session;
mod uds;

/// The API version a plugin registers with; the only one kubelets accept.
pub const API_VERSION: &str = "v1beta1";
/// Where the kubelet serves its Registration service and expects plugins' sockets.
pub const DEFAULT_DIR: &str = "/var/lib/kubelet/device-plugins";
/// The kubelet's socket in that directory.
pub const KUBELET_SOCKET: &str = "kubelet.sock";
/// A device's health, as the kubelet spells it.
pub const HEALTHY: &str = "Healthy";
pub const UNHEALTHY: &str = "Unhealthy";
