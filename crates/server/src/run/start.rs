//! `start`: checks, the bundle, then a detached supervisor that creates and starts the
//! container and reports back over a pipe before the command returns.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{net, Manager, RunError, RunState};
use crate::home::Server;
use crate::idmap::{self, RANGE};

/// How to run the supervisor: the `jaula` binary and the arguments of its hidden verb.
/// (The library does not know its own front end's command line.)
#[derive(Debug, Clone)]
pub struct StartOptions {
    pub supervisor_program: PathBuf,
    /// Arguments before the server name.
    pub supervisor_args: Vec<String>,
}

/// The line a supervisor writes once the server runs.
pub(crate) const READY: &str = "ok";
/// Prefix of the line a supervisor writes when the start failed.
pub(crate) const FAILED: &str = "error: ";

impl Manager {
    /// Starts server `name`; returns once it runs (or with the reason it does not).
    pub fn start(&self, name: &str, opts: &StartOptions) -> Result<(), RunError> {
        let server = self.home.open(name)?;
        let _lock = server.lock()?;
        match self.state(name)? {
            RunState::Running | RunState::Paused => {
                return Err(RunError::AlreadyRunning { name: name.into() })
            }
            // Created: a start whose supervisor died before `start` (we hold the lock, so
            // no start is in progress). Stopped: remains of the last run.
            RunState::Created | RunState::Stopped => self.cleanup(&server)?,
        }
        check_rootfs(&server)?;
        net::check_conflicts(self, &server)?;
        write_bundle(&server)?;
        run_supervisor(&server, opts)
    }
}

/// The rootfs must be a directory owned by the server's root (its id range).
pub(crate) fn check_rootfs(server: &Server) -> Result<(), RunError> {
    let path = server.rootfs();
    let meta = match std::fs::symlink_metadata(&path) {
        Err(_) => return Err(RunError::RootfsMissing { path }),
        Ok(m) if !m.is_dir() => return Err(RunError::RootfsNotDir { path }),
        Ok(m) => m,
    };
    let base = idmap::host_base(&server.config);
    let in_range = meta.uid().checked_sub(base).is_some_and(|off| off < RANGE);
    if !server.config.security.privileged && !in_range {
        return Err(RunError::RootfsOwner {
            path,
            uid: meta.uid(),
            expected: base,
        });
    }
    Ok(())
}

/// Writes `run/config.json`, the bundle the runtime reads.
fn write_bundle(server: &Server) -> Result<(), RunError> {
    let run = server.run_dir();
    std::fs::create_dir_all(&run).map_err(RunError::io("cannot create", &run))?;
    let spec = crate::spec::server_spec(server)?;
    let json = serde_json::to_vec_pretty(&spec).unwrap_or_default();
    let path = run.join("config.json");
    let tmp = run.join("config.json.tmp");
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(RunError::io("cannot write", &path))
}

/// Spawns the supervisor and waits for its one-line report.
fn run_supervisor(server: &Server, opts: &StartOptions) -> Result<(), RunError> {
    let mut child = Command::new(&opts.supervisor_program)
        .args(&opts.supervisor_args)
        .arg(&server.name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(RunError::io("cannot run", &opts.supervisor_program))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let line = line.trim_end();
    if line == READY {
        // The supervisor lives on, detached; it is not ours to wait for.
        return Ok(());
    }
    let _ = child.wait();
    let message = match line.strip_prefix(FAILED) {
        Some(m) => m.to_string(),
        None => "exited without reporting".to_string(),
    };
    Err(RunError::Supervisor {
        name: server.name.clone(),
        message,
    })
}
