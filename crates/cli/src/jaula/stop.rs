//! `jaula stop NAME...|--all [--timeout S]`.

use std::time::Duration;

use anyhow::bail;
use jaula_server::run::StopOutcome;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Servers to stop.
    pub names: Vec<String>,
    /// Stop every running server, highest context first.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// Seconds to wait after the shutdown signal before SIGKILL.
    #[arg(long, short = 't')]
    pub timeout: Option<u64>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let m = &ctx.manager;
    let names: Vec<String> = if a.all {
        let mut running = Vec::new();
        for s in m.home.servers()?.into_iter().rev() {
            if m.state(&s.name)? != jaula_server::RunState::Stopped {
                running.push(s.name);
            }
        }
        running
    } else if a.names.is_empty() {
        bail!("name the servers to stop, or use --all");
    } else {
        a.names
    };
    let timeout = a.timeout.map(Duration::from_secs);
    let mut failed = false;
    for name in &names {
        match m.stop(name, timeout) {
            Ok(StopOutcome::Stopped) => {}
            Ok(StopOutcome::Killed) => eprintln!("jaula: {name} did not stop in time; killed"),
            Ok(StopOutcome::NotRunning) => eprintln!("jaula: {name} is not running"),
            Err(e) => {
                eprintln!("jaula: cannot stop {name}: {:#}", anyhow::Error::from(e));
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}
