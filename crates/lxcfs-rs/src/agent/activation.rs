//! Socket activation: the listening socket a systemd `.socket` unit hands the agent
//! (`LISTEN_FDS`).
//!
//! A runtime starting a container whose profile names the agent's socket fails the
//! container when nothing listens there. A socket held by systemd exists while the
//! agent does not (it crashed and is being restarted, or the boot has not started it
//! yet): a runtime's connection waits in the socket's backlog, systemd starts the
//! agent, and the agent takes it. The container starts meanwhile, and its sysinfo
//! calls wait for the agent, since its notification descriptor waits in the socket.
//! The socket file is then systemd's: the agent never removes it.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::sys;

/// The socket systemd passed, if it passed one; checked to be a listening unix
/// socket. One at another path than `expected` (which the profiles name) is used, and
/// the mismatch logged.
pub fn listener(expected: &Path) -> Result<Option<UnixListener>> {
    let mut fds = sd_notify::listen_fds().context("LISTEN_FDS")?;
    let Some(n) = fds.next() else {
        return Ok(None);
    };
    let more = fds.count();
    if more > 0 {
        bail!(
            "systemd passed {} sockets; the agent listens on one",
            more + 1
        );
    }
    let fd: OwnedFd = sys::adopt(n).context("the socket systemd passed")?;
    let listening = rustix::net::sockopt::socket_acceptconn(&fd).unwrap_or(false);
    let unix = rustix::net::sockopt::socket_domain(&fd)
        .is_ok_and(|d| d == rustix::net::AddressFamily::UNIX);
    if !listening || !unix {
        bail!("the socket systemd passed (descriptor {n}) is not a listening unix socket");
    }
    let l = UnixListener::from(fd);
    let at = l
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf));
    match at {
        Some(p) if p == expected => {}
        other => tracing::warn!(
            "systemd's socket is at {}, not at --socket {}: profiles must name the former",
            other.map_or("no path".into(), |p| p.display().to_string()),
            expected.display()
        ),
    }
    Ok(Some(l))
}
