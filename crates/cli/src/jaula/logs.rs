//! `jaula logs NAME [-f]`.

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub name: String,
    /// Keep printing what the server writes.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let server = ctx.manager.home.open(&a.name)?;
    let mut out = std::io::stdout().lock();
    if a.follow {
        // Until interrupted (SIGINT's default action ends us) or the output goes away.
        jaula_server::logs::follow(&server, &mut out, &|| true)?;
    } else {
        jaula_server::logs::copy_all(&server, &mut out)?;
    }
    Ok(0)
}
