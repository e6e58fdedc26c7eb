//! The plugin's life beside one kubelet: serve the DevicePlugin service on a socket in
//! the kubelet's directory, register, and start over (new socket, new registration)
//! whenever the kubelet restarts: a starting kubelet deletes every plugin's socket and
//! makes `kubelet.sock` anew, so either sign means the registration is gone.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;

use crate::api;
use crate::api::device_plugin_server::DevicePluginServer;
use crate::api::registration_client::RegistrationClient;
use crate::plugin::{Config, Service, options};
use crate::{API_VERSION, KUBELET_SOCKET};

/// Where and how often.
#[derive(Debug, Clone)]
pub struct Options {
    /// The kubelet's device plugin directory.
    pub dir: PathBuf,
    /// The plugin's socket's file name in `dir` (the registration's endpoint).
    pub endpoint: String,
    /// How often the sockets are looked at, and registration retried.
    pub poll: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: String,
        source: std::io::Error,
    },
}

/// A file's identity: a socket made anew differs in inode or change time, even when
/// the file system reuses the inode number at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity(u64, u64, i64, i64);

fn identity(path: &Path) -> Option<Identity> {
    let m = std::fs::symlink_metadata(path).ok()?;
    Some(Identity(m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
}

/// Why the plugin is not registered, said once per reason rather than every poll.
#[derive(Default)]
struct Waiting(Option<String>);

impl Waiting {
    fn say(&mut self, why: String) {
        if self.0.as_ref() != Some(&why) {
            tracing::warn!("{why}");
            self.0 = Some(why);
        }
    }
}

/// The registration this plugin sends.
pub fn registration(config: &Config, endpoint: &str) -> api::RegisterRequest {
    api::RegisterRequest {
        version: API_VERSION.into(),
        endpoint: endpoint.into(),
        resource_name: config.resource_name.clone(),
        options: Some(options()),
    }
}

/// Calls the kubelet's Register. The kubelet dials the plugin back within this call (up
/// to 10 s), hence the long deadline.
async fn register(kubelet: &Path, req: api::RegisterRequest) -> Result<(), String> {
    let channel = crate::uds::connect(
        kubelet,
        Duration::from_secs(2),
        Some(Duration::from_secs(15)),
    )
    .await
    .map_err(|e| format!("cannot reach {}: {e}", kubelet.display()))?;
    RegistrationClient::new(channel)
        .register(req)
        .await
        .map(|_| ())
        .map_err(|s| format!("the kubelet refused the registration: {}", s.message()))
}

/// Serves and stays registered, forever. `health` says whether the node's mount serves.
pub async fn run(
    opts: &Options,
    config: Config,
    health: watch::Receiver<bool>,
) -> Result<(), Error> {
    let config = Arc::new(config);
    let socket = opts.dir.join(&opts.endpoint);
    let kubelet = opts.dir.join(KUBELET_SOCKET);
    let mut waiting = Waiting::default();
    loop {
        // The kubelet makes its directory when it starts: a plugin started first (a
        // node booting) waits for it rather than failing.
        while !opts.dir.is_dir() {
            waiting.say(format!(
                "no directory {} yet; waiting for the kubelet",
                opts.dir.display()
            ));
            tokio::time::sleep(opts.poll).await;
        }
        // A socket left by an earlier run (or a crashed one) would make bind fail.
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).map_err(|source| Error::Listen {
            path: socket.display().to_string(),
            source,
        })?;
        let ours = identity(&socket);
        let (stop_tx, stop_rx) = watch::channel(false);
        let service = Service {
            config: config.clone(),
            health: health.clone(),
            stop: stop_rx.clone(),
        };
        let mut stopped = stop_rx.clone();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(DevicePluginServer::new(service))
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }),
        );

        // Register; the kubelet may not be up yet, or restarting.
        let theirs = loop {
            let theirs = identity(&kubelet);
            if theirs.is_some() {
                match register(&kubelet, registration(&config, &opts.endpoint)).await {
                    Ok(()) => {
                        tracing::info!(
                            "registered {} with the kubelet ({}, endpoint {})",
                            config.resource_name,
                            kubelet.display(),
                            opts.endpoint
                        );
                        waiting = Waiting::default();
                        break theirs;
                    }
                    Err(e) => {
                        waiting.say(format!("{e}; retrying every {} ms", opts.poll.as_millis()))
                    }
                }
            } else {
                waiting.say(format!(
                    "no kubelet socket at {} yet; waiting",
                    kubelet.display()
                ));
            }
            tokio::time::sleep(opts.poll).await;
            if identity(&socket) != ours {
                break None;
            }
        };

        // Registered (or our socket vanished meanwhile): watch both sockets.
        if theirs.is_some() {
            loop {
                tokio::time::sleep(opts.poll).await;
                if identity(&socket) != ours {
                    tracing::info!(
                        "{} was removed (a kubelet restart?): serving anew",
                        socket.display()
                    );
                    break;
                }
                let now = identity(&kubelet);
                if now.is_some() && now != theirs {
                    tracing::info!("the kubelet's socket was made anew: registering again");
                    break;
                }
                if server.is_finished() {
                    tracing::warn!("the plugin's gRPC server stopped: serving anew");
                    break;
                }
            }
        }
        let _ = stop_tx.send(true);
        // Graceful: in-flight Allocate calls finish; a stuck one is cut off.
        let abort = server.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}
