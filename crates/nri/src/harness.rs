//! The runtime's side of NRI, for tests (feature `harness`): listens on a unix socket as
//! containerd and CRI-O do, accepts a plugin, waits for its RegisterPlugin on the
//! runtime service (connection 2), then drives it on the plugin service (connection 1)
//! as a runtime would: Configure, Synchronize, CreateContainer, Shutdown. Same wire
//! protocol as the plugin: the multiplexer's frames, ttRPC, this crate's messages.
//!
//! Blocking API (it owns a tokio runtime), errors as strings: it is for tests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::mpsc;
use ttrpc::r#async::transport::Socket;
use ttrpc::r#async::{Client, Server, TtrpcContext};

use crate::api;
use crate::mux;
use crate::service;

/// NRI's default request timeout (2 s): what a plugin's answer must beat.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Runtime {
    rt: tokio::runtime::Runtime,
    listener: UnixListener,
}

/// An accepted, registered plugin.
pub struct Plugin {
    pub registration: api::RegisterPluginRequest,
    client: service::PluginClient,
    socket: tokio::task::JoinHandle<Result<(), String>>,
    _server: Server,
}

struct Registrar(mpsc::Sender<api::RegisterPluginRequest>);

#[async_trait::async_trait]
impl service::Runtime for Registrar {
    async fn register_plugin(
        &self,
        _ctx: &TtrpcContext,
        req: api::RegisterPluginRequest,
    ) -> ttrpc::Result<api::Empty> {
        let _ = self.0.send(req).await;
        Ok(api::Empty::new())
    }
}

fn ctx() -> ttrpc::context::Context {
    ttrpc::context::with_timeout(REQUEST_TIMEOUT.as_nanos() as i64)
}

impl Runtime {
    /// Listens on `path` (which must not exist).
    pub fn listen(path: &Path) -> Result<Runtime, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let listener = {
            let _g = rt.enter();
            UnixListener::bind(path).map_err(|e| format!("bind {}: {e}", path.display()))?
        };
        Ok(Runtime { rt, listener })
    }

    /// Accepts the next plugin and waits for it to register, as the runtime does (NRI
    /// gives a plugin 5 s to register).
    pub fn accept(&self, timeout: Duration) -> Result<Plugin, String> {
        self.rt.block_on(async {
            let (trunk, _) = tokio::time::timeout(timeout, self.listener.accept())
                .await
                .map_err(|_| format!("no plugin connected within {timeout:?}"))?
                .map_err(|e| format!("accept: {e}"))?;
            let (mut conns, socket) =
                mux::multiplex(trunk, &[mux::PLUGIN_SERVICE, mux::RUNTIME_SERVICE]);
            let (Some(runtime_conn), Some(plugin_conn)) = (conns.pop(), conns.pop()) else {
                return Err("the multiplexer opened no connections".to_string());
            };
            let (tx, mut rx) = mpsc::channel(1);
            let mut server = Server::new()
                .add_listener(crate::session::one_connection(runtime_conn))
                .register_service(service::create_runtime(Arc::new(Registrar(tx))));
            server.start().await.map_err(|e| format!("serve: {e}"))?;
            let client = service::PluginClient::new(Client::new(Socket::new(plugin_conn)));
            let registration = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .map_err(|_| "the plugin did not register within 5 s".to_string())?
                .ok_or("the registration service stopped")?;
            Ok(Plugin {
                registration,
                client,
                socket,
                _server: server,
            })
        })
    }

    pub fn configure(
        &self,
        p: &Plugin,
        runtime: &str,
        version: &str,
    ) -> Result<api::ConfigureResponse, String> {
        let mut req = api::ConfigureRequest::new();
        req.runtime_name = runtime.into();
        req.runtime_version = version.into();
        req.registration_timeout = 5000;
        req.request_timeout = REQUEST_TIMEOUT.as_millis() as i64;
        self.rt
            .block_on(p.client.configure(ctx(), &req))
            .map_err(|e| format!("Configure: {e}"))
    }

    pub fn synchronize(
        &self,
        p: &Plugin,
        pods: Vec<api::PodSandbox>,
        containers: Vec<api::Container>,
        more: bool,
    ) -> Result<api::SynchronizeResponse, String> {
        let mut req = api::SynchronizeRequest::new();
        req.pods = pods;
        req.containers = containers;
        req.more = more;
        self.rt
            .block_on(p.client.synchronize(ctx(), &req))
            .map_err(|e| format!("Synchronize: {e}"))
    }

    pub fn create_container(
        &self,
        p: &Plugin,
        pod: api::PodSandbox,
        container: api::Container,
    ) -> Result<api::CreateContainerResponse, String> {
        let mut req = api::CreateContainerRequest::new();
        req.pod = protobuf::MessageField::some(pod);
        req.container = protobuf::MessageField::some(container);
        self.rt
            .block_on(p.client.create_container(ctx(), &req))
            .map_err(|e| format!("CreateContainer: {e}"))
    }

    pub fn shutdown(&self, p: &Plugin) -> Result<(), String> {
        self.rt
            .block_on(p.client.shutdown(ctx(), &api::Empty::new()))
            .map(|_| ())
            .map_err(|e| format!("Shutdown: {e}"))
    }

    /// Closes the connection, as a runtime that stops or restarts does.
    pub fn close(&self, p: Plugin) {
        let Plugin {
            socket,
            mut _server,
            ..
        } = p;
        // Run the runtime until the socket's task is gone: only then are both halves
        // of the socket dropped, which is what the plugin sees.
        self.rt.block_on(async move {
            socket.abort();
            let _ = socket.await;
            let _ = _server.shutdown().await;
        });
    }
}

/// A pod as the runtime describes it, with `labels`.
pub fn pod(
    namespace: &str,
    name: &str,
    runtime_handler: &str,
    labels: &[(&str, &str)],
) -> api::PodSandbox {
    let mut p = api::PodSandbox::new();
    p.id = format!("{namespace}-{name}-id");
    p.uid = format!("{namespace}-{name}-uid");
    p.namespace = namespace.into();
    p.name = name.into();
    p.runtime_handler = runtime_handler.into();
    for (k, v) in labels {
        p.labels.insert((*k).into(), (*v).into());
    }
    p
}

/// A container of `pod`, with the mounts every Kubernetes container has.
pub fn container(pod: &api::PodSandbox, name: &str) -> api::Container {
    let mut c = api::Container::new();
    c.id = format!("{}-{name}", pod.id);
    c.pod_sandbox_id = pod.id.clone();
    c.name = name.into();
    let mut proc_ = api::Mount::new();
    proc_.destination = "/proc".into();
    proc_.type_ = "proc".into();
    proc_.source = "proc".into();
    c.mounts.push(proc_);
    c
}
