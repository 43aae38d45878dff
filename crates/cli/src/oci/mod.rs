//! `jaula-oci`: runc's command line over the jaula engine. One file per verb.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use crate::LogFormat;

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

#[derive(Debug, Parser)]
#[command(
    name = "jaula-oci",
    version,
    about = "OCI runtime (runc command line) backed by jaula"
)]
pub struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/jaula")]
    pub root: PathBuf,
    /// Write log lines to this file instead of stderr.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use the systemd cgroup driver (not built yet: refused).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Write a hardened default config.json.
    Spec(spec::Args),
    /// Create a container from a bundle; it waits for `start`.
    Create(create::Args),
    /// Start a created container.
    Start(start::Args),
    /// Print a container's state as JSON.
    State(state::Args),
    /// Send a signal to a container's init (or all its processes).
    Kill(kill::Args),
    /// Delete a container.
    Delete(delete::Args),
    /// Create and start a container.
    Run(run::Args),
    /// List containers.
    List(list::Args),
    /// Print the runtime's features as JSON.
    Features(features::Args),
    /// Run a process in a running container.
    Exec(exec::Args),
    /// List a container's processes.
    Ps(ps::Args),
    /// Freeze every process of a container.
    Pause(pause::Args),
    /// Thaw a paused container.
    Resume(pause::Args),
    /// Change a running container's resource limits.
    Update(update::Args),
    /// Print resource statistics and OOM events.
    Events(events::Args),
}

/// Runs the command; returns the process exit code.
pub fn main(cli: Cli) -> Result<i32> {
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup: the systemd cgroup driver is not built into jaula; use the cgroupfs driver (omit the flag)");
    }
    let rt = jaula_runtime::Runtime::new(&cli.root);
    match cli.cmd {
        Cmd::Spec(a) => spec::run(a),
        Cmd::Create(a) => create::run(&rt, a),
        Cmd::Start(a) => start::run(&rt, a),
        Cmd::State(a) => state::run(&rt, a),
        Cmd::Kill(a) => kill::run(&rt, a),
        Cmd::Delete(a) => delete::run(&rt, a),
        Cmd::Run(a) => run::run(&rt, a),
        Cmd::List(a) => list::run(&rt, a),
        Cmd::Features(a) => features::run(a),
        Cmd::Exec(a) => exec::run(&rt, a),
        Cmd::Ps(a) => ps::run(&rt, a),
        Cmd::Pause(a) => pause::pause(&rt, a),
        Cmd::Resume(a) => pause::resume(&rt, a),
        Cmd::Update(a) => update::run(&rt, a),
        Cmd::Events(a) => events::run(&rt, a),
    }
}

/// Count of `LISTEN_FDS` passed to us by socket activation (fds 3..3+N).
pub(crate) fn listen_fds() -> u32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if ours || std::env::var_os("LISTEN_PID").is_none() {
        n
    } else {
        0
    }
}
