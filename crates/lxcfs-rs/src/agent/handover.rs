//! Live upgrade of the agent: `SIGUSR1` (`systemctl reload`) replaces its program with
//! the binary on disk, in the same process, keeping every descriptor it holds.
//!
//! A container's notification descriptor cannot be obtained again: if the agent's
//! copies were closed, the kernel would fail that container's sysinfo calls with ENOSYS
//! from then on. So an upgrade is an `execve` of the new binary that inherits the
//! listening socket and every container's descriptor (their numbers and names on its
//! command line, `--inherit`). Before it, the answering threads finish the call each is
//! answering and stop taking new ones, and the intake finishes the hand-over it is
//! reading: no call is half-answered when the old program goes. Calls made meanwhile
//! wait in the kernel for the new program (milliseconds), runtimes' connections wait in
//! the socket's backlog.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustix::io::FdFlags;

use super::registry::Registry;
use super::sys;

/// How long the threads get to finish their calls before the upgrade is given up.
const DRAIN: Duration = Duration::from_secs(2);

/// What the new program inherits: `L<listener>` then `,<fd>=<name>` per container.
pub fn spec(listener: BorrowedFd<'_>, listeners: &[(BorrowedFd<'_>, String)]) -> String {
    let mut s = format!("L{}", listener.as_raw_fd());
    for (fd, name) in listeners {
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-()".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        s.push_str(&format!(",{}={name}", fd.as_raw_fd()));
    }
    s
}

/// The descriptors a spec names: (listener, [(fd, name)]). Each is checked to be what
/// it should (a listening unix socket; a seccomp notification descriptor) before it is
/// taken, so a stray number cannot make the agent own a descriptor it does not.
pub fn take(spec: &str) -> Result<(OwnedFd, Vec<(OwnedFd, String)>)> {
    let mut parts = spec.split(',');
    let listener = parts
        .next()
        .and_then(|l| l.strip_prefix('L'))
        .and_then(|n| n.parse::<i32>().ok())
        .context("--inherit: no listener")?;
    let listener = own(listener, |link| link.starts_with("socket:"))?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::from([listener.as_raw_fd()]);
    for p in parts {
        let (n, name) = p.split_once('=').context("--inherit: a part without =")?;
        let n: i32 = n.parse().context("--inherit: not a descriptor number")?;
        if !seen.insert(n) {
            bail!("--inherit: descriptor {n} named twice");
        }
        out.push((
            own(n, |link| link == "anon_inode:seccomp notify")?,
            name.to_string(),
        ));
    }
    Ok((listener, out))
}

fn own(n: i32, is: impl Fn(&str) -> bool) -> Result<OwnedFd> {
    let link = std::fs::read_link(format!("/proc/self/fd/{n}"))
        .with_context(|| format!("--inherit: descriptor {n} is not open"))?;
    let link = link.to_string_lossy();
    if !is(&link) {
        bail!("--inherit: descriptor {n} is {link}");
    }
    let fd = sys::adopt(n).with_context(|| format!("--inherit: descriptor {n}"))?;
    rustix::io::fcntl_setfd(&fd, FdFlags::CLOEXEC)?;
    Ok(fd)
}

/// Stop the answering threads and the intake, then exec `exe` with `args` and the
/// inherited descriptors. Returns only when it failed (serving resumes).
pub fn exec(
    exe: &Path,
    args: &[String],
    listener: &OwnedFd,
    registry: &Registry,
    intake: &std::sync::Mutex<()>,
) -> anyhow::Error {
    // Held through the exec: the intake is between two hand-overs.
    let _intake = intake.lock().unwrap_or_else(|p| p.into_inner());
    registry.pause();
    let start = Instant::now();
    while !registry.drained() {
        if start.elapsed() > DRAIN {
            registry.resume();
            return anyhow::anyhow!("the answering threads did not stop within {DRAIN:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let held = registry.descriptors();
    let borrowed: Vec<(BorrowedFd<'_>, String)> = held
        .iter()
        .map(|l| (l.fd.as_fd(), l.name.clone()))
        .collect();
    let spec = spec(listener.as_fd(), &borrowed);
    let inherit = std::iter::once(listener.as_fd()).chain(borrowed.iter().map(|(f, _)| *f));
    for fd in inherit.clone() {
        if let Err(e) = rustix::io::fcntl_setfd(fd, FdFlags::empty()) {
            registry.resume();
            return anyhow::anyhow!("cannot pass a descriptor on: {e}");
        }
    }
    tracing::info!(
        "live upgrade: executing {} with {} containers' descriptors",
        exe.display(),
        borrowed.len()
    );
    crate::logging::flush(crate::EXIT_FLUSH);
    let err = std::process::Command::new(exe)
        .arg("seccomp-agent")
        .args(args)
        .arg("--inherit")
        .arg(&spec)
        .exec();
    for fd in inherit {
        let _ = rustix::io::fcntl_setfd(fd, FdFlags::CLOEXEC);
    }
    registry.resume();
    anyhow::Error::new(err).context(format!("cannot execute {}", exe.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn spec_names_are_kept_to_safe_characters() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let s = spec(f.as_fd(), &[(f.as_fd(), "web,1=x (pid 4)".into())]);
        let n = f.as_raw_fd();
        assert_eq!(s, format!("L{n},{n}=web_1_x_(pid_4)"));
    }

    #[test]
    fn a_descriptor_of_the_wrong_kind_is_refused() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let n = f.as_raw_fd();
        assert!(take(&format!("L{n}")).is_err(), "/dev/null is not a socket");
        assert!(take("L999999").is_err(), "not open");
        assert!(take("x").is_err());
    }
}
