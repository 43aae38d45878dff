//! `jaula exec NAME [-u USER] [-w DIR] [-e K=V] [-t] -- CMD...`: the command's exit code is
//! ours.

use std::path::PathBuf;

use anyhow::ensure;
use jaula_server::run::ExecRequest;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub name: String,
    /// A user name or uid of the server's /etc/passwd.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Working directory inside the server.
    #[arg(long, short = 'w')]
    pub workdir: Option<PathBuf>,
    /// An environment variable, K=V (repeatable).
    #[arg(long = "env", short = 'e')]
    pub env: Vec<String>,
    /// Allocate a pseudo-terminal.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    for e in &a.env {
        ensure!(
            e.contains('=') && !e.starts_with('='),
            "invalid --env {e:?}: expected K=V"
        );
    }
    let mut env = a.env;
    if a.tty {
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
        env.insert(0, format!("TERM={term}"));
    }
    let req = ExecRequest {
        args: a.command,
        user: a.user,
        cwd: a.workdir,
        env,
        tty: a.tty,
        size: None,
    };
    let code = ctx.manager.exec(&a.name, &req)?;
    Ok(exit_byte(code))
}

/// An exit status as a process exit code (a signal death is 128 + signal, as shells do).
pub fn exit_byte(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(if code < 0 { 255 } else { (code & 0xff) as u8 })
}
