//! `jaula build NAME --method M [options]`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use jaula_server::build::{self, BuildOptions, BuildRequest, Cancel, DebootstrapOptions, Method};
use jaula_server::config::{Cidr, InitStyle, NetMode};
use jaula_server::units::{ByteSize, Cpus};
use nix::sys::signal::{SigSet, Signal};

use super::progress::TermProgress;
use super::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodName {
    Host,
    Busybox,
    Debootstrap,
    Dir,
    Tar,
    Clone,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The new server's name ([a-z0-9][a-z0-9_.-]*).
    pub name: String,
    #[arg(long, short = 'm')]
    pub method: MethodName,
    /// dir: the directory; tar: the archive; clone: the server to copy.
    #[arg(long)]
    pub source: Option<String>,
    /// debootstrap: the suite (bookworm, trixie, ...).
    #[arg(long)]
    pub suite: Option<String>,
    /// debootstrap: the mirror (default: the host's Debian mirror from apt's sources).
    #[arg(long)]
    pub mirror: Option<String>,
    /// debootstrap: the variant (minbase, buildd, ...).
    #[arg(long)]
    pub variant: Option<String>,
    /// debootstrap: extra packages (comma-separated, repeatable).
    #[arg(long, value_delimiter = ',')]
    pub include: Vec<String>,
    /// busybox: the static busybox to install.
    #[arg(long, default_value = "/bin/busybox")]
    pub busybox: PathBuf,
    #[arg(long)]
    pub hostname: Option<String>,
    /// An address, ADDR or ADDR/PREFIX (repeatable).
    #[arg(long = "ip", value_parser = parse_cidr)]
    pub ips: Vec<Cidr>,
    /// isolated, veth, none or host (default: isolated with addresses, none without).
    #[arg(long, value_parser = parse_net)]
    pub net: Option<NetMode>,
    /// veth: HOSTPORT:PORT[/tcp|/udp] (repeatable).
    #[arg(long)]
    pub publish: Vec<String>,
    /// Memory limit, e.g. 512M.
    #[arg(long, value_parser = parse_size)]
    pub memory: Option<ByteSize>,
    /// CPU limit, e.g. 1.5.
    #[arg(long, value_parser = parse_cpus)]
    pub cpus: Option<Cpus>,
    /// Process limit.
    #[arg(long)]
    pub pids: Option<u64>,
    /// init (the distribution's), minimal (jaula's reaper + rc.local) or command.
    #[arg(long, value_parser = parse_init)]
    pub init: Option<InitStyle>,
    /// The command of --init command (or the init program of --init init), shell-quoted.
    #[arg(long)]
    pub command: Option<String>,
    /// minimal: a service command line to start at boot (repeatable).
    #[arg(long = "service")]
    pub services: Vec<String>,
    /// A mark, e.g. autostart (repeatable).
    #[arg(long = "mark")]
    pub marks: Vec<String>,
    /// A fixed context id instead of the next free one from 40000.
    #[arg(long)]
    pub context: Option<u32>,
    /// Run without a user namespace (the server's root is the host's root).
    #[arg(long)]
    pub privileged: bool,
    /// The command, as separate words after `--` (instead of --command).
    #[arg(last = true)]
    pub args: Vec<String>,
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    s.parse()
}
fn parse_net(s: &str) -> Result<NetMode, String> {
    s.parse()
}
fn parse_init(s: &str) -> Result<InitStyle, String> {
    s.parse()
}
fn parse_size(s: &str) -> Result<ByteSize, String> {
    s.parse()
        .map_err(|e: jaula_server::units::UnitError| e.to_string())
}
fn parse_cpus(s: &str) -> Result<Cpus, String> {
    s.parse()
        .map_err(|e: jaula_server::units::UnitError| e.to_string())
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let req = request(a)?;
    let cancel = Cancel::default();
    watch_signals(cancel.clone())?;
    let mut progress = TermProgress::new(&req.name);
    let result = build::build(&ctx.manager.home, &req, &mut progress, &cancel);
    progress.finish();
    match result {
        Ok(server) => {
            println!(
                "built server {} (context {})",
                server.name, server.config.context
            );
            Ok(0)
        }
        Err(build::BuildError::Interrupted) => {
            eprintln!("jaula: build of {} interrupted; nothing was kept", req.name);
            Ok(130)
        }
        Err(e) => Err(e).with_context(|| format!("cannot build server {}", req.name)),
    }
}

/// Checks the method's own options and assembles the request.
fn request(a: Args) -> anyhow::Result<BuildRequest> {
    let source = |what: &str| {
        a.source
            .clone()
            .with_context(|| format!("--method {what} needs --source"))
    };
    let method = match a.method {
        MethodName::Host => Method::Host,
        MethodName::Busybox => Method::Busybox {
            binary: a.busybox.clone(),
        },
        MethodName::Debootstrap => Method::Debootstrap(DebootstrapOptions {
            suite: a
                .suite
                .clone()
                .context("--method debootstrap needs --suite")?,
            mirror: a.mirror.clone(),
            variant: a.variant.clone(),
            include: a.include.clone(),
        }),
        MethodName::Dir => Method::Dir {
            source: source("dir")?.into(),
        },
        MethodName::Tar => Method::Tar {
            source: source("tar")?.into(),
        },
        MethodName::Clone => Method::Clone {
            source: source("clone")?,
        },
    };
    if a.method != MethodName::Debootstrap
        && (a.suite.is_some() || a.mirror.is_some() || a.variant.is_some())
    {
        bail!("--suite, --mirror and --variant are options of --method debootstrap");
    }
    let command = match (&a.command, a.args.is_empty()) {
        (Some(_), false) => bail!("give the command either with --command or after --, not both"),
        (Some(c), true) => super::split_command(c)?,
        (None, _) => a.args.clone(),
    };
    let mut options = BuildOptions {
        context: a.context,
        hostname: a.hostname,
        addresses: a.ips,
        net_mode: a.net,
        memory: a.memory,
        cpus: a.cpus,
        pids: a.pids,
        init: a.init,
        command,
        marks: a.marks,
        privileged: a.privileged.then_some(true),
        services: a.services,
        publish: Vec::new(),
    };
    for p in &a.publish {
        options.publish.push(p.parse().map_err(anyhow::Error::msg)?);
    }
    Ok(BuildRequest {
        name: a.name,
        method,
        options,
    })
}

/// SIGINT, SIGTERM and SIGHUP cancel the build instead of killing us, so the staging
/// directory is removed. They are blocked here (before any thread exists, so every thread
/// inherits the mask) and taken by one thread with sigwait.
fn watch_signals(cancel: Cancel) -> anyhow::Result<()> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block().context("cannot block signals")?;
    std::thread::spawn(move || {
        if set.wait().is_ok() {
            cancel.cancel();
        }
    });
    Ok(())
}
