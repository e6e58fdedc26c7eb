//! `lxcfs-rs check [MOUNTPOINT] [--pid PID] [--json]`: what this host offers lxcfs-rs,
//! what each missing piece means for containers, whether MOUNTPOINT is served and by
//! what, and, with `--pid`, which container a process is in and where each of its files
//! comes from. Everything is read with the code the daemon serves with (hostview), so
//! the report says what a reader would get.

mod args;
mod container;
mod host;
pub mod mount;

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

pub use args::Args;
pub use container::ContainerReport;
pub use mount::MountReport;
/// Whether a mountpoint is served, and by what (`lxcfs-rs cdi` asks too).
pub use mount::check as check_mount;

pub use args::DEFAULT_MOUNTPOINT;

/// How a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// There.
    Ok,
    /// Absent; lxcfs-rs works, and `meaning` says what containers lose.
    Limited,
    /// Absent and needed by the defaults: lxcfs-rs refuses to start, or serves the
    /// host's values where the container's are expected.
    Missing,
}

/// One thing checked on the host.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub name: &'static str,
    pub level: Level,
    /// What was found.
    pub found: String,
    /// What it means for containers (empty when there is nothing to say).
    pub meaning: String,
}

impl Finding {
    pub fn new(name: &'static str, level: Level, found: impl Into<String>) -> Finding {
        Finding {
            name,
            level,
            found: found.into(),
            meaning: String::new(),
        }
    }

    pub fn meaning(mut self, m: impl Into<String>) -> Finding {
        self.meaning = m.into();
        self
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub lxcfs_rs: &'static str,
    pub kernel: String,
    pub host: Vec<Finding>,
    pub mount: MountReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerReport>,
    /// The exit status's verdict (see [`Report::ok`]).
    pub ok: bool,
}

impl Report {
    /// Everything the defaults need is there; a MOUNTPOINT asked for is served by
    /// lxcfs-rs; a `--pid` asked for was found.
    pub fn verdict(
        host: &[Finding],
        mount: &MountReport,
        container: Option<&ContainerReport>,
    ) -> bool {
        host.iter().all(|f| f.level != Level::Missing)
            && (!mount.requested || mount.serves())
            && container.is_none_or(|c| c.error.is_none())
    }

    pub fn exit_code(&self) -> u8 {
        if self.ok { 0 } else { 1 }
    }
}

/// Run the check; returns the exit status.
pub fn run(args: &Args) -> u8 {
    let (host_findings, view) = host::check();
    let requested = args.mountpoint.is_some();
    let path = args
        .mountpoint
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MOUNTPOINT));
    let mount = mount::check(&path, requested);
    let container = args.pid.map(|pid| container::check(view.as_ref(), pid));
    let ok = Report::verdict(&host_findings, &mount, container.as_ref());
    let report = Report {
        lxcfs_rs: env!("CARGO_PKG_VERSION"),
        kernel: host::kernel_release(),
        host: host_findings,
        mount,
        container,
        ok,
    };
    let text = if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => s + "\n",
            Err(e) => format!("{{\"error\": \"cannot serialize the report: {e}\"}}\n"),
        }
    } else {
        human(&report)
    };
    // A closed stdout (`| head`) is no reason to change the verdict.
    let _ = std::io::stdout().write_all(text.as_bytes());
    report.exit_code()
}

/// The report for a person.
pub fn human(r: &Report) -> String {
    let mut s = format!("lxcfs-rs {} on Linux {}\n\nhost\n", r.lxcfs_rs, r.kernel);
    for f in &r.host {
        s += &format!("  {:<8} {:<24} {}\n", label(f.level), f.name, f.found);
        if !f.meaning.is_empty() {
            s += &format!("  {:<8} {:<24} -> {}\n", "", "", f.meaning);
        }
    }
    s += &format!("\nmount {}\n  {}\n", r.mount.path, r.mount.describe());
    if let Some(c) = &r.container {
        s += &c.describe();
    }
    s += &format!(
        "\n{}\n",
        if r.ok {
            "result: ok (exit status 0)"
        } else {
            "result: something needed is missing, see above (exit status 1)"
        }
    );
    s
}

fn label(l: Level) -> &'static str {
    match l {
        Level::Ok => "ok",
        Level::Limited => "limited",
        Level::Missing => "MISSING",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn served(requested: bool) -> MountReport {
        MountReport::for_tests("/m", requested, mount::State::LxcfsRs)
    }

    fn unserved(requested: bool) -> MountReport {
        MountReport::for_tests("/m", requested, mount::State::NotMounted)
    }

    #[test]
    fn limited_findings_do_not_fail_the_check_missing_ones_do() {
        let mut host = vec![
            Finding::new("a", Level::Ok, "x"),
            Finding::new("b", Level::Limited, "y"),
        ];
        assert!(Report::verdict(&host, &served(true), None));
        host.push(Finding::new("c", Level::Missing, "z"));
        assert!(!Report::verdict(&host, &served(true), None));
    }

    #[test]
    fn an_unserved_mountpoint_fails_only_when_asked_for() {
        let host = vec![Finding::new("a", Level::Ok, "x")];
        assert!(Report::verdict(&host, &unserved(false), None));
        assert!(!Report::verdict(&host, &unserved(true), None));
    }

    #[test]
    fn a_pid_that_cannot_be_resolved_fails_the_check() {
        let host = vec![Finding::new("a", Level::Ok, "x")];
        let gone = ContainerReport::failed(42, "no such process".into());
        assert!(!Report::verdict(&host, &served(false), Some(&gone)));
    }

    #[test]
    fn human_output_shows_levels_meanings_and_the_verdict() {
        let host = vec![
            Finding::new("PSI", Level::Limited, "no /proc/pressure")
                .meaning("proc/pressure/* cannot be read"),
        ];
        let mount = unserved(false);
        let ok = Report::verdict(&host, &mount, None);
        let r = Report {
            lxcfs_rs: "1.2.3",
            kernel: "6.1.0".into(),
            host,
            mount,
            container: None,
            ok,
        };
        let text = human(&r);
        assert!(
            text.starts_with("lxcfs-rs 1.2.3 on Linux 6.1.0\n"),
            "{text}"
        );
        assert!(
            text.contains("  limited  PSI                      no /proc/pressure\n"),
            "{text}"
        );
        assert!(
            text.contains("-> proc/pressure/* cannot be read\n"),
            "{text}"
        );
        assert!(text.ends_with("result: ok (exit status 0)\n"), "{text}");
        assert_eq!(r.exit_code(), 0);
        let json: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(json["host"][0]["level"], "limited");
        assert_eq!(json["mount"]["state"], "not-mounted");
        assert_eq!(json["ok"], true);
        assert!(json.get("container").is_none());
    }
}
