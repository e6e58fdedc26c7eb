//! `lxcfs-rs device-plugin`: the kubelet device plugin (crate `deviceplugin`) wired to
//! this node: its devices are healthy while the node's mount serves and a CDI spec the
//! runtime reads names the device `Allocate` hands out; the rest is the protocol's.
//!
//! Both conditions matter to a pod: a runtime fails a container whose CDI device it
//! cannot resolve, or whose bind sources are dead, so while either is missing the
//! node offers none of the resource and the scheduler places no new such pod there.

mod args;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::watch;

use ::deviceplugin::plugin::Config;
use ::deviceplugin::session::{self, Options};
use ::nri::plugin::{Gate, Probe};
pub use args::Args;

use crate::nri::{Mount, PROBE_DEADLINE, probe_path};

/// Between looks at the kubelet's socket and ours (a kubelet restart is noticed within
/// this), and between registration attempts.
const SOCKET_POLL: Duration = Duration::from_secs(1);

/// Whether a spec in `dirs` (as this process sees them) names `kind=device` with binds
/// from under `mountpoint` (as the runtime sees it): the file `lxcfs-rs cdi --write`
/// writes. Ok(path of the spec) or why not.
fn spec_names_device(
    dirs: &[PathBuf],
    kind: &str,
    device: &str,
    mountpoint: &Path,
) -> std::result::Result<PathBuf, String> {
    let mut why = Vec::new();
    for dir in dirs {
        let path = dir.join(crate::cdi::FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                why.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let json: serde_json::Value = match serde_json::from_str(&text) {
            Ok(j) => j,
            Err(e) => {
                why.push(format!("{}: not JSON: {e}", path.display()));
                continue;
            }
        };
        let named = json["kind"] == kind
            && json["devices"].as_array().is_some_and(|devs| {
                devs.iter().any(|d| {
                    d["name"] == device
                        && d["containerEdits"]["mounts"].as_array().is_some_and(|m| {
                            !m.is_empty()
                                && m.iter().all(|m| {
                                    m["hostPath"]
                                        .as_str()
                                        .is_some_and(|h| Path::new(h).starts_with(mountpoint))
                                })
                        })
                })
            });
        if named {
            return Ok(path);
        }
        why.push(format!(
            "{}: no device {kind}={device} binding from {}",
            path.display(),
            mountpoint.display()
        ));
    }
    Err(why.join("; "))
}

/// What one check found: healthy, or why not.
async fn check(
    gate: &Gate,
    spec_dirs: &[PathBuf],
    device: &str,
    mountpoint: &Path,
) -> std::result::Result<(), String> {
    gate.served().await.map(|_| ())?;
    if spec_dirs.is_empty() {
        return Ok(());
    }
    spec_names_device(spec_dirs, crate::cdi::KIND, device, mountpoint).map(|_| ())
}

fn validate(args: &Args) -> Result<()> {
    if let Err(e) = ::deviceplugin::names::check_resource_name(&args.resource_name) {
        bail!("--resource-name: {e}");
    }
    let s = &args.socket_name;
    if s.is_empty() || s.contains('/') || s.starts_with('.') || s == ::deviceplugin::KUBELET_SOCKET
    {
        bail!("--socket-name {s:?}: a file name of its own in --dir, not starting with '.'");
    }
    if !args.mountpoint.is_absolute() {
        bail!(
            "--mountpoint {}: the runtime needs an absolute path",
            args.mountpoint.display()
        );
    }
    Ok(())
}

/// Run `lxcfs-rs device-plugin`; returns the exit status.
pub fn run(args: &Args) -> u8 {
    match run_inner(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("lxcfs-rs device-plugin: {e:#}");
            1
        }
    }
}

fn run_inner(args: &Args) -> Result<()> {
    validate(args)?;
    let device = args.cdi_device.name();
    let config = Config {
        resource_name: args.resource_name.clone(),
        devices: args.devices as usize,
        cdi_device: format!("{}={device}", crate::cdi::KIND),
    };
    let spec_dirs: Vec<PathBuf> = if args.cdi_spec_dirs.iter().any(|d| d == "none") {
        Vec::new()
    } else {
        args.cdi_spec_dirs
            .iter()
            .map(|d| probe_path(&args.host_root, Path::new(d)))
            .collect()
    };
    let probe: Arc<dyn Probe> = Arc::new(Mount {
        path: probe_path(&args.host_root, &args.mountpoint),
    });
    let gate = Gate::new(probe, PROBE_DEADLINE);
    let opts = Options {
        dir: args.dir.clone(),
        endpoint: args.socket_name.clone(),
        poll: SOCKET_POLL,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the plugin's event loop")?;
    tracing::info!(
        "lxcfs-rs {} device plugin: {} x{} in {}, allocating CDI device {}",
        env!("CARGO_PKG_VERSION"),
        config.resource_name,
        config.devices,
        args.dir.display(),
        config.cdi_device
    );
    let interval = Duration::from_secs(args.check_interval);
    let mountpoint = args.mountpoint.clone();
    let debug = args.debug;
    rt.block_on(async move {
        // Unhealthy until the first check says otherwise.
        let (health_tx, health) = watch::channel(false);
        let first = check(&gate, &spec_dirs, device, &mountpoint).await;
        report(&health_tx, &first, true, debug);
        let checks = async {
            loop {
                tokio::time::sleep(interval).await;
                let r = check(&gate, &spec_dirs, device, &mountpoint).await;
                report(&health_tx, &r, false, debug);
            }
        };
        tokio::select! {
            r = session::run(&opts, config, health) => r.map_err(anyhow::Error::from),
            () = checks => Ok(()),
        }
    })
}

/// Publishes a check's result, logging changes (and, with --debug, every check).
fn report(
    health: &watch::Sender<bool>,
    r: &std::result::Result<(), String>,
    first: bool,
    debug: bool,
) {
    let healthy = r.is_ok();
    let changed = health.send_if_modified(|h| std::mem::replace(h, healthy) != healthy);
    match r {
        Ok(()) if changed || first => tracing::info!("the mount serves: devices Healthy"),
        Err(why) if changed || first => {
            tracing::warn!("devices Unhealthy: {why}")
        }
        Ok(()) if debug => tracing::debug!("the mount serves"),
        Err(why) if debug => tracing::debug!("still Unhealthy: {why}"),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(extra: &[&str]) -> Args {
        use clap::Parser;
        Args::parse_from(std::iter::once("lxcfs-rs device-plugin").chain(extra.iter().copied()))
    }

    #[test]
    fn defaults_are_the_kubelets_and_the_specs() {
        let a = args(&[]);
        assert!(validate(&a).is_ok());
        assert_eq!(a.dir, Path::new("/var/lib/kubelet/device-plugins"));
        assert_eq!(a.resource_name, crate::cdi::KIND);
        assert_eq!(a.devices, 1000);
        assert_eq!(a.cdi_device.name(), crate::cdi::DEFAULT_DEVICE);
        assert_eq!(args::CdiDevice::All.name(), crate::cdi::ALL_DEVICE);
        assert_eq!(a.cdi_spec_dirs, ["/etc/cdi", "/var/run/cdi"]);
    }

    #[test]
    fn the_pool_has_the_protocols_bounds() {
        assert!(validate(&args(&["--devices", "10000"])).is_ok());
        use clap::Parser;
        assert!(Args::try_parse_from(["x", "--devices", "10001"]).is_err());
        assert!(Args::try_parse_from(["x", "--devices", "0"]).is_err());
    }

    #[test]
    fn bad_names_are_refused_at_start() {
        assert!(validate(&args(&["--resource-name", "proc"])).is_err());
        assert!(validate(&args(&["--socket-name", "kubelet.sock"])).is_err());
        assert!(validate(&args(&["--socket-name", "a/b"])).is_err());
        assert!(validate(&args(&["--mountpoint", "rel"])).is_err());
    }

    fn write_spec(dir: &Path, mountpoint: &Path) {
        let served = ["proc/meminfo", "sys/devices/system/cpu"];
        let text = crate::cdi::to_json(&crate::cdi::spec(mountpoint, &served)).unwrap();
        crate::cdi::write_atomically(dir, &text).unwrap();
    }

    #[test]
    fn the_spec_must_name_the_device_with_binds_from_the_mountpoint() {
        let t = tempfile::tempdir().unwrap();
        let (etc, run) = (t.path().join("etc"), t.path().join("run"));
        let dirs = [etc.clone(), run.clone()];
        let mnt = Path::new("/var/lib/lxcfs");
        let e = spec_names_device(&dirs, crate::cdi::KIND, "default", mnt).unwrap_err();
        assert!(e.contains("etc") && e.contains("run"), "{e}");
        write_spec(&run, mnt);
        assert_eq!(
            spec_names_device(&dirs, crate::cdi::KIND, "default", mnt).unwrap(),
            run.join(crate::cdi::FILE_NAME)
        );
        assert!(spec_names_device(&dirs, crate::cdi::KIND, "all", mnt).is_ok());
        assert!(spec_names_device(&dirs, crate::cdi::KIND, "other", mnt).is_err());
        // A spec of another mountpoint does not count.
        let e = spec_names_device(&dirs, crate::cdi::KIND, "default", Path::new("/m")).unwrap_err();
        assert!(e.contains("no device"), "{e}");
        std::fs::write(run.join(crate::cdi::FILE_NAME), "{").unwrap();
        assert!(spec_names_device(&dirs, crate::cdi::KIND, "default", mnt).is_err());
    }
}
