//! `jaula-oci spec`: write a hardened default config.json.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write config.json.
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Map the caller's uid/gid to root in a user namespace.
    #[arg(long)]
    pub rootless: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("{} exists; remove it first", path.display());
    }
    let spec = jaula_runtime::default_spec(a.rootless);
    std::fs::write(&path, serde_json::to_vec_pretty(&spec)?)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}
