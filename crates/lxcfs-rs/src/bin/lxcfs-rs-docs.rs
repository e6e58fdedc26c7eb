//! `lxcfs-rs-docs OUTDIR`: writes the man pages and shell completions the Debian package
//! ships, from the same clap definitions the daemon parses, so they never drift from
//! `--help`. Built only with the `docs` feature; `scripts/deb` runs it before packaging.

// The command lines, read from their own files (the daemon is a binary, with no library
// to import). Only their clap definitions are used here.
#[allow(dead_code)]
#[path = "../agent/args.rs"]
mod agent;
#[allow(dead_code)]
#[path = "../cdi/args.rs"]
mod cdi;
#[allow(dead_code)]
#[path = "../check/args.rs"]
mod check;
#[allow(dead_code)]
#[path = "../cli.rs"]
mod cli;
#[allow(dead_code)]
#[path = "../device_plugin/args.rs"]
mod device_plugin;
#[allow(dead_code)]
#[path = "../node/args.rs"]
mod node;
#[allow(dead_code)]
#[path = "../nri/args.rs"]
mod nri;
#[allow(dead_code)]
#[path = "../seccomp_profile/args.rs"]
mod seccomp_profile;
#[allow(dead_code)]
#[path = "../status/args.rs"]
mod status;

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: lxcfs-rs-docs OUTDIR")?;
    let man = out.join("man");
    let completions = out.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let cmd = cli::Cli::command();
    write_man(&cmd, &man.join("lxcfs-rs.1"))?;
    // `check` has a command line of its own (main.rs dispatches on its name).
    let check = check::Args::command()
        .name("lxcfs-rs-check")
        .bin_name("lxcfs-rs check");
    write_man(&check, &man.join("lxcfs-rs-check.1"))?;
    let status = status::Args::command()
        .name("lxcfs-rs-status")
        .bin_name("lxcfs-rs status");
    write_man(&status, &man.join("lxcfs-rs-status.1"))?;
    let cdi = cdi::Args::command()
        .name("lxcfs-rs-cdi")
        .bin_name("lxcfs-rs cdi");
    write_man(&cdi, &man.join("lxcfs-rs-cdi.1"))?;
    let node = node::Args::command()
        .name("lxcfs-rs-node")
        .bin_name("lxcfs-rs node");
    // One page per subcommand too (lxcfs-rs-node-install.1, ...), which its page names.
    clap_mangen::generate_to(node, &man).context("cannot write the node pages")?;
    let nri = nri::Args::command()
        .name("lxcfs-rs-nri")
        .bin_name("lxcfs-rs nri");
    write_man(&nri, &man.join("lxcfs-rs-nri.1"))?;
    let dp = device_plugin::Args::command()
        .name("lxcfs-rs-device-plugin")
        .bin_name("lxcfs-rs device-plugin");
    write_man(&dp, &man.join("lxcfs-rs-device-plugin.1"))?;
    let agent = agent::Args::command()
        .name("lxcfs-rs-seccomp-agent")
        .bin_name("lxcfs-rs seccomp-agent");
    write_man(&agent, &man.join("lxcfs-rs-seccomp-agent.1"))?;
    let profile = seccomp_profile::Args::command()
        .name("lxcfs-rs-seccomp-profile")
        .bin_name("lxcfs-rs seccomp-profile");
    write_man(&profile, &man.join("lxcfs-rs-seccomp-profile.1"))?;
    // Completions know `check`, `cdi`, `device-plugin`, `node`, `nri`, `status`, `seccomp-agent` and
    // `seccomp-profile` as subcommands; the daemon's own parser never sees them (main.rs
    // dispatches on the first argument), so this shape exists
    // only here.
    let mut cmd = cmd
        .subcommand(check::Args::command().name("check"))
        .subcommand(cdi::Args::command().name("cdi"))
        .subcommand(device_plugin::Args::command().name("device-plugin"))
        .subcommand(node::Args::command().name("node"))
        .subcommand(nri::Args::command().name("nri"))
        .subcommand(status::Args::command().name("status"))
        .subcommand(agent::Args::command().name("seccomp-agent"))
        .subcommand(seccomp_profile::Args::command().name("seccomp-profile"))
        .args_conflicts_with_subcommands(true)
        .subcommand_negates_reqs(true)
        .disable_help_subcommand(true);
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "lxcfs-rs", &completions)
            .with_context(|| format!("cannot write the {shell} completion"))?;
    }
    Ok(())
}

fn write_man(cmd: &clap::Command, path: &Path) -> Result<()> {
    let mut f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    clap_mangen::Man::new(cmd.clone())
        .render(&mut f)
        .with_context(|| format!("cannot write {}", path.display()))
}
