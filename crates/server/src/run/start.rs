//! `start`: checks, the bundle, then a detached supervisor that creates and starts the
//! container and reports back over a pipe before the command returns.

use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{ChildStdout, Command, Stdio};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{net, Manager, RunError, RunState};
use crate::home::Server;
use crate::idmap::RANGE;

/// How to run the supervisor: the `jaula` binary and the arguments of its hidden verb.
/// (The library does not know its own front end's command line.)
#[derive(Debug, Clone)]
pub struct StartOptions {
    pub supervisor_program: PathBuf,
    /// Arguments before the server name.
    pub supervisor_args: Vec<String>,
}

/// How long `start` waits for the supervisor's report.
const REPORT_TIMEOUT: Duration = Duration::from_secs(120);

/// The supervisor's one line, or `None` when none came in time.
fn read_report(out: ChildStdout, limit: Duration) -> Option<String> {
    let deadline = std::time::Instant::now() + limit;
    let mut reader = BufReader::new(out);
    loop {
        let mut fds = [PollFd::new(reader.get_ref().as_fd(), PollFlags::POLLIN)];
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return None,
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) if std::time::Instant::now() < deadline => continue,
            Err(_) => return None,
        }
    }
    let mut line = String::new();
    // A line or EOF is there now; the supervisor writes its line in one go.
    reader.read_line(&mut line).ok()?;
    Some(line)
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

/// The rootfs must be a directory owned by one of the server's own ids: on disk a
/// server's files carry the ids they have inside (the idmapped mount shifts them).
pub(crate) fn check_rootfs(server: &Server) -> Result<(), RunError> {
    let path = server.rootfs();
    let meta = match std::fs::symlink_metadata(&path) {
        Err(_) => return Err(RunError::RootfsMissing { path }),
        Ok(m) if !m.is_dir() => return Err(RunError::RootfsNotDir { path }),
        Ok(m) => m,
    };
    if !server.config.security.privileged && meta.uid() >= RANGE {
        return Err(RunError::RootfsOwner {
            path,
            uid: meta.uid(),
            expected: 0,
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
    let line = match child.stdout.take() {
        Some(out) => read_report(out, REPORT_TIMEOUT),
        None => None,
    };
    let line = line.as_deref().map(str::trim_end);
    if line == Some(READY) {
        // The supervisor lives on, detached; it is not ours to wait for.
        return Ok(());
    }
    if line.is_none() {
        // Stuck: it goes, and the half-created container is cleaned by the next start.
        let _ = child.kill();
    }
    let _ = child.wait();
    let message = match line.map(|l| l.strip_prefix(FAILED)) {
        Some(Some(m)) => m.to_string(),
        Some(None) => "exited without reporting".to_string(),
        None => format!("no report within {} s", REPORT_TIMEOUT.as_secs()),
    };
    Err(RunError::Supervisor {
        name: server.name.clone(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn(script: &str) -> std::process::Child {
        Command::new("/bin/sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    }

    #[test]
    fn report_is_read_or_times_out() {
        let mut c = spawn("echo ok; sleep 0.2");
        let line = read_report(c.stdout.take().unwrap(), Duration::from_secs(5));
        assert_eq!(line.as_deref(), Some("ok\n"));
        let _ = c.wait();
        let mut c = spawn("sleep 5");
        let t = std::time::Instant::now();
        assert_eq!(
            read_report(c.stdout.take().unwrap(), Duration::from_millis(200)),
            None
        );
        assert!(t.elapsed() < Duration::from_secs(2));
        let _ = c.kill();
        let _ = c.wait();
        let mut c = spawn("exit 3");
        let line = read_report(c.stdout.take().unwrap(), Duration::from_secs(5));
        assert_eq!(line.as_deref(), Some(""));
        let _ = c.wait();
    }
}
