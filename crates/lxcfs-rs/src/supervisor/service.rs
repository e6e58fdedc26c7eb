//! The supervisor as a service: what it tells the service manager when workers come
//! and go (`notify`), and how it leaves when told to keep serving
//! (`--keep-serving-on-exit`).

use anyhow::Result;

use super::Supervisor;
use crate::notify;

impl Supervisor<'_> {
    /// A worker serves: READY=1 the first time and after RELOADING=1, else news.
    pub(super) fn announce(&mut self, status: &str) {
        if !self.announced || self.reloading {
            self.notifier.ready(status);
            self.announced = true;
            self.reloading = false;
        } else {
            self.notifier.status(status);
        }
    }

    /// The reload is over, though the old worker still serves: systemd waits for
    /// READY=1 after RELOADING=1, and STATUS= says what went wrong.
    pub(super) fn reload_failed(&mut self, why: &str) {
        let serving = self
            .current
            .as_ref()
            .map(|w| (w.child.id(), w.generation, w.safe));
        let status = match serving {
            Some((pid, generation, safe)) => format!(
                "{why}; {}",
                notify::serving(&self.mountpoint, pid, generation, self.host_files || safe)
            ),
            None => why.to_string(),
        };
        self.reloading = false;
        self.notifier.ready(&status);
    }

    /// `--keep-serving-on-exit`: go as if we had crashed, leaving the mount and our
    /// worker to the next lxcfs-rs on this mountpoint, which adopts them (`orphan`).
    /// The current worker stays even if it has not said it serves yet: it may serve
    /// already (its ready byte can be a tick away), and it is adopted either way. An
    /// upgrade in flight is abandoned while the current worker serves on.
    pub(super) fn leave_serving(mut self, sig: i32) -> Result<()> {
        self.check_ready();
        let what = match (&self.current, &self.upgrading) {
            (Some(w), _) | (None, Some(w)) => format!("worker {} keeps serving", w.child.id()),
            (None, None) => "nothing serves it until lxcfs-rs starts again".to_string(),
        };
        self.notifier.stopping(&format!(
            "exiting; {what} {} for the next lxcfs-rs to adopt",
            self.mountpoint.display()
        ));
        tracing::info!(
            "supervisor: signal {sig}: exiting without unmounting ({what} {})",
            self.mountpoint.display()
        );
        if self.current.is_some() {
            if let Some(w) = self.upgrading.take() {
                w.signal(rustix::process::Signal::TERM);
            }
        }
        Ok(())
    }
}
