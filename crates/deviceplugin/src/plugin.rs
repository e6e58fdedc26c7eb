//! The plugin's DevicePlugin service: a pool of interchangeable devices standing for
//! "this node's lxcfs-rs files", all healthy exactly while the node's mount serves, and
//! an `Allocate` that answers every container with the CDI device binding those files.
//!
//! The devices are not hardware: any number of containers may share the mount. They
//! exist because the kubelet counts a resource in devices, one per unit requested, so
//! the pool's size caps how many containers of the node can hold the resource at once.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::api;
use crate::api::device_plugin_server::DevicePlugin;
use crate::{HEALTHY, UNHEALTHY};

/// What the plugin offers.
#[derive(Debug, Clone)]
pub struct Config {
    /// The extended resource, e.g. `lxcfs-rs.io/proc`.
    pub resource_name: String,
    /// How many devices the pool has.
    pub devices: usize,
    /// The fully qualified CDI device every container gets, e.g.
    /// `lxcfs-rs.io/proc=default`.
    pub cdi_device: String,
}

/// The largest pool offered: its list stays far below the 4 MiB a gRPC message may
/// have by default (grpc-go's, the kubelet's, limit).
pub const MAX_DEVICES: u32 = 10_000;

/// The id of device `i`: the same on every node and after every restart, so the
/// kubelet's checkpoint of earlier allocations still names devices that exist.
pub fn device_id(i: usize) -> String {
    format!("lxcfs-rs-{i}")
}

/// The device list as ListAndWatch sends it.
pub fn device_list(devices: usize, healthy: bool) -> api::ListAndWatchResponse {
    let health = if healthy { HEALTHY } else { UNHEALTHY };
    api::ListAndWatchResponse {
        devices: (0..devices)
            .map(|i| api::Device {
                id: device_id(i),
                health: health.into(),
                topology: None,
            })
            .collect(),
    }
}

/// Neither PreStartContainer nor GetPreferredAllocation is needed: every device is
/// the same, and nothing is prepared per container.
pub fn options() -> api::DevicePluginOptions {
    api::DevicePluginOptions {
        pre_start_required: false,
        get_preferred_allocation_available: false,
    }
}

/// The answer to an Allocate: one entry per container, each naming the CDI device.
/// Devices that are not the pool's are refused, as the kubelet never asks for them.
pub fn allocate(
    config: &Config,
    req: &api::AllocateRequest,
) -> Result<api::AllocateResponse, String> {
    let known: HashSet<String> = (0..config.devices).map(device_id).collect();
    let mut container_responses = Vec::with_capacity(req.container_requests.len());
    for c in &req.container_requests {
        if let Some(unknown) = c.devices_ids.iter().find(|d| !known.contains(*d)) {
            return Err(format!("no device {unknown:?} in this plugin's pool"));
        }
        container_responses.push(api::ContainerAllocateResponse {
            cdi_devices: vec![api::CdiDevice {
                name: config.cdi_device.clone(),
            }],
            ..Default::default()
        });
    }
    Ok(api::AllocateResponse {
        container_responses,
    })
}

/// A preference the kubelet does not ask for (see [`options`]); answered anyway with
/// the devices it must include, then the first available ones.
pub fn preferred(req: &api::PreferredAllocationRequest) -> api::PreferredAllocationResponse {
    api::PreferredAllocationResponse {
        container_responses: req
            .container_requests
            .iter()
            .map(|c| {
                let size = usize::try_from(c.allocation_size).unwrap_or(0);
                let mut ids: Vec<String> = c.must_include_device_i_ds.clone();
                for d in &c.available_device_i_ds {
                    if ids.len() >= size {
                        break;
                    }
                    if !ids.contains(d) {
                        ids.push(d.clone());
                    }
                }
                api::ContainerPreferredAllocationResponse { device_i_ds: ids }
            })
            .collect(),
    }
}

/// The service of one serving generation (see [`crate::session`]).
pub struct Service {
    pub config: Arc<Config>,
    /// Whether the node's mount serves now.
    pub health: watch::Receiver<bool>,
    /// Set when this generation's server stops: its watch streams end, so that the
    /// server's graceful shutdown does not wait on them forever.
    pub stop: watch::Receiver<bool>,
}

type Devices = Pin<Box<dyn Stream<Item = Result<api::ListAndWatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl DevicePlugin for Service {
    async fn get_device_plugin_options(
        &self,
        _req: Request<api::Empty>,
    ) -> Result<Response<api::DevicePluginOptions>, Status> {
        Ok(Response::new(options()))
    }

    type ListAndWatchStream = Devices;

    async fn list_and_watch(
        &self,
        _req: Request<api::Empty>,
    ) -> Result<Response<Self::ListAndWatchStream>, Status> {
        let (tx, rx) = mpsc::channel(4);
        let mut health = self.health.clone();
        let mut stop = self.stop.clone();
        let devices = self.config.devices;
        tokio::spawn(async move {
            loop {
                let healthy = *health.borrow_and_update();
                if tx.send(Ok(device_list(devices, healthy))).await.is_err() {
                    return;
                }
                tokio::select! {
                    r = health.changed() => if r.is_err() { return },
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_preferred_allocation(
        &self,
        req: Request<api::PreferredAllocationRequest>,
    ) -> Result<Response<api::PreferredAllocationResponse>, Status> {
        Ok(Response::new(preferred(req.get_ref())))
    }

    async fn allocate(
        &self,
        req: Request<api::AllocateRequest>,
    ) -> Result<Response<api::AllocateResponse>, Status> {
        let r = allocate(&self.config, req.get_ref()).map_err(Status::invalid_argument)?;
        tracing::info!(
            "allocated {} to {} container(s)",
            self.config.cdi_device,
            r.container_responses.len()
        );
        Ok(Response::new(r))
    }

    async fn pre_start_container(
        &self,
        _req: Request<api::PreStartContainerRequest>,
    ) -> Result<Response<api::PreStartContainerResponse>, Status> {
        Ok(Response::new(api::PreStartContainerResponse {}))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> Config {
        Config {
            resource_name: "lxcfs-rs.io/proc".into(),
            devices: 3,
            cdi_device: "lxcfs-rs.io/proc=default".into(),
        }
    }

    #[test]
    fn every_container_gets_the_cdi_device_and_nothing_else() {
        let req = api::AllocateRequest {
            container_requests: vec![
                api::ContainerAllocateRequest {
                    devices_ids: vec!["lxcfs-rs-0".into()],
                },
                api::ContainerAllocateRequest {
                    devices_ids: vec!["lxcfs-rs-1".into(), "lxcfs-rs-2".into()],
                },
            ],
        };
        let r = allocate(&config(), &req).unwrap();
        assert_eq!(r.container_responses.len(), 2);
        for c in &r.container_responses {
            assert_eq!(c.cdi_devices.len(), 1);
            assert_eq!(c.cdi_devices[0].name, "lxcfs-rs.io/proc=default");
            assert!(c.mounts.is_empty() && c.devices.is_empty());
            assert!(c.envs.is_empty() && c.annotations.is_empty());
        }
    }

    #[test]
    fn devices_outside_the_pool_are_refused() {
        let req = api::AllocateRequest {
            container_requests: vec![api::ContainerAllocateRequest {
                devices_ids: vec!["lxcfs-rs-3".into()],
            }],
        };
        assert!(
            allocate(&config(), &req)
                .unwrap_err()
                .contains("lxcfs-rs-3")
        );
    }

    #[test]
    fn the_list_has_every_device_with_one_health() {
        let l = device_list(3, true);
        let ids: Vec<&str> = l.devices.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["lxcfs-rs-0", "lxcfs-rs-1", "lxcfs-rs-2"]);
        assert!(l.devices.iter().all(|d| d.health == "Healthy"));
        assert!(
            device_list(3, false)
                .devices
                .iter()
                .all(|d| d.health == "Unhealthy")
        );
        // The kubelet refuses ids longer than 63 characters.
        assert!(device_id(usize::MAX).len() <= 63);
    }

    #[test]
    fn the_largest_list_is_far_below_a_grpc_message_limit() {
        use prost::Message;
        let len = device_list(MAX_DEVICES as usize, false).encoded_len();
        assert!(len < 512 * 1024, "{len}");
    }

    #[test]
    fn a_preference_keeps_what_must_be_included_and_fills_up() {
        let req = api::PreferredAllocationRequest {
            container_requests: vec![api::ContainerPreferredAllocationRequest {
                available_device_i_ds: vec!["a".into(), "b".into(), "c".into()],
                must_include_device_i_ds: vec!["b".into()],
                allocation_size: 2,
            }],
        };
        assert_eq!(
            preferred(&req).container_responses[0].device_i_ds,
            ["b", "a"]
        );
    }
}
