//! `lxcfs-rs cdi [MOUNTPOINT] [--write [--dir DIR]]`: a Container Device Interface spec
//! whose devices bind the files a running lxcfs-rs mount serves over a container's own,
//! so that a runtime injects them with one `--device` instead of a dozen `-v` flags.
//!
//! The spec lists only what the mount serves right now (pressure files exist only where
//! the host has PSI), and splits it by what runtimes accept: runc and youki refuse every
//! bind under /proc outside a fixed allow-list, and one refused mount fails the whole
//! container, so the default device holds only destinations every runtime takes.

mod args;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

pub use args::Args;

/// The CDI spec version written. Podman 4.3 (Debian 12) vendors the CDI library 0.5,
/// which refuses versions it does not know; 0.5.0 has everything used here (mount
/// `type` came with 0.4.0) and every later library accepts it.
pub const CDI_VERSION: &str = "0.5.0";
/// `vendor/class`: the vendor is a domain-like name of ours, the class says what the
/// devices give a container.
pub const KIND: &str = "lxcfs-rs.io/proc";
/// CDI's convention: `<vendor>-<class>.json`; runtimes read every `.json`/`.yaml` of
/// the directory.
pub const FILE_NAME: &str = "lxcfs-rs.io-proc.json";
/// The device every runtime accepts.
pub const DEFAULT_DEVICE: &str = "default";
/// Everything served, for runtimes without runc's /proc allow-list (crun, LXC).
pub const ALL_DEVICE: &str = "all";

/// Files under /proc that runc (1.1 to 1.5) and youki accept as bind destinations
/// (`checkProcMount`'s allow-list, minus slabinfo, which older runc lacks and which
/// only root can read anyway).
pub const RUNC_SAFE_PROC: [&str; 7] = [
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
];
/// Served files runc refuses (pressure, vmstat) or that only the full device carries.
pub const OTHER_PROC: [&str; 5] = [
    "proc/slabinfo",
    "proc/pressure/cpu",
    "proc/pressure/io",
    "proc/pressure/memory",
    "proc/vmstat",
];
/// A directory: glibc counts its `cpuN` entries, lscpu reads them. Not under /proc,
/// so no runtime checks it.
pub const CPU_DIR: &str = "sys/devices/system/cpu";

#[derive(Debug, Serialize, PartialEq)]
pub struct Spec {
    #[serde(rename = "cdiVersion")]
    pub cdi_version: &'static str,
    pub kind: &'static str,
    pub devices: Vec<Device>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Device {
    pub name: &'static str,
    #[serde(rename = "containerEdits")]
    pub container_edits: ContainerEdits,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ContainerEdits {
    pub mounts: Vec<Mount>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Mount {
    #[serde(rename = "hostPath")]
    pub host_path: String,
    #[serde(rename = "containerPath")]
    pub container_path: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub options: Vec<&'static str>,
}

/// The paths (relative to the mountpoint) of the known files that exist under it.
pub fn served(mountpoint: &Path) -> Vec<&'static str> {
    RUNC_SAFE_PROC
        .iter()
        .chain(OTHER_PROC.iter())
        .chain(std::iter::once(&CPU_DIR))
        .copied()
        .filter(|rel| mountpoint.join(rel).symlink_metadata().is_ok())
        .collect()
}

/// The spec binding `served` (relative paths) from `mountpoint`.
pub fn spec(mountpoint: &Path, served: &[&'static str]) -> Spec {
    let mount = |rel: &str| Mount {
        host_path: mountpoint.join(rel).display().to_string(),
        container_path: format!("/{rel}"),
        kind: "bind",
        // Read-only: the files refuse writes anyway, and a read-only bind says so
        // before the request reaches the daemon.
        options: vec!["bind", "ro"],
    };
    let default = served
        .iter()
        .filter(|rel| RUNC_SAFE_PROC.contains(rel) || **rel == CPU_DIR)
        .map(|rel| mount(rel))
        .collect();
    let all = served.iter().map(|rel| mount(rel)).collect();
    Spec {
        cdi_version: CDI_VERSION,
        kind: KIND,
        devices: vec![
            Device {
                name: DEFAULT_DEVICE,
                container_edits: ContainerEdits { mounts: default },
            },
            Device {
                name: ALL_DEVICE,
                container_edits: ContainerEdits { mounts: all },
            },
        ],
    }
}

/// The spec as written: pretty JSON ending in a newline.
pub fn to_json(spec: &Spec) -> Result<String> {
    Ok(serde_json::to_string_pretty(spec).context("cannot serialize the CDI spec")? + "\n")
}

/// Write `text` to `dir/FILE_NAME` so that a runtime reading the directory at any moment
/// sees the old spec or the new one, never a partial file: a temporary file in the same
/// directory (not ending in .json, so runtimes skip it), synced, renamed over.
pub fn write_atomically(dir: &Path, text: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        // The rename itself survives a crash only once the directory is synced.
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(path)
}

/// Run `lxcfs-rs cdi`; returns the exit status.
pub fn run(args: &Args) -> u8 {
    match run_inner(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("lxcfs-rs cdi: {e:#}");
            1
        }
    }
}

fn run_inner(args: &Args) -> Result<()> {
    let mountpoint = args
        .mountpoint
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::check::DEFAULT_MOUNTPOINT));
    // A spec naming a mount nobody serves would make every container using it fail to
    // start (or bind dead files): refuse, saying what is there instead.
    let state = crate::check::check_mount(&mountpoint, true);
    if !state.serves() {
        bail!(
            "{} is not served by lxcfs-rs: {}",
            mountpoint.display(),
            state.describe()
        );
    }
    // Bind sources as the mount table names them, however MOUNTPOINT was spelled.
    let mountpoint = PathBuf::from(&state.path);
    let files = served(&mountpoint);
    if !RUNC_SAFE_PROC.iter().all(|f| files.contains(f)) || !files.contains(&CPU_DIR) {
        bail!(
            "{} lacks files every lxcfs-rs serves (found: {})",
            mountpoint.display(),
            files.join(", ")
        );
    }
    let text = to_json(&spec(&mountpoint, &files))?;
    if args.write {
        let path = write_atomically(&args.dir, &text)?;
        println!(
            "wrote {} ({KIND}={DEFAULT_DEVICE}: {} binds, {KIND}={ALL_DEVICE}: {} binds)",
            path.display(),
            RUNC_SAFE_PROC.len() + 1,
            files.len()
        );
    } else {
        // A closed stdout (`| head`) is not an error of ours.
        let _ = std::io::stdout().write_all(text.as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const EVERYTHING: [&str; 13] = [
        "proc/cpuinfo",
        "proc/diskstats",
        "proc/meminfo",
        "proc/stat",
        "proc/swaps",
        "proc/uptime",
        "proc/loadavg",
        "proc/slabinfo",
        "proc/pressure/cpu",
        "proc/pressure/io",
        "proc/pressure/memory",
        "proc/vmstat",
        "sys/devices/system/cpu",
    ];

    fn destinations(d: &Device) -> Vec<&str> {
        d.container_edits
            .mounts
            .iter()
            .map(|m| m.container_path.as_str())
            .collect()
    }

    /// CDI's name rules (SPEC.md, "kind" and "devices.name"): vendor is a domain-like
    /// name, class and device name are letters, digits and a few separators, all
    /// starting and ending with a letter or digit.
    fn valid_segment(s: &str, extra: &[char]) -> bool {
        let alnum = |c: char| c.is_ascii_alphanumeric();
        !s.is_empty()
            && s.chars().next().is_some_and(alnum)
            && s.chars().last().is_some_and(alnum)
            && s.chars().all(|c| alnum(c) || extra.contains(&c))
    }

    #[test]
    fn kind_and_names_follow_cdi_rules() {
        let (vendor, class) = KIND.split_once('/').unwrap();
        assert!(valid_segment(vendor, &['-', '_', '.']), "{vendor}");
        assert!(valid_segment(class, &['-', '_']), "{class}");
        for name in [DEFAULT_DEVICE, ALL_DEVICE] {
            assert!(valid_segment(name, &['-', '_', '.', ':']), "{name}");
        }
        assert_eq!(FILE_NAME, format!("{vendor}-{class}.json"));
    }

    #[test]
    fn default_device_holds_only_what_runc_accepts() {
        let s = spec(Path::new("/var/lib/lxcfs"), &EVERYTHING);
        let default = &s.devices[0];
        assert_eq!(default.name, "default");
        assert_eq!(
            destinations(default),
            [
                "/proc/cpuinfo",
                "/proc/diskstats",
                "/proc/meminfo",
                "/proc/stat",
                "/proc/swaps",
                "/proc/uptime",
                "/proc/loadavg",
                "/sys/devices/system/cpu"
            ]
        );
        assert!(
            !destinations(default)
                .iter()
                .any(|d| d.contains("pressure") || d.ends_with("vmstat"))
        );
    }

    #[test]
    fn all_device_holds_everything_served() {
        let s = spec(Path::new("/var/lib/lxcfs"), &EVERYTHING);
        let all = &s.devices[1];
        assert_eq!(all.name, "all");
        assert_eq!(all.container_edits.mounts.len(), 13);
        for m in &all.container_edits.mounts {
            assert_eq!(
                m.host_path,
                format!("/var/lib/lxcfs{}", m.container_path),
                "every file binds over its own path"
            );
            assert_eq!(m.kind, "bind");
            assert_eq!(m.options, ["bind", "ro"]);
        }
    }

    #[test]
    fn files_the_mount_lacks_are_not_listed() {
        // A host without PSI serves no pressure files; slabinfo and vmstat left out too
        // (an older daemon's mount).
        let served: Vec<&str> = EVERYTHING
            .iter()
            .copied()
            .filter(|f| {
                !f.contains("pressure") && !f.ends_with("slabinfo") && !f.ends_with("vmstat")
            })
            .collect();
        let s = spec(Path::new("/m"), &served);
        assert_eq!(destinations(&s.devices[0]), destinations(&s.devices[1]));
        assert_eq!(s.devices[1].container_edits.mounts.len(), 8);
    }

    #[test]
    fn json_has_cdi_field_names() {
        let text = to_json(&spec(Path::new("/m"), &["proc/meminfo"])).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["cdiVersion"], CDI_VERSION);
        assert_eq!(v["kind"], "lxcfs-rs.io/proc");
        let m = &v["devices"][0]["containerEdits"]["mounts"][0];
        assert_eq!(m["hostPath"], "/m/proc/meminfo");
        assert_eq!(m["containerPath"], "/proc/meminfo");
        assert_eq!(m["type"], "bind");
        assert_eq!(m["options"], serde_json::json!(["bind", "ro"]));
        // CDI loaders refuse unknown fields: nothing else may appear.
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["cdiVersion", "devices", "kind"]);
        assert_eq!(m.as_object().unwrap().len(), 4);
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn served_lists_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "proc/meminfo",
            "proc/pressure/io",
            "sys/devices/system/cpu/online",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        assert_eq!(
            served(dir.path()),
            ["proc/meminfo", "proc/pressure/io", "sys/devices/system/cpu"]
        );
    }

    #[test]
    fn write_replaces_the_spec_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let cdi = dir.path().join("cdi");
        let p = write_atomically(&cdi, "one\n").unwrap();
        assert_eq!(p, cdi.join(FILE_NAME));
        write_atomically(&cdi, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two\n");
        let names: Vec<_> = std::fs::read_dir(&cdi)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
    }

    #[test]
    fn write_fails_with_the_path_when_the_directory_cannot_be_made() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        let e = write_atomically(&file.join("cdi"), "x").unwrap_err();
        assert!(format!("{e:#}").contains("cannot create"), "{e:#}");
    }
}
