//! Which daemons a run measures, and with which arguments: shared by `compare` and
//! `soak`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

const DEFAULT_LXCFS: &str = "/usr/bin/lxcfs";

#[derive(clap::Args, Debug)]
pub struct DaemonArgs {
    /// The lxcfs-rs binary (build it with `cargo build --release -p lxcfs-rs`).
    #[arg(long, default_value = "target/release/lxcfs-rs")]
    pub lxcfs_rs: PathBuf,
    /// The LXCFS binary [default: /usr/bin/lxcfs, skipped when missing].
    #[arg(long)]
    pub lxcfs: Option<PathBuf>,
    /// Do not run LXCFS.
    #[arg(long, conflicts_with = "lxcfs")]
    pub no_lxcfs: bool,
    /// Extra argument for lxcfs-rs (repeatable), e.g. `--lxcfs-rs-arg=--threads=8`.
    #[arg(long = "lxcfs-rs-arg", allow_hyphen_values = true)]
    pub lxcfs_rs_args: Vec<String>,
    /// Extra argument for LXCFS (repeatable), e.g. `--lxcfs-arg=-l`.
    #[arg(long = "lxcfs-arg", allow_hyphen_values = true)]
    pub lxcfs_args: Vec<String>,
}

impl DaemonArgs {
    /// The lxcfs-rs binary, and LXCFS's unless it is not to run or is missing (said).
    pub fn binaries(&self) -> Result<(PathBuf, Option<PathBuf>)> {
        let rs = fs::canonicalize(&self.lxcfs_rs).with_context(|| {
            format!(
                "no lxcfs-rs binary at {} (cargo build --release -p lxcfs-rs, or pass --lxcfs-rs)",
                self.lxcfs_rs.display()
            )
        })?;
        let lx = match (&self.lxcfs, self.no_lxcfs) {
            (_, true) => None,
            (Some(p), false) => Some(
                fs::canonicalize(p)
                    .with_context(|| format!("no LXCFS binary at {}", p.display()))?,
            ),
            (None, false) if Path::new(DEFAULT_LXCFS).exists() => {
                Some(PathBuf::from(DEFAULT_LXCFS))
            }
            (None, false) => {
                eprintln!(
                    "lxcfs-bench: {DEFAULT_LXCFS} is missing (apt-get install lxcfs): \
                     measuring lxcfs-rs only"
                );
                None
            }
        };
        Ok((rs, lx))
    }
}

/// LXCFS's arguments for the same work as lxcfs-rs's: lxcfs-rs virtualizes loadavg
/// unless told `--disable-loadavg`, LXCFS only with `-l`, so it gets `-l` unless the
/// two are already alike. A note for the report when one was added.
pub fn equal_work(rs: &[String], lx: &[String]) -> (Vec<String>, Option<String>) {
    let rs_virtual = !rs.iter().any(|a| a == "--disable-loadavg");
    let lx_virtual = lx.iter().any(|a| a == "-l" || a == "--enable-loadavg");
    let mut lx = lx.to_vec();
    if rs_virtual && !lx_virtual {
        lx.push("-l".into());
        return (
            lx,
            Some(
                "LXCFS runs with -l: both daemons virtualize loadavg (lxcfs-rs by default)".into(),
            ),
        );
    }
    (lx, None)
}

#[cfg(test)]
mod equal_work_tests {
    use super::equal_work;

    #[test]
    fn lxcfs_gets_l_only_when_lxcfs_rs_virtualizes_loadavg() {
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let (lx, note) = equal_work(&[], &[]);
        assert_eq!(lx, s(&["-l"]));
        assert!(note.is_some());
        let (lx, note) = equal_work(&s(&["--disable-loadavg"]), &[]);
        assert!(lx.is_empty() && note.is_none());
        let (lx, note) = equal_work(&[], &s(&["-l"]));
        assert_eq!(lx, s(&["-l"]));
        assert!(note.is_none());
    }
}
