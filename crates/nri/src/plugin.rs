//! What the plugin answers: which containers get binds, and which binds.
//!
//! A container gets them when its pod opted in ([`OPT_IN_LABEL`]) and the node's
//! lxcfs-rs mount serves right now; otherwise it is created untouched. The files bound
//! are those the mount serves among the ones the node's runtime accepts: runc and youki
//! refuse binds under /proc outside an allow-list (and fail the whole container), so
//! only pods whose runtime handler the operator named as free of that list get the rest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::api;

/// The pod label that opts a pod's containers in, with value [`OPT_IN_VALUE`], or out
/// (of its namespace's opt-in) with [`OPT_OUT_VALUE`]. A label rather than an
/// annotation: the same label selects pods for the admission-policy path, and
/// `kubectl get pods -l` finds the pods that have the files.
pub const OPT_IN_LABEL: &str = "lxcfs-rs.io/inject";
pub const OPT_IN_VALUE: &str = "true";
pub const OPT_OUT_VALUE: &str = "false";

/// The mount options of every bind: read-only (the files refuse writes anyway, and a
/// read-only bind says so before a write reaches the daemon).
pub const BIND_OPTIONS: [&str; 2] = ["bind", "ro"];

/// Reads the node's mount: the files it serves now (paths relative to the mountpoint),
/// or why it does not serve. Blocking; may hang on a hung FUSE daemon, which
/// [`Gate`] guards against.
pub trait Probe: Send + Sync + 'static {
    fn served(&self) -> Result<Vec<String>, String>;
}

/// Runs a [`Probe`] with a deadline, one at a time: a probe stuck on a hung mount keeps
/// later ones from piling up threads, and each answer meanwhile is "not serving".
pub struct Gate {
    probe: Arc<dyn Probe>,
    busy: Arc<AtomicBool>,
    deadline: Duration,
}

impl Gate {
    pub fn new(probe: Arc<dyn Probe>, deadline: Duration) -> Gate {
        Gate {
            probe,
            busy: Arc::new(AtomicBool::new(false)),
            deadline,
        }
    }

    pub async fn served(&self) -> Result<Vec<String>, String> {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err(
                "an earlier check of the mount has not returned yet (a hung FUSE daemon?)".into(),
            );
        }
        let probe = self.probe.clone();
        let busy = self.busy.clone();
        let task = tokio::task::spawn_blocking(move || {
            let r = probe.served();
            busy.store(false, Ordering::Release);
            r
        });
        match tokio::time::timeout(self.deadline, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.busy.store(false, Ordering::Release);
                Err(format!("the check of the mount failed: {e}"))
            }
            Err(_) => Err(format!(
                "the mount did not answer within {} ms",
                self.deadline.as_millis()
            )),
        }
    }
}

/// What a node's plugin binds.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The mountpoint as the runtime (on the host) names it: the binds' sources.
    pub mountpoint: PathBuf,
    /// Files (relative to the mountpoint) every runtime accepts as destinations.
    pub default_files: Vec<String>,
    /// Files bound for pods of the runtime handlers in `all_files_handlers`.
    pub all_files: Vec<String>,
    /// Runtime handlers (RuntimeClass handlers) known to accept every destination,
    /// e.g. crun's.
    pub all_files_handlers: Vec<String>,
    /// Namespaces whose pods are opted in unless labelled out. NRI shows a plugin the
    /// pod's namespace by name only, not the namespace's labels: the node is told.
    pub namespaces: Vec<String>,
}

/// Why a container got no binds, or the binds it got.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    NotOptedIn,
    NotServing(String),
    Binds(Vec<api::Mount>),
}

fn label(labels: &HashMap<String, String>) -> Option<&str> {
    labels.get(OPT_IN_LABEL).map(String::as_str)
}

impl Policy {
    /// The pod's label decides; without it, its namespace does.
    pub fn opted_in(&self, pod: &api::PodSandbox) -> bool {
        match label(&pod.labels) {
            Some(OPT_IN_VALUE) => true,
            Some(OPT_OUT_VALUE) => false,
            _ => self.namespaces.contains(&pod.namespace),
        }
    }

    /// The files this pod's runtime handler accepts.
    pub fn files_for(&self, runtime_handler: &str) -> &[String] {
        if self.all_files_handlers.iter().any(|h| h == runtime_handler) {
            &self.all_files
        } else {
            &self.default_files
        }
    }

    /// The binds for a container of `pod`, given what the mount serves now.
    pub fn decide(
        &self,
        pod: &api::PodSandbox,
        served: impl FnOnce() -> Result<Vec<String>, String>,
    ) -> Decision {
        if !self.opted_in(pod) {
            return Decision::NotOptedIn;
        }
        let served = match served() {
            Ok(s) => s,
            Err(e) => return Decision::NotServing(e),
        };
        let wanted = self.files_for(&pod.runtime_handler);
        Decision::Binds(
            wanted
                .iter()
                .filter(|f| served.contains(f))
                .map(|f| bind(&self.mountpoint, f))
                .collect(),
        )
    }
}

/// A read-only bind of `mountpoint/rel` over `/rel`.
pub fn bind(mountpoint: &Path, rel: &str) -> api::Mount {
    let mut m = api::Mount::new();
    m.source = mountpoint.join(rel).display().to_string();
    m.destination = format!("/{rel}");
    m.type_ = "bind".into();
    m.options = BIND_OPTIONS.iter().map(|o| o.to_string()).collect();
    m
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy() -> Policy {
        Policy {
            mountpoint: "/var/lib/lxcfs".into(),
            default_files: vec!["proc/meminfo".into(), "sys/devices/system/cpu".into()],
            all_files: vec![
                "proc/meminfo".into(),
                "proc/pressure/cpu".into(),
                "sys/devices/system/cpu".into(),
            ],
            all_files_handlers: vec!["crun".into()],
            namespaces: vec!["team".into()],
        }
    }

    fn pod(label: Option<&str>, handler: &str) -> api::PodSandbox {
        let mut p = api::PodSandbox::new();
        p.namespace = "default".into();
        if let Some(v) = label {
            p.labels.insert(OPT_IN_LABEL.into(), v.into());
        }
        p.runtime_handler = handler.into();
        p
    }

    fn everything() -> Result<Vec<String>, String> {
        Ok(policy().all_files)
    }

    fn destinations(d: &Decision) -> Vec<&str> {
        match d {
            Decision::Binds(m) => m.iter().map(|m| m.destination.as_str()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pods_without_the_label_or_with_another_value_are_left_alone() {
        let p = policy();
        assert_eq!(
            p.decide(&pod(None, "runc"), everything),
            Decision::NotOptedIn
        );
        assert_eq!(
            p.decide(&pod(Some("yes"), "runc"), everything),
            Decision::NotOptedIn
        );
    }

    #[test]
    fn pods_of_a_named_namespace_are_in_unless_labelled_out() {
        let p = policy();
        let mut team = pod(None, "runc");
        team.namespace = "team".into();
        assert!(p.opted_in(&team));
        team.labels.insert(OPT_IN_LABEL.into(), "false".into());
        assert!(!p.opted_in(&team));
        assert!(p.opted_in(&pod(Some("true"), "runc")));
        assert!(!p.opted_in(&pod(None, "runc")));
    }

    #[test]
    fn the_mount_is_not_probed_for_pods_that_did_not_opt_in() {
        let d = policy().decide(&pod(None, "runc"), || panic!("probed"));
        assert_eq!(d, Decision::NotOptedIn);
    }

    #[test]
    fn opted_in_pods_get_the_default_files_read_only() {
        let d = policy().decide(&pod(Some("true"), "runc"), everything);
        assert_eq!(
            destinations(&d),
            ["/proc/meminfo", "/sys/devices/system/cpu"]
        );
        let Decision::Binds(m) = d else { panic!() };
        assert_eq!(m[0].source, "/var/lib/lxcfs/proc/meminfo");
        assert_eq!(m[0].type_, "bind");
        assert_eq!(m[0].options, ["bind", "ro"]);
    }

    #[test]
    fn named_handlers_get_every_file_served() {
        let d = policy().decide(&pod(Some("true"), "crun"), everything);
        assert_eq!(
            destinations(&d),
            [
                "/proc/meminfo",
                "/proc/pressure/cpu",
                "/sys/devices/system/cpu"
            ]
        );
    }

    #[test]
    fn only_served_files_are_bound() {
        let d = policy().decide(&pod(Some("true"), "crun"), || {
            Ok(vec!["proc/meminfo".into()])
        });
        assert_eq!(destinations(&d), ["/proc/meminfo"]);
    }

    #[test]
    fn a_mount_that_does_not_serve_means_no_binds() {
        let d = policy().decide(&pod(Some("true"), "runc"), || Err("dead".into()));
        assert_eq!(d, Decision::NotServing("dead".into()));
    }

    struct Hangs(std::sync::Mutex<std::sync::mpsc::Receiver<()>>);
    impl Probe for Hangs {
        fn served(&self) -> Result<Vec<String>, String> {
            let _ = self.0.lock().unwrap().recv();
            Ok(vec!["proc/meminfo".into()])
        }
    }

    #[tokio::test]
    async fn a_hung_probe_answers_not_serving_in_time_and_is_not_stacked() {
        let (release, rx) = std::sync::mpsc::channel();
        let gate = Gate::new(
            Arc::new(Hangs(std::sync::Mutex::new(rx))),
            Duration::from_millis(50),
        );
        let t = std::time::Instant::now();
        assert!(gate.served().await.unwrap_err().contains("did not answer"));
        assert!(
            gate.served()
                .await
                .unwrap_err()
                .contains("not returned yet")
        );
        assert!(t.elapsed() < Duration::from_secs(2));
        // Once the mount answers again, so does the gate.
        release.send(()).unwrap();
        release.send(()).unwrap();
        let mut answered = false;
        for _ in 0..100 {
            if gate.served().await.is_ok() {
                answered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(answered);
    }
}
