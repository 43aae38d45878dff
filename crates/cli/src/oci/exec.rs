//! `jaula-oci exec`: the process comes from `--process` or from the container's
//! own process with the command line's overrides, as runc does.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A process JSON document (the spec's `process` object).
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Allocate a terminal.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Return once the process started.
    #[arg(long, short = 'd')]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variable K=V (repeatable).
    #[arg(long = "env", short = 'e')]
    pub env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Additional group ids (repeatable).
    #[arg(long = "additional-gids", short = 'g')]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable).
    #[arg(long = "cap", short = 'c')]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(long)]
    pub apparmor: Option<String>,
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u
        .parse()
        .with_context(|| format!("--user {s:?}: uid must be numeric"))?;
    let gid = g
        .map(|g| {
            g.parse()
                .with_context(|| format!("--user {s:?}: gid must be numeric"))
        })
        .transpose()?;
    Ok((uid, gid))
}

/// The process to run, built the way runc builds it.
pub fn process(rt: &jaula_runtime::Runtime, a: &Args) -> Result<jaula_spec::Process> {
    if let Some(path) = &a.process {
        let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        return serde_json::from_slice(&data)
            .with_context(|| format!("parse process JSON {}", path.display()));
    }
    if a.args.is_empty() {
        bail!("exec needs a command (or --process)");
    }
    let rec = rt.record(&a.id)?;
    let mut p = rec.config.process.clone().unwrap_or_default();
    p.args = a.args.clone();
    p.terminal = a.tty;
    p.console_size = None;
    for kv in &a.env {
        // -e K=V replaces K rather than adding a second definition.
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        p.env
            .retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        p.env.push(kv.clone());
    }
    if let Some(cwd) = &a.cwd {
        p.cwd = cwd.clone();
    }
    if let Some(u) = &a.user {
        let (uid, gid) = parse_user(u)?;
        p.user.uid = uid;
        if let Some(g) = gid {
            p.user.gid = g;
        }
    }
    if !a.additional_gids.is_empty() {
        p.user.additional_gids = a.additional_gids.clone();
    }
    if !a.cap.is_empty() {
        let c = p.capabilities.get_or_insert_with(Default::default);
        for set in [
            &mut c.bounding,
            &mut c.effective,
            &mut c.permitted,
            &mut c.ambient,
        ] {
            set.get_or_insert_with(Vec::new)
                .extend(a.cap.iter().cloned());
        }
        if let Some(inh) = &mut c.inheritable {
            inh.extend(a.cap.iter().cloned());
        } else {
            c.inheritable = Some(a.cap.clone());
        }
    }
    if a.no_new_privs {
        p.no_new_privileges = true;
    }
    if let Some(ap) = &a.apparmor {
        p.apparmor_profile = Some(ap.clone());
    }
    if let Some(l) = &a.process_label {
        p.selinux_label = Some(l.clone());
    }
    Ok(p)
}

pub fn run(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    let process = process(rt, &a)?;
    let opts = jaula_runtime::ExecOptions {
        process,
        detach: a.detach,
        pid_file: a.pid_file.as_ref().map(|p| {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.clone())
        }),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
    };
    Ok(rt.exec(&a.id, opts)?)
}
