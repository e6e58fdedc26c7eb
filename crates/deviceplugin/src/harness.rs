//! The kubelet's side of the device plugin API, for tests (feature `harness`): serves
//! `v1beta1.Registration` on `kubelet.sock` in a directory, and, as the kubelet's device
//! manager does within each Register call, checks the version and the resource name,
//! dials the plugin's endpoint, asks for its options and opens ListAndWatch, whose
//! messages it queues for the test. A restart does what a starting kubelet does: every
//! socket in the directory is deleted and `kubelet.sock` made anew.
//!
//! Blocking API (it owns a tokio runtime whose thread answers the plugin at any time),
//! errors as strings: it is for tests.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::api;
use crate::api::device_plugin_client::DevicePluginClient;
use crate::api::registration_server::{Registration, RegistrationServer};
use crate::{API_VERSION, KUBELET_SOCKET};

/// What the harness saw, in order.
#[derive(Debug, Clone)]
pub enum Event {
    /// A registration the kubelet accepted, with the options the plugin then gave.
    Registered {
        request: api::RegisterRequest,
        options: api::DevicePluginOptions,
    },
    /// A registration refused, and why.
    Refused(String),
    /// A ListAndWatch message.
    Devices(api::ListAndWatchResponse),
    /// The ListAndWatch stream ended.
    StreamEnded(String),
}

struct Registrar {
    dir: PathBuf,
    events: mpsc::UnboundedSender<Event>,
}

impl Registrar {
    async fn accept(&self, r: &api::RegisterRequest) -> Result<api::DevicePluginOptions, String> {
        if r.version != API_VERSION {
            return Err(format!("version {:?} is not supported", r.version));
        }
        crate::names::check_resource_name(&r.resource_name)?;
        // The kubelet dials the endpoint with a 10 s deadline, inside the call.
        let path = self.dir.join(&r.endpoint);
        let channel = crate::uds::connect(&path, Duration::from_secs(10), None)
            .await
            .map_err(|e| format!("cannot dial {}: {e}", path.display()))?;
        let mut client = DevicePluginClient::new(channel);
        let options = client
            .get_device_plugin_options(api::Empty {})
            .await
            .map_err(|s| format!("GetDevicePluginOptions: {}", s.message()))?
            .into_inner();
        let mut stream = client
            .list_and_watch(api::Empty {})
            .await
            .map_err(|s| format!("ListAndWatch: {}", s.message()))?
            .into_inner();
        let events = self.events.clone();
        tokio::spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(m)) => {
                        let _ = events.send(Event::Devices(m));
                    }
                    Ok(None) => {
                        let _ = events.send(Event::StreamEnded("closed".into()));
                        return;
                    }
                    Err(s) => {
                        let _ = events.send(Event::StreamEnded(s.to_string()));
                        return;
                    }
                }
            }
        });
        Ok(options)
    }
}

#[tonic::async_trait]
impl Registration for Registrar {
    async fn register(
        &self,
        req: Request<api::RegisterRequest>,
    ) -> Result<Response<api::Empty>, Status> {
        let r = req.into_inner();
        match self.accept(&r).await {
            Ok(options) => {
                let _ = self.events.send(Event::Registered {
                    request: r,
                    options,
                });
                Ok(Response::new(api::Empty {}))
            }
            Err(e) => {
                let _ = self.events.send(Event::Refused(e.clone()));
                Err(Status::invalid_argument(e))
            }
        }
    }
}

pub struct Kubelet {
    rt: tokio::runtime::Runtime,
    dir: PathBuf,
    stop: Option<watch::Sender<bool>>,
    server: Option<tokio::task::JoinHandle<Result<(), tonic::transport::Error>>>,
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Kubelet {
    /// Serves Registration on `dir/kubelet.sock`, as a starting kubelet does.
    pub fn start(dir: &Path) -> Result<Kubelet, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut k = Kubelet {
            rt,
            dir: dir.to_path_buf(),
            stop: None,
            server: None,
            events_tx,
            events,
        };
        k.serve()?;
        Ok(k)
    }

    fn serve(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("mkdir: {e}"))?;
        // A starting kubelet deletes what is in its directory (but its checkpoint).
        for e in std::fs::read_dir(&self.dir).map_err(|e| format!("read_dir: {e}"))? {
            let e = e.map_err(|e| format!("read_dir: {e}"))?;
            if e.file_name() != "kubelet_internal_checkpoint" {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let path = self.dir.join(KUBELET_SOCKET);
        let listener = {
            let _g = self.rt.enter();
            UnixListener::bind(&path).map_err(|e| format!("bind {}: {e}", path.display()))?
        };
        let (stop, mut stopped) = watch::channel(false);
        let registrar = Registrar {
            dir: self.dir.clone(),
            events: self.events_tx.clone(),
        };
        self.server = Some(
            self.rt.spawn(
                tonic::transport::Server::builder()
                    .add_service(RegistrationServer::new(registrar))
                    .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    }),
            ),
        );
        self.stop = Some(stop);
        Ok(())
    }

    /// Stops serving and removes `kubelet.sock`, as a stopping kubelet does.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            // Timers are made inside the runtime, which owns the time driver.
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(5), server).await });
            abort.abort();
        }
        let _ = std::fs::remove_file(self.dir.join(KUBELET_SOCKET));
    }

    /// A kubelet restart: stop, delete every socket in the directory, serve anew.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.serve()
    }

    /// The next event within `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Event, String> {
        self.rt
            .block_on(async { tokio::time::timeout(timeout, self.events.recv()).await })
            .map_err(|_| format!("nothing from the plugin within {timeout:?}"))?
            .ok_or_else(|| "the harness's event queue closed".to_string())
    }

    /// Waits for an accepted registration, skipping other events; a refused one fails.
    pub fn registration(
        &mut self,
        timeout: Duration,
    ) -> Result<(api::RegisterRequest, api::DevicePluginOptions), String> {
        let until = Instant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.next_event(left)? {
                Event::Registered { request, options } => return Ok((request, options)),
                Event::Refused(why) => return Err(format!("registration refused: {why}")),
                _ => {}
            }
        }
    }

    /// Waits for a device list for which `want` holds, skipping others.
    pub fn devices(
        &mut self,
        timeout: Duration,
        want: impl Fn(&api::ListAndWatchResponse) -> bool,
    ) -> Result<api::ListAndWatchResponse, String> {
        let until = Instant::now() + timeout;
        let mut last = None;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.next_event(left) {
                Ok(Event::Devices(d)) if want(&d) => return Ok(d),
                Ok(Event::Devices(d)) => last = Some(d),
                Ok(_) => {}
                Err(e) => return Err(format!("{e}; the last list was {last:?}")),
            }
        }
    }

    /// A client of the plugin at `endpoint` (relative to the directory), as the kubelet
    /// calls Allocate with.
    pub fn client(&self, endpoint: &str) -> Result<PluginClient<'_>, String> {
        let path = self.dir.join(endpoint);
        let channel = self
            .rt
            .block_on(crate::uds::connect(
                &path,
                Duration::from_secs(10),
                Some(Duration::from_secs(10)),
            ))
            .map_err(|e| format!("cannot dial {}: {e}", path.display()))?;
        Ok(PluginClient {
            rt: &self.rt,
            client: DevicePluginClient::new(channel),
        })
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The kubelet's calls on a plugin, blocking.
pub struct PluginClient<'a> {
    rt: &'a tokio::runtime::Runtime,
    client: DevicePluginClient<Channel>,
}

impl PluginClient<'_> {
    pub fn options(&mut self) -> Result<api::DevicePluginOptions, String> {
        self.rt
            .block_on(self.client.get_device_plugin_options(api::Empty {}))
            .map(Response::into_inner)
            .map_err(|s| format!("GetDevicePluginOptions: {s}"))
    }

    pub fn allocate(&mut self, req: api::AllocateRequest) -> Result<api::AllocateResponse, String> {
        self.rt
            .block_on(self.client.allocate(req))
            .map(Response::into_inner)
            .map_err(|s| format!("Allocate: {s}"))
    }

    pub fn pre_start(&mut self, ids: &[&str]) -> Result<api::PreStartContainerResponse, String> {
        let req = api::PreStartContainerRequest {
            devices_ids: ids.iter().map(|s| s.to_string()).collect(),
        };
        self.rt
            .block_on(self.client.pre_start_container(req))
            .map(Response::into_inner)
            .map_err(|s| format!("PreStartContainer: {s}"))
    }
}

/// An Allocate request as the kubelet sends it: one entry per container, its devices.
pub fn allocate_request(containers: &[&[&str]]) -> api::AllocateRequest {
    api::AllocateRequest {
        container_requests: containers
            .iter()
            .map(|ids| api::ContainerAllocateRequest {
                devices_ids: ids.iter().map(|s| s.to_string()).collect(),
            })
            .collect(),
    }
}
