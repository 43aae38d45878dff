//! `jaula-oci start`.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    rt.start(&a.id)?;
    Ok(0)
}
