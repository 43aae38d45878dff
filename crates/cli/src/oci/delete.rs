//! `jaula-oci delete [--force] ID`.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also delete a running container (it is killed first).
    #[arg(long, short = 'f')]
    pub force: bool,
    pub id: String,
}

pub fn run(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    rt.delete(&a.id, a.force)?;
    Ok(0)
}
