//! Where runtimes hand over a container's notification descriptor.
//!
//! runc (`sendContainerProcessState`) and crun connect to the profile's `listenerPath`
//! and send, in one `sendmsg`, the OCI "container process state" as JSON with the
//! descriptors named in its `fds` array (`"seccompFd"`) attached as SCM_RIGHTS. They do
//! not necessarily close the connection afterwards (runc keeps it until it exits), so
//! the message ends where its JSON does, not at end of file.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
use serde::Deserialize;

use super::registry::Registry;

/// A state message larger than this is not a runtime's.
const MAX_MESSAGE: usize = 1 << 20;
/// A peer that connects and says nothing is dropped after this.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Descriptors taken from one message at most (runc and crun send one).
const MAX_FDS: usize = 8;

/// Listen on `path`, root only. A live agent already there is refused; a stale socket
/// file (its agent died) is replaced.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            bail!("{} is served by another seccomp agent", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    // Created 0600 from the start: nobody but root may hand us descriptors, or learn
    // the agent's answers by connecting.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let l = UnixListener::bind(path);
    rustix::process::umask(old);
    let l = l.with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    Ok(l)
}

const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

/// Accept hand-overs until the process ends; `busy` is held while one is read and
/// registered (a live upgrade waits for it).
pub fn accept_loop(l: &UnixListener, registry: &Registry, busy: &std::sync::Mutex<()>) {
    // A failing accept (EMFILE) fails again every 10 ms until something changes: said
    // once every ACCEPT_LOG_EVERY, with how often meanwhile.
    let mut said: Option<std::time::Instant> = None;
    let mut unsaid = 0u64;
    for conn in l.incoming() {
        let _busy = busy.lock().unwrap_or_else(|p| p.into_inner());
        match conn {
            Ok(s) => match receive(&s) {
                Ok((fd, name)) => match registry.add(fd, name.clone()) {
                    Ok(()) => tracing::info!("answering sysinfo for container {name}"),
                    Err(e) => tracing::warn!("cannot watch container {name}'s listener: {e}"),
                },
                Err(e) => tracing::warn!("a runtime's hand-over failed: {e:#}"),
            },
            Err(e) => {
                if said.is_none_or(|t| t.elapsed() >= ACCEPT_LOG_EVERY) {
                    tracing::warn!("accept: {e} (and {unsaid} more failures since the last line)");
                    (said, unsaid) = (Some(std::time::Instant::now()), 0);
                } else {
                    unsaid += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The container process state, as far as the agent needs it.
#[derive(Debug, Deserialize)]
struct ProcessState {
    #[serde(default)]
    fds: Vec<String>,
    #[serde(default)]
    pid: Option<i64>,
    #[serde(default)]
    state: Option<State>,
}

#[derive(Debug, Deserialize)]
struct State {
    #[serde(default)]
    id: Option<String>,
}

/// Read one hand-over: the seccomp descriptor and a name for the container.
fn receive(s: &UnixStream) -> Result<(OwnedFd, String)> {
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut bytes = Vec::new();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let state = loop {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = recvmsg(
            s,
            &mut [IoSliceMut::new(&mut chunk)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .context("recvmsg")?;
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = msg {
                fds.extend(received);
            }
        }
        bytes.extend_from_slice(chunk.get(..got.bytes).unwrap_or_default());
        if let Ok(state) = serde_json::from_slice::<ProcessState>(&bytes) {
            break state;
        }
        if got.bytes == 0 {
            bail!(
                "the peer closed before a whole state message ({} bytes)",
                bytes.len()
            );
        }
        if bytes.len() > MAX_MESSAGE {
            bail!("state message over {MAX_MESSAGE} bytes");
        }
    };
    pick(state, fds)
}

/// The descriptor the state names `seccompFd` (the first one when it names none).
fn pick(state: ProcessState, fds: Vec<OwnedFd>) -> Result<(OwnedFd, String)> {
    let index = state.fds.iter().position(|n| n == "seccompFd").unwrap_or(0);
    let name = match (state.state.and_then(|s| s.id), state.pid) {
        (Some(id), Some(pid)) => format!("{id} (pid {pid})"),
        (Some(id), None) => id,
        (None, Some(pid)) => format!("pid {pid}"),
        (None, None) => "(unnamed)".into(),
    };
    let Some(fd) = fds.into_iter().nth(index) else {
        bail!("container {name}: no seccomp descriptor came with its state");
    };
    Ok((fd, name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn state(json: &str) -> ProcessState {
        serde_json::from_str(json).unwrap()
    }

    fn fd() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn runcs_message_names_the_container() {
        let s = state(
            r#"{"ociVersion":"1.0.2","fds":["seccompFd"],"pid":4242,"metadata":"",
                "state":{"ociVersion":"1.0.2","id":"web","status":"creating","pid":4242,"bundle":"/b"}}"#,
        );
        let (_, name) = pick(s, vec![fd()]).unwrap();
        assert_eq!(name, "web (pid 4242)");
    }

    #[test]
    fn the_named_descriptor_is_taken() {
        let s = state(r#"{"fds":["other","seccompFd"]}"#);
        assert!(pick(s, vec![fd(), fd()]).is_ok());
        let s = state(r#"{"fds":["other","seccompFd"]}"#);
        assert!(pick(s, vec![fd()]).is_err(), "index 1 of one descriptor");
    }

    #[test]
    fn no_descriptor_is_an_error() {
        assert!(pick(state("{}"), Vec::new()).is_err());
    }
}
