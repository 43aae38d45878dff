//! `jaula-oci features`.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_: Args) -> Result<i32> {
    println!(
        "{}",
        serde_json::to_string_pretty(&jaula_runtime::features())?
    );
    Ok(0)
}
