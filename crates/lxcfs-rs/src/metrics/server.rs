//! A small HTTP/1.0 responder for `/metrics`, `/healthz` and `/readyz`, on a unix socket
//! and on TCP. One request per connection, one connection at a time per listener,
//! bounded reads and timeouts: a scraper cannot hold more than a thread and a few KiB.
//! Hand-written because a scrape endpoint needs nothing an HTTP stack adds, and the
//! supervisor must stay small.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::State;

/// A request line and headers larger than this are refused.
const MAX_REQUEST: usize = 8 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(5);

pub enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

impl Listener {
    /// A socket only root can connect to, at `path` (a stale one is replaced: the
    /// caller holds the pidfile lock, so no live daemon owns it).
    pub fn unix(path: &Path) -> Result<Listener> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let _ = std::fs::remove_file(path);
        // The socket is created 0600: no moment where another user could connect.
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
        let bound = UnixListener::bind(path);
        rustix::process::umask(old);
        let l = bound.with_context(|| format!("cannot listen on {}", path.display()))?;
        Ok(Listener::Unix(l, path.to_path_buf()))
    }

    pub fn tcp(addr: std::net::SocketAddr) -> Result<Listener> {
        let l = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        Ok(Listener::Tcp(l))
    }

    pub fn describe(&self) -> String {
        match self {
            Listener::Unix(_, p) => p.display().to_string(),
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| format!("http://{a}"))
                .unwrap_or_else(|_| "tcp".into()),
        }
    }
}

/// Answer requests on `listener` from a thread of its own, for the life of the process.
pub fn serve(listener: Listener, state: Arc<State>) -> Result<()> {
    let name = listener.describe();
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || accept_loop(&listener, &state))
        .with_context(|| format!("cannot start the metrics thread for {name}"))?;
    Ok(())
}

fn accept_loop(listener: &Listener, state: &Arc<State>) {
    loop {
        let served = match listener {
            Listener::Unix(l, _) => l.accept().map(|(s, _)| {
                let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                let _ = s.set_write_timeout(Some(IO_TIMEOUT));
                answer(s, state, true)
            }),
            Listener::Tcp(l) => l.accept().map(|(s, _)| {
                let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                let _ = s.set_write_timeout(Some(IO_TIMEOUT));
                answer(s, state, false)
            }),
        };
        if let Err(e) = served {
            tracing::debug!("metrics: accept: {e}");
            // Out of descriptors, say: do not spin.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `root_only`: the request came over the root-only unix socket. Only there does
/// `/containers` answer: it names containers' cgroups, which whoever reaches a TCP
/// port need not learn (the metrics name files and counts only).
fn answer<S: Read + Write>(mut s: S, state: &Arc<State>, root_only: bool) {
    let Some(path) = request_path(&mut s) else {
        let _ = respond(&mut s, 400, "text/plain", "bad request\n");
        return;
    };
    let _ = match path.as_str() {
        "/metrics" => match super::exposition::encode(state.scrape()) {
            Ok(body) => respond(
                &mut s,
                200,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                &body,
            ),
            Err(_) => respond(&mut s, 500, "text/plain", "cannot encode\n"),
        },
        "/containers" if root_only => {
            respond(&mut s, 200, "application/json", &state.containers_json())
        }
        "/healthz" => respond(&mut s, 200, "text/plain", "ok\n"),
        "/readyz" => match state.ready() {
            Ok(()) => respond(&mut s, 200, "text/plain", "ok\n"),
            Err(e) => respond(&mut s, 503, "text/plain", &format!("{e}\n")),
        },
        _ => respond(
            &mut s,
            404,
            "text/plain",
            "not found: /metrics, /containers, /healthz, /readyz\n",
        ),
    };
}

/// The path of a `GET` request, once its headers are in (query strings dropped).
fn request_path(s: &mut impl Read) -> Option<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return None;
        }
    }
    let line = buf.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    if method != "GET" && method != "HEAD" {
        return None;
    }
    Some(target.split('?').next().unwrap_or(target).to_string())
}

fn respond(s: &mut impl Write, code: u16, ctype: &str, body: &str) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    write!(
        s,
        "HTTP/1.0 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()
}

/// `GET path` over the unix socket at `socket`: the body, or why not (for `status`).
pub fn get_unix(socket: &Path, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = std::os::unix::net::UnixStream::connect(socket)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: lxcfs-rs\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP response"))?;
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))?;
    Ok((code, body.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_path_of_a_get_is_read_and_anything_else_refused() {
        let p = |r: &str| request_path(&mut r.as_bytes());
        assert_eq!(
            p("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").as_deref(),
            Some("/metrics")
        );
        assert_eq!(p("GET /readyz HTTP/1.0\n\n").as_deref(), Some("/readyz"));
        assert_eq!(p("POST /metrics HTTP/1.0\r\n\r\n"), None);
        assert_eq!(p(""), None);
        assert_eq!(p(&"A".repeat(MAX_REQUEST + 10)), None);
    }

    #[test]
    fn the_unix_endpoint_answers_and_is_root_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("m.sock");
        let counters = Arc::new(connection::Counters::create().unwrap());
        counters.worker_started(connection::counters::StartCause::First, 1);
        let state = Arc::new(State::new(counters, dir.path()));
        serve(Listener::unix(&sock).unwrap(), state).unwrap();
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (code, body) = get_unix(&sock, "/metrics").unwrap();
        assert_eq!(code, 200);
        assert!(body.contains("lxcfs_worker_generation 1\n"), "{body}");
        assert_eq!(get_unix(&sock, "/healthz").unwrap(), (200, "ok\n".into()));
        let (code, body) = get_unix(&sock, "/containers").unwrap();
        assert_eq!(code, 200);
        let doc: super::super::BusiestDoc = serde_json::from_str(&body).unwrap();
        assert_eq!(
            doc,
            super::super::BusiestDoc::default(),
            "nothing published yet"
        );
        assert_eq!(get_unix(&sock, "/nope").unwrap().0, 404);
        // No mount there: not ready.
        assert_eq!(get_unix(&sock, "/readyz").unwrap().0, 503);
    }
}
