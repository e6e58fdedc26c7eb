//! The plugin's session against the runtime harness, in one process, over a real unix
//! socket: the wire protocol end to end, with a stand-in for the mount.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{self, Runtime};
use crate::plugin::{Gate, OPT_IN_LABEL, Policy, Probe};
use crate::session::{self, Identity};

/// A mount whose state the test sets.
struct Fake(Arc<Mutex<Result<Vec<String>, String>>>);
impl Probe for Fake {
    fn served(&self) -> Result<Vec<String>, String> {
        self.0.lock().unwrap().clone()
    }
}

fn policy() -> Policy {
    Policy {
        mountpoint: PathBuf::from("/var/lib/lxcfs"),
        default_files: vec!["proc/meminfo".into(), "sys/devices/system/cpu".into()],
        all_files: vec![
            "proc/meminfo".into(),
            "proc/pressure/io".into(),
            "sys/devices/system/cpu".into(),
        ],
        all_files_handlers: vec!["crun".into()],
        namespaces: vec![],
    }
}

/// Starts the plugin on its own thread and runtime, connecting to `socket` until the
/// runtime closes the connection `sessions` times.
fn plugin(
    socket: PathBuf,
    state: Arc<Mutex<Result<Vec<String>, String>>>,
    sessions: usize,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let identity = Identity {
            name: "lxcfs-rs".into(),
            index: "40".into(),
        };
        let mut ends = Vec::new();
        for _ in 0..sessions {
            let gate = Gate::new(Arc::new(Fake(state.clone())), Duration::from_millis(500));
            let r = rt.block_on(session::run(&socket, &identity, policy(), gate));
            ends.push(format!("{r:?}"));
        }
        ends
    })
}

fn destinations(r: &crate::api::CreateContainerResponse) -> Vec<(String, String)> {
    r.adjust
        .mounts
        .iter()
        .map(|m| (m.source.clone(), m.destination.clone()))
        .collect()
}

#[test]
fn registration_configuration_and_create_container_over_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nri.sock");
    let runtime = Runtime::listen(&socket).unwrap();
    let state = Arc::new(Mutex::new(Ok(policy().all_files)));
    let thread = plugin(socket, state.clone(), 1);
    let p = runtime.accept(Duration::from_secs(10)).unwrap();
    assert_eq!(p.registration.plugin_name, "lxcfs-rs");
    assert_eq!(p.registration.plugin_idx, "40");

    let cfg = runtime.configure(&p, "containerd", "2.1.0").unwrap();
    assert_eq!(cfg.events, 1 << 3, "subscribed to CreateContainer only");

    // A split synchronization: each answer echoes `more` and updates nothing.
    let running = harness::pod("default", "old", "runc", &[(OPT_IN_LABEL, "true")]);
    let c = harness::container(&running, "app");
    let s = runtime
        .synchronize(&p, vec![running], vec![], true)
        .unwrap();
    assert!(s.more && s.update.is_empty());
    let s = runtime.synchronize(&p, vec![], vec![c], false).unwrap();
    assert!(!s.more && s.update.is_empty());

    let opted = harness::pod("default", "web", "runc", &[(OPT_IN_LABEL, "true")]);
    let r = runtime
        .create_container(&p, opted.clone(), harness::container(&opted, "app"))
        .unwrap();
    assert_eq!(
        destinations(&r),
        [
            ("/var/lib/lxcfs/proc/meminfo".into(), "/proc/meminfo".into()),
            (
                "/var/lib/lxcfs/sys/devices/system/cpu".into(),
                "/sys/devices/system/cpu".into()
            ),
        ]
    );
    assert!(
        r.adjust
            .mounts
            .iter()
            .all(|m| m.type_ == "bind" && m.options == ["bind", "ro"])
    );
    assert!(r.update.is_empty());

    let crun = harness::pod("default", "fast", "crun", &[(OPT_IN_LABEL, "true")]);
    let r = runtime
        .create_container(&p, crun.clone(), harness::container(&crun, "app"))
        .unwrap();
    assert_eq!(destinations(&r).len(), 3, "{r:?}");

    let other = harness::pod("default", "db", "runc", &[("app", "db")]);
    let r = runtime
        .create_container(&p, other.clone(), harness::container(&other, "app"))
        .unwrap();
    assert!(r.adjust.mounts.is_empty(), "{r:?}");

    *state.lock().unwrap() = Err("dead".into());
    let r = runtime
        .create_container(&p, opted.clone(), harness::container(&opted, "app"))
        .unwrap();
    assert!(r.adjust.mounts.is_empty(), "{r:?}");

    runtime.shutdown(&p).unwrap();
    runtime.close(p);
    let ends = thread.join().unwrap();
    assert_eq!(ends.len(), 1);
}

#[test]
fn the_plugin_registers_again_after_the_runtime_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nri.sock");
    let runtime = Runtime::listen(&socket).unwrap();
    let state = Arc::new(Mutex::new(Ok(policy().all_files)));
    let thread = plugin(socket, state, 2);
    let first = runtime.accept(Duration::from_secs(10)).unwrap();
    runtime.configure(&first, "cri-o", "1.30.0").unwrap();
    runtime.close(first);
    let second = runtime.accept(Duration::from_secs(10)).unwrap();
    assert_eq!(second.registration.plugin_name, "lxcfs-rs");
    let cfg = runtime.configure(&second, "cri-o", "1.30.0").unwrap();
    assert_eq!(cfg.events, 8);
    runtime.close(second);
    let ends = thread.join().unwrap();
    assert_eq!(ends.len(), 2, "{ends:?}");
}
