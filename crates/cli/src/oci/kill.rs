//! `jaula-oci kill ID [SIGNAL]`.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Signal every process of the container, not only its init.
    #[arg(long, short = 'a')]
    pub all: bool,
    pub id: String,
    /// Name (TERM, SIGTERM) or number; default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn run(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    let sig = jaula_runtime::parse_signal(&a.signal)?;
    rt.kill(&a.id, sig, a.all)?;
    Ok(0)
}
