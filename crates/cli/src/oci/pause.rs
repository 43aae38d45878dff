//! `jaula-oci pause` and `resume`.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn pause(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    rt.pause(&a.id)?;
    Ok(0)
}

pub fn resume(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    rt.resume(&a.id)?;
    Ok(0)
}
