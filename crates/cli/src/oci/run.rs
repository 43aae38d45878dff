//! `jaula-oci run`: create + start; in the foreground, exit with the container's code.

use std::path::PathBuf;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Return once the container is started instead of waiting for it.
    #[arg(long, short = 'd')]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    pub id: String,
}

pub fn run(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    let c = super::create::Args {
        bundle: a.bundle,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        preserve_fds: a.preserve_fds,
        no_new_keyring: a.no_new_keyring,
        no_pivot: a.no_pivot,
        id: a.id.clone(),
    };
    Ok(rt.run(&a.id, super::create::options(&c)?, a.detach)?)
}
