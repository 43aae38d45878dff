//! `jaula start NAME...|--all [--mark M]`.

use anyhow::bail;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Servers to start.
    pub names: Vec<String>,
    /// Start every server carrying the mark (default autostart), in context order.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// The mark --all selects.
    #[arg(long, requires = "all", default_value = "autostart")]
    pub mark: String,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let opts = ctx.start_options()?;
    let m = &ctx.manager;
    if !a.all {
        if a.names.is_empty() {
            bail!("name the servers to start, or use --all");
        }
        let mut failed = false;
        for name in &a.names {
            if let Err(e) = m.start(name, &opts) {
                eprintln!("jaula: cannot start {name}: {:#}", anyhow::Error::from(e));
                failed = true;
            }
        }
        return Ok(u8::from(failed));
    }
    let mut failed = false;
    for s in m
        .home
        .servers()?
        .iter()
        .filter(|s| s.config.has_mark(&a.mark))
    {
        if m.state(&s.name)? == jaula_server::RunState::Running {
            continue;
        }
        match m.start(&s.name, &opts) {
            Ok(()) => println!("started {}", s.name),
            Err(e) => {
                eprintln!(
                    "jaula: cannot start {}: {:#}",
                    s.name,
                    anyhow::Error::from(e)
                );
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}
