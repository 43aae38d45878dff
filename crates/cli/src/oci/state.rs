//! `jaula-oci state`: the spec's state JSON.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    let st = rt.state(&a.id)?;
    println!("{}", serde_json::to_string_pretty(&st)?);
    Ok(0)
}
