//! `jaula-oci create`.

use std::path::PathBuf;

use anyhow::Result;

/// Flags shared by `create` and `run`.
#[derive(Debug, clap::Args)]
pub struct Flags {
    /// Bundle directory (holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the init's pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (terminal: true).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Pass this many fds after stdio (3, 4, ...) into the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility: jaula never creates session keyrings.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Refused: jaula always uses pivot_root, never chroot.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: Flags,
    pub id: String,
}

pub fn options(a: &Flags) -> Result<jaula_runtime::CreateOptions> {
    if a.no_pivot {
        anyhow::bail!(
            "--no-pivot is refused: jaula always uses pivot_root, because chroot can be escaped"
        );
    }
    let listen = super::listen_fds();
    Ok(jaula_runtime::CreateOptions {
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.as_ref().map(|p| absolute(p)),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds + listen,
        listen_fds: listen,
        ..Default::default()
    })
}

/// runc resolves the pid file against the caller's cwd.
fn absolute(p: &std::path::Path) -> PathBuf {
    std::env::current_dir()
        .map(|d| d.join(p))
        .unwrap_or_else(|_| p.to_owned())
}

pub fn run(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    rt.create(&a.id, options(&a.flags)?)?;
    Ok(0)
}
