//! `jaula __supervise NAME`: the per-server supervisor `start` spawns (not for users).

use std::fs::File;
use std::os::fd::AsFd;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub name: String,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    // The report goes to our stdout, the pipe `start` reads; the supervisor then points
    // fd 1 at /dev/null, and dropping this copy closes the pipe.
    let report = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let exit = ctx.manager.supervise(&a.name, report)?;
    Ok(exit.code.map_or(0, super::exec::exit_byte))
}
