//! `jaula status NAME`: prints the state; exits 0 when running, 3 when stopped.

use jaula_server::run::ExitRecord;
use jaula_server::RunState;

use super::{Ctx, EXIT_STOPPED};

#[derive(Debug, clap::Args)]
pub struct Args {
    pub name: String,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let m = &ctx.manager;
    let server = m.home.open(&a.name)?;
    let state = m.state(&a.name)?;
    match state {
        RunState::Running => {
            let pid = m
                .init_pid(&a.name)
                .map(|p| format!(" (init pid {p})"))
                .unwrap_or_default();
            println!("{} is running{pid}", a.name);
            Ok(0)
        }
        RunState::Stopped => {
            let last = ExitRecord::load(&server).map(|r| match (r.code, r.signal) {
                (Some(c), _) => format!(" (last exit code {c})"),
                (None, Some(s)) => format!(" (last killed by {})", jaula_server::signal::name(s)),
                _ => String::new(),
            });
            println!("{} is stopped{}", a.name, last.unwrap_or_default());
            Ok(EXIT_STOPPED)
        }
        other => {
            println!("{} is {}", a.name, other.as_str());
            Ok(EXIT_STOPPED)
        }
    }
}
