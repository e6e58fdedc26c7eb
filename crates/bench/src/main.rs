//! lxcfs-bench: how fast the virtual files of lxcfs-rs are, next to LXCFS and to the
//! kernel's own files, read from inside a container. See `docs/performance.md`.
//!
//! - `read` is the load: a tight open + read-to-EOF + close loop on one file at a time,
//!   in N threads; it prints ops/s and latency percentiles. It is what runs inside the
//!   container.
//! - `compare` is the orchestrator (root): it mounts lxcfs-rs and LXCFS side by side,
//!   makes a container (v1 cgroup with limits, new pid + mount namespace, files
//!   bind-mounted as a runtime does), runs `read` in it against each source, interleaved,
//!   and prints the tables. It also measures daemon CPU per read and RSS after serving
//!   many short-lived containers, and cleans everything up, on errors and Ctrl-C too.
//! - `soak` is the fleet-scale run: hundreds of containers polling like `top` for
//!   minutes while the lxcfs-rs worker is killed every minute, then the same for LXCFS.
//! - `agent`, `spawn` and `once` are internal: the container's init, the launcher of
//!   short-lived containers, and what each of those runs; `floor-server` is the FUSE
//!   server that does no work, whose cost `soak --floor` measures.

mod compare;
mod container;
mod daemons;
mod floor;
mod read;
mod report;
mod soak;
mod sys;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "lxcfs-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Read files in a tight open+read+close loop; print ops/s and p50/p99 latency per file.
    Read(read::ReadArgs),
    /// Mount lxcfs-rs and LXCFS side by side and compare them from inside a container (root).
    Compare(Box<compare::CompareArgs>),
    /// Many containers polling like `top` for minutes, lxcfs-rs's worker killed every
    /// minute, then the same against LXCFS: failed and wrong reads, latency, CPU, RSS.
    Soak(soak::SoakArgs),
    /// Internal: init of the benchmark container (pid 1 of a new pid + mount namespace).
    #[command(hide = true)]
    Agent(container::AgentArgs),
    /// Internal: start many short-lived containers, a few at a time.
    #[command(hide = true)]
    Spawn(container::SpawnArgs),
    /// Internal: read files once (the whole life of a short-lived container).
    #[command(hide = true)]
    Once(container::OnceArgs),
    /// Internal: a FUSE server that does no work (`soak --floor`).
    #[command(hide = true)]
    FloorServer(floor::FloorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.cmd {
        Cmd::Read(a) => read::run(a),
        Cmd::Compare(a) => compare::run(a),
        Cmd::Soak(a) => soak::run(a),
        Cmd::Agent(a) => container::agent(a),
        Cmd::Spawn(a) => container::spawn(a),
        Cmd::Once(a) => container::once(a),
        Cmd::FloorServer(a) => floor::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lxcfs-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
