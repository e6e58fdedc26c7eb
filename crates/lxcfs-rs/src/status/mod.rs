//! `lxcfs-rs status [MOUNTPOINT] [--json] [--metrics]`: what the daemon serving a
//! mountpoint is doing, from its metrics socket (see `metrics`).

mod args;
mod summary;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;

pub use args::Args;

use crate::check::DEFAULT_MOUNTPOINT;
use crate::metrics::get_unix;

/// Exit status (1: no daemon answered).
pub fn run(args: &Args) -> u8 {
    match status(args) {
        Ok(out) => {
            let _ = std::io::stdout().write_all(out.as_bytes());
            0
        }
        Err(e) => {
            // One line; a closed stderr is no reason to panic.
            let _ = writeln!(std::io::stderr(), "lxcfs-rs status: {e}");
            1
        }
    }
}

fn status(args: &Args) -> Result<String, String> {
    let socket = match &args.socket {
        Some(s) => s.clone(),
        None => find_socket(
            args.mountpoint
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_MOUNTPOINT)),
        )?,
    };
    let scrape = || -> Result<String, String> {
        match get_unix(&socket, "/metrics") {
            Ok((200, body)) => Ok(body),
            Ok((code, body)) => Err(format!(
                "{}: answered {code}: {}",
                socket.display(),
                body.trim()
            )),
            Err(e) => Err(format!("no daemon answers on {}: {e}", socket.display())),
        }
    };
    let first = scrape()?;
    if args.metrics {
        return Ok(first);
    }
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(args.sample.clamp(0.0, 60.0)));
    let second = scrape()?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut s = summary::summarize(
        &summary::parse(&first),
        &summary::parse(&second),
        t0.elapsed().as_secs_f64(),
        now,
    );
    // A daemon of a version without the document has no busiest containers to show.
    if let Ok((200, body)) = get_unix(&socket, "/containers") {
        if let Ok(doc) = serde_json::from_str::<crate::metrics::BusiestDoc>(&body) {
            s.busiest_window_seconds = doc.window_seconds;
            s.busiest_containers = doc.containers;
        }
    }
    if args.json {
        serde_json::to_string_pretty(&s)
            .map(|j| j + "\n")
            .map_err(|e| e.to_string())
    } else {
        Ok(summary::human(&s, &socket.display().to_string()))
    }
}

/// The metrics socket of the supervisor serving `mountpoint`, from its command line.
fn find_socket(mountpoint: &Path) -> Result<PathBuf, String> {
    let report = crate::check::mount::check(mountpoint, true);
    if !report.serves() {
        return Err(format!("{}: {}", report.path, report.describe()));
    }
    let Some(pid) = report.daemon.as_ref().and_then(|d| d.pid) else {
        return Err(format!(
            "{}: served by an orphaned worker, no supervisor to ask: {}",
            report.path,
            report.describe()
        ));
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map_err(|e| format!("cannot read supervisor {pid}'s command line: {e}"))?;
    let argv: Vec<std::ffi::OsString> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(a).to_os_string())
        .collect();
    let cli = crate::cli::Cli::try_parse_from(&argv).map_err(|e| {
        format!(
            "cannot read supervisor {pid}'s options ({}); name its socket with --socket",
            e.kind()
        )
    })?;
    Ok(cli.metrics_socket())
}
