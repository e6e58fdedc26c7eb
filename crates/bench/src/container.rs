//! The benchmark container and the short-lived ones.
//!
//! The container is what a runtime makes: a process joins the cgroup, then
//! `unshare -p -f -m --propagation private` starts `lxcfs-bench agent` as pid 1 of a new pid
//! and mount namespace. The agent mounts a fresh `/proc`, a tmpfs, and on it bind-mounts
//! every file under test (each daemon's and the kernel's own), so that every source is
//! opened the same way: through a bind mount, as `/proc/meminfo` is in a real container.
//! It then runs requests from its stdin, one line each, and answers on stdout:
//!
//! - `read<TAB>args...`: runs `lxcfs-bench read args... --format tsv` as its child (so the
//!   readers are inside the container) and copies its output;
//! - `cat<TAB>path`: prints the file;
//! - `soak<TAB>seconds<TAB>memtotal<TAB>dir<TAB>offset_ms<TAB>files`: polls like `top` and reports
//!   (see `soak`).
//!
//! Every answer ends with a line `--end-- <exit code>`. The agent exits at EOF.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustix::mount::{MountFlags, mount, mount_bind};

use crate::read::{BUF_SIZE, read_once};
use crate::sys::{Cgroup, Interrupt, reap};

const END: &str = "--end--";

#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// Where to mount the tmpfs holding the bind mounts.
    #[arg(long)]
    dir: PathBuf,
    /// `TARGET=SOURCE`: bind-mount SOURCE on DIR/TARGET (after /proc is remounted).
    #[arg(long = "bind")]
    binds: Vec<String>,
}

pub fn agent(args: &AgentArgs) -> Result<()> {
    if rustix::process::getpid() != rustix::process::Pid::INIT {
        bail!("the agent must be pid 1 of a new pid namespace (under unshare -p -f)");
    }
    let none: Option<&std::ffi::CStr> = None;
    let quiet = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    mount("proc", "/proc", "proc", quiet, none).context("cannot mount /proc")?;
    mount(
        "lxcfs-bench",
        &args.dir,
        "tmpfs",
        quiet,
        c"mode=0755,size=1m",
    )
    .with_context(|| format!("cannot mount a tmpfs on {}", args.dir.display()))?;
    for b in &args.binds {
        let (target, source) = b
            .split_once('=')
            .with_context(|| format!("--bind {b:?}: want TARGET=SOURCE"))?;
        let target = args.dir.join(target);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::File::create(&target)?;
        mount_bind(source, &target)
            .with_context(|| format!("cannot bind {source} on {}", target.display()))?;
    }

    let exe = std::env::current_exe().context("cannot find my own executable")?;
    let mut out = io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for line in io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split('\t');
        let code = match words.next() {
            Some("read") => {
                let child = Command::new(&exe)
                    .arg("read")
                    .args(words)
                    .args(["--format", "tsv"])
                    .stdin(Stdio::null())
                    .stderr(Stdio::inherit())
                    .output()
                    .context("cannot run lxcfs-bench read")?;
                out.write_all(&child.stdout)?;
                child.status.code().unwrap_or(-1)
            }
            Some("soak") => {
                let rest: Vec<&str> = words.collect();
                crate::soak::poll_in_container(&rest, &mut out)?
            }
            Some("cat") => match words.next().map(fs::read_to_string) {
                Some(Ok(text)) => {
                    out.write_all(text.as_bytes())?;
                    if !text.ends_with('\n') {
                        writeln!(out)?;
                    }
                    0
                }
                Some(Err(e)) => {
                    eprintln!("lxcfs-bench agent: {line}: {e}");
                    1
                }
                None => 2,
            },
            Some("") | None => continue,
            Some(other) => {
                eprintln!("lxcfs-bench agent: unknown request {other:?}");
                2
            }
        };
        writeln!(out, "{END} {code}")?;
        out.flush()?;
    }
    Ok(())
}

/// The orchestrator's handle on the running container.
pub struct Container {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Container {
    /// Start the container in `cg`; `binds` are `(target under dir, source)`.
    pub fn start(
        exe: &Path,
        cg: &Cgroup,
        dir: &Path,
        binds: &[(String, PathBuf)],
        intr: &Interrupt,
    ) -> Result<Container> {
        let mut cmd = cg.command(Path::new("unshare"));
        cmd.args([
            "-p",
            "-f",
            "-m",
            "--propagation",
            "private",
            "--kill-child",
            "--",
        ])
        .arg(exe)
        .arg("agent")
        .arg("--dir")
        .arg(dir);
        for (target, source) in binds {
            cmd.arg("--bind")
                .arg(format!("{target}={}", source.display()));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the container (sh + unshare)")?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .context("no stdout from the container")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut c = Container {
            child,
            stdin,
            lines,
        };
        let first = c.next_line(Duration::from_secs(30), intr)?;
        if first != "ready" {
            bail!("the container did not start: {first:?}");
        }
        Ok(c)
    }

    fn next_line(&mut self, timeout: Duration, intr: &Interrupt) -> Result<String> {
        let start = Instant::now();
        loop {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => return Ok(l),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let st = self.child.try_wait().ok().flatten();
                    bail!(
                        "the container exited ({})",
                        st.map_or_else(|| "still running".to_string(), |s| s.to_string())
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            intr.check()?;
            if start.elapsed() > timeout {
                bail!("the container did not answer within {timeout:?} (a hung FUSE request?)");
            }
        }
    }

    /// Send one request; return its output lines and exit code.
    pub fn request(
        &mut self,
        words: &[String],
        timeout: Duration,
        intr: &Interrupt,
    ) -> Result<(Vec<String>, i32)> {
        self.send(words)?;
        self.answer(timeout, intr)
    }

    /// Send one request without waiting for its answer (to run two containers at once).
    pub fn send(&mut self, words: &[String]) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .context("the container's stdin is closed")?;
        writeln!(stdin, "{}", words.join("\t"))?;
        stdin.flush()?;
        Ok(())
    }

    /// The output lines and exit code of the request sent last.
    pub fn answer(&mut self, timeout: Duration, intr: &Interrupt) -> Result<(Vec<String>, i32)> {
        let mut lines = Vec::new();
        loop {
            let l = self.next_line(timeout, intr)?;
            if let Some(code) = l.strip_prefix(END) {
                let code = code.trim().parse().unwrap_or(-1);
                return Ok((lines, code));
            }
            lines.push(l);
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // EOF lets the agent exit; killing unshare kills it too (--kill-child), and with
        // pid 1 the whole namespace goes.
        drop(self.stdin.take());
        let _ = self.child.kill();
        reap(&mut self.child, Duration::from_secs(10));
    }
}

// ---------------------------------------------------------------------------------------
// Many short-lived containers

#[derive(clap::Args, Debug)]
pub struct SpawnArgs {
    /// How many containers (pid namespaces) to start in all.
    #[arg(long)]
    count: usize,
    /// How many run at the same time.
    #[arg(long)]
    parallel: usize,
    /// Files each container reads once.
    #[arg(long = "file", value_delimiter = ',', required = true)]
    files: Vec<PathBuf>,
}

/// Runs in the benchmark's cgroup, in the host's pid namespace: each container is
/// `unshare -p -f lxcfs-bench once --file ...`, whose reader is pid 1 of a new pid
/// namespace. Prints `count<TAB>failures<TAB>seconds`.
pub fn spawn(args: &SpawnArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find my own executable")?;
    let files = args
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let parallel = args.parallel.max(1);
    let mut running: Vec<Child> = Vec::with_capacity(parallel);
    let (mut started, mut failures) = (0usize, 0usize);
    let start = Instant::now();
    while started < args.count || !running.is_empty() {
        while started < args.count && running.len() < parallel {
            let child = Command::new("unshare")
                .args(["-p", "-f", "--"])
                .arg(&exe)
                .args(["once", "--file", &files])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot run unshare")?;
            running.push(child);
            started += 1;
        }
        let before = running.len();
        let mut i = 0;
        while i < running.len() {
            match running[i].try_wait()? {
                Some(st) => {
                    if !st.success() {
                        failures += 1;
                    }
                    // Already reaped: this only returns the status again.
                    let _ = running.swap_remove(i).wait();
                }
                None => i += 1,
            }
        }
        if running.len() == before {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    println!(
        "{}\t{failures}\t{:.3}",
        args.count,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct OnceArgs {
    #[arg(long = "file", value_delimiter = ',', required = true)]
    files: Vec<PathBuf>,
}

/// Read each file once; fail on an error or an empty file.
pub fn once(args: &OnceArgs) -> Result<()> {
    let mut buf = vec![0u8; BUF_SIZE];
    for f in &args.files {
        let n = read_once(f, &mut buf).with_context(|| format!("cannot read {}", f.display()))?;
        if n == 0 {
            bail!("{} is empty", f.display());
        }
    }
    Ok(())
}

/// Run `cmd` (already set up to join the cgroup), wait for it with interrupts honoured,
/// return its stdout.
pub fn run_in_cgroup(mut cmd: Command, timeout: Duration, intr: &Interrupt) -> Result<String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start a command in the cgroup")?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if let Err(e) = intr.check() {
            let _ = child.kill();
            reap(&mut child, Duration::from_secs(5));
            return Err(e);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            reap(&mut child, Duration::from_secs(5));
            bail!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(out)
}
