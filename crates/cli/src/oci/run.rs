//! `jaula-oci run`: create + start; in the foreground, exit with the container's code.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: super::create::Flags,
    /// Return once the container is started instead of waiting for it.
    #[arg(long, short = 'd')]
    pub detach: bool,
    pub id: String,
}

pub fn run(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    Ok(rt.run(&a.id, super::create::options(&a.flags)?, a.detach)?)
}
