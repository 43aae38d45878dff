//! `jaula kill NAME [-s SIG] [PID]`: without PID every process of the server (vkill).

use anyhow::Context;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub name: String,
    /// Signal name or number (default TERM).
    #[arg(long, short = 's', default_value = "TERM")]
    pub signal: String,
    /// A process of the server: its pid inside the server (ps's VPID) or on the host.
    pub pid: Option<i32>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let sig = jaula_server::signal::parse(&a.signal)
        .with_context(|| format!("unknown signal {:?}", a.signal))?;
    ctx.manager.kill(&a.name, sig, a.pid)?;
    Ok(0)
}
