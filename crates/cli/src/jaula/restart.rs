//! `jaula restart NAME... [--timeout S]`.

use std::time::Duration;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Seconds to wait after the shutdown signal before SIGKILL.
    #[arg(long, short = 't')]
    pub timeout: Option<u64>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let opts = ctx.start_options()?;
    let m = &ctx.manager;
    let mut failed = false;
    for name in &a.names {
        let result = m
            .stop(name, a.timeout.map(Duration::from_secs))
            .and_then(|_| m.start(name, &opts));
        if let Err(e) = result {
            eprintln!("jaula: cannot restart {name}: {:#}", anyhow::Error::from(e));
            failed = true;
        }
    }
    Ok(u8::from(failed))
}
