//! Telling the service manager what the supervisor is doing (systemd's notify protocol,
//! `Type=notify`): READY=1 once a worker serves the mount, RELOADING=1 while a live
//! upgrade (SIGUSR1) runs, STOPPING=1 on the way out, and a STATUS= line saying what is
//! served. Without `NOTIFY_SOCKET` (not started by systemd) every call does nothing.
//!
//! Only the supervisor notifies: it is the unit's main process, and systemd ignores
//! messages from other processes under the default `NotifyAccess=main`. Workers are
//! started without `NOTIFY_SOCKET` (see [`ENV`]) so they cannot be mistaken for it.

use std::path::Path;

use sd_notify::NotifyState;

/// The variable systemd passes the socket in.
pub const ENV: &str = "NOTIFY_SOCKET";

/// What the supervisor tells the service manager. Failures to send are logged once
/// and otherwise ignored: serving must never depend on the manager listening.
#[derive(Default)]
pub struct Notifier {
    failed: bool,
}

impl Notifier {
    /// A worker serves the mount (the first one, or the one an upgrade or a restart
    /// started): the service is up, or back up after RELOADING=1.
    pub fn ready(&mut self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A live upgrade started. systemd requires the time the reload began with it, so
    /// that it can tell this reload's READY=1 from an earlier one's.
    pub fn reloading(&mut self, status: &str) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now, NotifyState::Status(status)]),
            Err(e) => tracing::warn!("cannot read CLOCK_MONOTONIC for RELOADING=1: {e}"),
        }
    }

    pub fn stopping(&mut self, status: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    /// A change worth showing in `systemctl status` (safe mode, a worker replaced).
    pub fn status(&mut self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    fn send(&mut self, states: &[NotifyState]) {
        // Keep the variable: the supervisor notifies for as long as it runs.
        if let Err(e) = sd_notify::notify(false, states) {
            if !self.failed {
                self.failed = true;
                tracing::warn!("cannot notify the service manager ({ENV}): {e}");
            }
        }
    }
}

/// The STATUS= line of a serving supervisor.
pub fn serving(mountpoint: &Path, worker: u32, generation: u64, host_files: bool) -> String {
    format!(
        "serving {} (worker {worker}, generation {generation}){}",
        mountpoint.display(),
        if host_files {
            ": every reader gets the host's own files"
        } else {
            ": per-container files"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_says_where_and_what() {
        let s = serving(Path::new("/var/lib/lxcfs"), 42, 3, false);
        assert_eq!(
            s,
            "serving /var/lib/lxcfs (worker 42, generation 3): per-container files"
        );
        assert!(serving(Path::new("/m"), 1, 1, true).ends_with("the host's own files"));
    }
}
