//! A tonic channel over a unix socket. gRPC needs an authority; the kubelet dials its
//! plugins as `localhost`, and so do the clients here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// Connects to the gRPC server on `path` within `timeout`; each call then has
/// `call_timeout` (none for a watch stream, which lasts).
pub async fn connect(
    path: &Path,
    timeout: Duration,
    call_timeout: Option<Duration>,
) -> Result<Channel, tonic::transport::Error> {
    let path: PathBuf = path.to_path_buf();
    let mut endpoint = Endpoint::from_static("http://localhost").connect_timeout(timeout);
    if let Some(t) = call_timeout {
        endpoint = endpoint.timeout(t);
    }
    endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(s))
            }
        }))
        .await
}
