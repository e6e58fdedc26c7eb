//! A container of any runtime reading the served files in a loop while the daemon's
//! worker is SIGKILLed and then live-upgraded (SIGUSR1): the one check every runtime
//! test makes that its containers never see a failed read.

use std::fs;
use std::path::Path;
use std::process::Child;

use rustix::process::Signal;

use super::CdiMount;
use crate::e2e::{DEADLINE, Daemon, poll, wait_deadline};
use crate::proc::{is_running, signal};

/// Loops to see between the steps (start, kill, upgrade): each is one read of every
/// file, so a step that broke reads for a moment shows.
const LOOPS_PER_STEP: u64 = 5;

/// The loop's directory on the host, bound read-write at `/out` in the container:
/// `started`, `n` (loops done), `stop` (made by the test), `errors`, `tally`.
pub struct ReadLoop {
    dir: tempfile::TempDir,
    /// `sh -c` script the container runs.
    pub script: String,
    files: usize,
    /// The most loops seen done: the shell truncates `n` before writing it, so a read
    /// may find it empty.
    seen: std::cell::Cell<u64>,
}

impl ReadLoop {
    /// A loop reading each of the bound destinations in `mounts` (a directory: its
    /// `online` file), then checking that `/proc/meminfo` says `mem_total_kib`; every
    /// read that fails or says otherwise counts as failed.
    pub fn new(mounts: &[CdiMount], mem_total_kib: u64) -> ReadLoop {
        let files: Vec<String> = mounts
            .iter()
            .map(|m| {
                if Path::new(&m.host_path).is_dir() {
                    format!("{}/online", m.container_path)
                } else {
                    m.container_path.clone()
                }
            })
            .collect();
        let dir = tempfile::Builder::new()
            .prefix(&crate::e2e::unique("readloop"))
            .tempdir()
            .expect("create the read loop's dir");
        // Containers run as root, other users may have to write here.
        fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod the read loop's dir");
        let script = format!(
            r#"
n=0; f=0
touch /out/started
while [ ! -e /out/stop ]; do
    for p in {files}; do
        cat $p >/dev/null || {{ f=$((f+1)); echo "ERR $p" >>/out/errors; }}
    done
    v=$(head -1 /proc/meminfo) || v=failed
    case "$v" in *" {mem_total_kib} kB") ;; *) f=$((f+1)); echo "BAD $v" >>/out/errors;; esac
    n=$((n+1)); echo $n >/out/n
done
echo "reads=$n failed=$f" >/out/tally
"#,
            files = files.join(" ")
        );
        ReadLoop {
            dir,
            script,
            files: files.len(),
            seen: std::cell::Cell::new(0),
        }
    }

    /// The host side of `/out`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `-v DIR:/out` for Docker and Podman.
    pub fn volume(&self) -> String {
        format!("{}:/out", self.dir().display())
    }

    fn loops_done(&self) -> u64 {
        let now = fs::read_to_string(self.dir().join("n"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        self.seen.set(self.seen.get().max(now));
        self.seen.get()
    }

    fn wait_loops(&self, what: &str) {
        let from = self.loops_done();
        poll(DEADLINE, what, || {
            (self.loops_done() >= from + LOOPS_PER_STEP).then_some(())
        });
    }

    /// With `container` (the runtime's client or `run`, started on [`ReadLoop::script`])
    /// reading: SIGKILL `d`'s worker, wait for its replacement, live-upgrade, stop the
    /// loop. Asserts the container exited cleanly, that no read failed, and that the
    /// loop went on through each step; prints the counts, and returns the loops done.
    pub fn through_kill_and_upgrade(&self, runtime: &str, d: &Daemon, mut container: Child) -> u64 {
        let dump = |container: &mut Child| {
            let mut out = String::new();
            if let Some(o) = container.stdout.as_mut() {
                let _ = std::io::Read::read_to_string(o, &mut out);
            }
            if let Some(e) = container.stderr.as_mut() {
                let _ = std::io::Read::read_to_string(e, &mut out);
            }
            out
        };
        let started = poll(DEADLINE, "the container to start reading", || {
            if self.dir().join("started").exists() {
                return Some(true);
            }
            matches!(container.try_wait(), Ok(Some(_))).then_some(false)
        });
        assert!(
            started,
            "{runtime}: the container exited before reading: {}",
            dump(&mut container)
        );
        self.wait_loops("the container's first reads");

        let before = d.workers();
        assert_eq!(before.len(), 1, "{before:?}\n{}", d.log_text());
        signal(before[0], Signal::KILL).expect("SIGKILL the worker");
        poll(DEADLINE, "a worker replacing the killed one", || {
            let now = d.workers();
            (now.len() == 1 && now[0] != before[0] && !is_running(before[0])).then_some(())
        });
        self.wait_loops("reads after the worker was killed");

        d.upgrade();
        self.wait_loops("reads after the live upgrade");

        fs::write(self.dir().join("stop"), "").expect("tell the loop to stop");
        let status = wait_deadline(&mut container, DEADLINE)
            .unwrap_or_else(|| panic!("{runtime}: the container did not stop"));
        let output = dump(&mut container);
        assert!(status.success(), "{runtime}: {status}: {output}");
        let tally = fs::read_to_string(self.dir().join("tally"))
            .unwrap_or_else(|e| panic!("{runtime}: no tally ({e}): {output}"));
        let errors = fs::read_to_string(self.dir().join("errors")).unwrap_or_default();
        let (reads, failed) = tally
            .trim()
            .strip_prefix("reads=")
            .and_then(|r| r.split_once(" failed="))
            .unwrap_or_else(|| panic!("{runtime}: a tally without counts: {tally}"));
        let loops: u64 = reads.parse().expect("the loop count");
        eprintln!(
            "{runtime}: {loops} loops of {} reads each through a worker SIGKILL and a SIGUSR1 \
             upgrade, {failed} failed",
            self.files + 1
        );
        assert_eq!(
            failed,
            "0",
            "{runtime}: failed reads:\n{errors}\n--- daemon\n{}",
            d.log_text()
        );
        assert!(loops >= 3 * LOOPS_PER_STEP, "{runtime}: {tally}");
        let log = d.log_text();
        assert!(log.contains("SIGKILL"), "{log}");
        assert!(log.contains("SIGUSR1"), "{log}");
        loops
    }
}
