//! `jaula`: the virtual-server administration front end (util-vserver's `vserver`,
//! `vserver-stat`, `vps` and `vkill` in one command). Each verb is a thin clap front end in
//! `src/jaula/` over `jaula_server`.

#[path = "../jaula/mod.rs"]
mod verbs;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Build, run, enter and watch virtual servers.
#[derive(Debug, Parser)]
#[command(name = "jaula", version)]
struct Cli {
    /// Directory of server definitions (server.toml + rootfs/ per server). Default:
    /// $JAULA_HOME, else /var/lib/jaula.
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    /// State directory shared with jaula-oci.
    #[arg(long, global = true, default_value = "/run/jaula")]
    root: PathBuf,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Build a new server from a method.
    Build(Box<verbs::build::Args>),
    /// Start servers.
    Start(verbs::start::Args),
    /// Stop servers: the init's shutdown signal, then SIGKILL after the timeout.
    Stop(verbs::stop::Args),
    /// Stop, then start servers.
    Restart(verbs::restart::Args),
    /// Exit 0 if the server runs, 3 if it is stopped.
    Status(verbs::status::Args),
    /// Open a login shell in a server.
    Enter(verbs::enter::Args),
    /// Run a command in a server; its exit code becomes ours.
    Exec(verbs::exec::Args),
    /// Remove a server and its files.
    Destroy(verbs::destroy::Args),
    /// Show a server's console output.
    Logs(verbs::logs::Args),
    /// One row per context (vserver-stat).
    List(verbs::list::Args),
    /// Every process with its context (vps).
    Ps(verbs::ps::Args),
    /// Send a signal to a server's processes (vkill).
    Kill(verbs::kill::Args),
    /// (internal) The per-server supervisor that `start` spawns.
    #[command(name = "__supervise", hide = true)]
    Supervise(verbs::supervise::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Usage errors get one line, like every other error; --help and --version print
        // their text as usual.
        Err(e) if e.use_stderr() => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid usage");
            eprintln!("jaula: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    let home = cli
        .home
        .or_else(|| {
            std::env::var_os("JAULA_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(jaula_server::home::DEFAULT_HOME));
    let ctx = verbs::Ctx::new(home, cli.root);
    let result = match cli.verb {
        Verb::Build(a) => verbs::build::run(&ctx, *a),
        Verb::Start(a) => verbs::start::run(&ctx, a),
        Verb::Stop(a) => verbs::stop::run(&ctx, a),
        Verb::Restart(a) => verbs::restart::run(&ctx, a),
        Verb::Status(a) => verbs::status::run(&ctx, a),
        Verb::Enter(a) => verbs::enter::run(&ctx, a),
        Verb::Exec(a) => verbs::exec::run(&ctx, a),
        Verb::Destroy(a) => verbs::destroy::run(&ctx, a),
        Verb::Logs(a) => verbs::logs::run(&ctx, a),
        Verb::List(a) => verbs::list::run(&ctx, a),
        Verb::Ps(a) => verbs::ps::run(&ctx, a),
        Verb::Kill(a) => verbs::kill::run(&ctx, a),
        Verb::Supervise(a) => verbs::supervise::run(&ctx, a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("jaula: {e:#}");
            ExitCode::FAILURE
        }
    }
}
