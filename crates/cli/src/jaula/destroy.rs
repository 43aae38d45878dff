//! `jaula destroy NAME [--yes] [--force]`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;
use jaula_server::run::IfRunning;
use jaula_server::HomeError;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub name: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Stop the server first if it runs.
    #[arg(long, short = 'f')]
    pub force: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    // A broken server.toml must not keep a server from being destroyed.
    match ctx.manager.home.open(&a.name) {
        Ok(_) | Err(HomeError::Config(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let dir = ctx.manager.home.server_dir(&a.name);
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "refusing to destroy {} without --yes (standard input is not a terminal)",
                a.name
            );
        }
        eprint!(
            "destroy server {} and delete {}? [y/N] ",
            a.name,
            dir.display()
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("jaula: {} kept", a.name);
            return Ok(1);
        }
    }
    let if_running = if a.force {
        IfRunning::Stop
    } else {
        IfRunning::Refuse
    };
    ctx.manager.destroy(&a.name, if_running)?;
    println!("destroyed {}", a.name);
    Ok(0)
}
