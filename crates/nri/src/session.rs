//! The plugin's side of one connection to a runtime: register, get configured and
//! synchronized, answer CreateContainer until the runtime goes away.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ttrpc::r#async::transport::{Listener, Socket};
use ttrpc::r#async::{Client, Server, TtrpcContext};

use crate::api;
use crate::mux;
use crate::plugin::{Decision, Gate, Policy};
use crate::service;

/// The event CreateContainer, as numbered in NRI's Event enum.
pub const EVENT_CREATE_CONTAINER: i32 = 4;

/// The subscription mask for `events`: bit (event - 1) per event.
pub fn event_mask(events: &[i32]) -> i32 {
    events
        .iter()
        .filter(|&&e| (1..32).contains(&e))
        .fold(0, |m, e| m | (1 << (e - 1)))
}

/// How long the runtime gets to answer RegisterPlugin (NRI's own registration timeout
/// is 5 s).
const REGISTER_TIMEOUT: Duration = Duration::from_secs(5);

/// Who the plugin says it is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Letters, digits and `-_.+`.
    pub name: String,
    /// Two digits: the plugin's place in the order plugins are called in.
    pub index: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start the plugin's ttRPC service: {0}")]
    Serve(ttrpc::Error),
    #[error("the runtime refused the registration: {0}")]
    Register(ttrpc::Error),
    #[error("the connection to the runtime broke: {0}")]
    Broken(String),
}

/// The answers of the plugin's service.
struct Service {
    policy: Policy,
    gate: Gate,
}

#[async_trait::async_trait]
impl service::Plugin for Service {
    async fn configure(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConfigureRequest,
    ) -> ttrpc::Result<api::ConfigureResponse> {
        tracing::info!(
            "configured by {} {} (NRI {}; request timeout {} ms)",
            req.runtime_name,
            req.runtime_version,
            if req.nri_version.is_empty() {
                "version unknown"
            } else {
                &req.nri_version
            },
            req.request_timeout
        );
        let mut r = api::ConfigureResponse::new();
        r.events = event_mask(&[EVENT_CREATE_CONTAINER]);
        Ok(r)
    }

    async fn synchronize(
        &self,
        _ctx: &TtrpcContext,
        req: api::SynchronizeRequest,
    ) -> ttrpc::Result<api::SynchronizeResponse> {
        // Running containers cannot be given mounts: nothing to update.
        tracing::debug!(
            "synchronized: {} pods, {} containers{}",
            req.pods.len(),
            req.containers.len(),
            if req.more { ", more to come" } else { "" }
        );
        let mut r = api::SynchronizeResponse::new();
        r.more = req.more;
        Ok(r)
    }

    async fn shutdown(&self, _ctx: &TtrpcContext, _req: api::Empty) -> ttrpc::Result<api::Empty> {
        tracing::info!("the runtime is shutting down");
        Ok(api::Empty::new())
    }

    async fn create_container(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateContainerRequest,
    ) -> ttrpc::Result<api::CreateContainerResponse> {
        let pod = req.pod.into_option().unwrap_or_default();
        let container = req.container.into_option().unwrap_or_default();
        let served = if self.policy.opted_in(&pod) {
            Some(self.gate.served().await)
        } else {
            None
        };
        let decision = match served {
            None => Decision::NotOptedIn,
            Some(s) => self.policy.decide(&pod, move || s),
        };
        let mut adjust = api::ContainerAdjustment::new();
        let who = format!(
            "{}/{} container {}",
            pod.namespace, pod.name, container.name
        );
        match decision {
            Decision::NotOptedIn => tracing::debug!("{who}: not opted in"),
            Decision::NotServing(why) => {
                // The container starts without the files rather than failing.
                tracing::warn!("{who}: no binds, the mount does not serve: {why}")
            }
            Decision::Binds(mounts) => {
                tracing::info!("{who}: {} binds", mounts.len());
                adjust.mounts = mounts;
            }
        }
        let mut r = api::CreateContainerResponse::new();
        r.adjust = protobuf::MessageField::some(adjust);
        Ok(r)
    }
}

/// Connects to the runtime's NRI socket at `path` and serves until the runtime closes
/// the connection (Ok) or breaks it.
pub async fn run(
    path: &Path,
    identity: &Identity,
    policy: Policy,
    gate: Gate,
) -> Result<(), Error> {
    let trunk = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|source| Error::Connect {
            path: path.display().to_string(),
            source,
        })?;
    serve(trunk, identity, policy, gate).await
}

/// Serves on an established connection to the runtime.
pub async fn serve(
    trunk: tokio::net::UnixStream,
    identity: &Identity,
    policy: Policy,
    gate: Gate,
) -> Result<(), Error> {
    let (mut conns, mut socket) =
        mux::multiplex(trunk, &[mux::PLUGIN_SERVICE, mux::RUNTIME_SERVICE]);
    let (Some(runtime_conn), Some(plugin_conn)) = (conns.pop(), conns.pop()) else {
        return Err(Error::Broken(
            "the multiplexer opened no connections".into(),
        ));
    };
    let mut server = Server::new()
        .add_listener(one_connection(plugin_conn))
        .register_service(service::create_plugin(Arc::new(Service { policy, gate })));
    server.start().await.map_err(Error::Serve)?;
    let runtime = service::RuntimeClient::new(Client::new(Socket::new(runtime_conn)));
    let mut req = api::RegisterPluginRequest::new();
    req.plugin_name = identity.name.clone();
    req.plugin_idx = identity.index.clone();
    let register = runtime.register_plugin(
        ttrpc::context::with_timeout(REGISTER_TIMEOUT.as_nanos() as i64),
        &req,
    );
    tokio::select! {
        r = register => {
            r.map_err(Error::Register)?;
            tracing::info!("registered as {}-{}", identity.index, identity.name);
        }
        r = &mut socket => return ended(r),
    }
    let r = (&mut socket).await;
    let _ = server.shutdown().await;
    ended(r)
}

fn ended(r: Result<Result<(), String>, tokio::task::JoinError>) -> Result<(), Error> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::Broken(e)),
        Err(e) => Err(Error::Broken(e.to_string())),
    }
}

/// A ttRPC listener that yields `conn` once and then nothing, ever: the multiplexed
/// connection is the only one the service gets.
pub(crate) fn one_connection(conn: tokio::io::DuplexStream) -> Listener {
    Listener::new(
        futures::stream::once(async move { Ok::<_, std::io::Error>(conn) })
            .chain(futures::stream::pending()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_container_is_bit_three() {
        assert_eq!(event_mask(&[EVENT_CREATE_CONTAINER]), 8);
        assert_eq!(event_mask(&[1, 4]), 9);
        assert_eq!(event_mask(&[0, 40]), 0);
    }
}
