//! `jaula enter NAME [-u USER]`: the user's login shell, on a pty.

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub name: String,
    /// A user of the server's /etc/passwd (default root).
    #[arg(long, short = 'u')]
    pub user: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
    let code = ctx.manager.enter(
        &a.name,
        a.user.as_deref(),
        vec![format!("TERM={term}")],
        None,
    )?;
    Ok(super::exec::exit_byte(code))
}
