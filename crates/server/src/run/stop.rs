//! `stop`: the init style's shutdown signal, a grace period, then SIGKILL to every process
//! of the server's cgroup (VServer's kill sequence), then cleanup.

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Manager, RunError, RunState};
use crate::config::InitStyle;
use crate::home::Server;
use crate::signal;

/// Grace period when neither `--timeout` nor `init.stop_timeout` is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the processes get to die after SIGKILL before `stop` gives up.
const KILL_WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// The server shut down within the grace period.
    Stopped,
    /// The grace period ran out; everything was SIGKILLed.
    Killed,
    /// It was not running (its remains, if any, were cleaned up).
    NotRunning,
}

impl Manager {
    /// Stops server `name`, waiting at most `timeout` (default: the server's, or 10 s)
    /// before killing it.
    pub fn stop(&self, name: &str, timeout: Option<Duration>) -> Result<StopOutcome, RunError> {
        let server = self.home.open(name)?;
        let _lock = server.lock()?;
        let outcome = match self.state(name)? {
            RunState::Stopped | RunState::Created => StopOutcome::NotRunning,
            RunState::Paused => {
                self.runtime.resume(name).map_err(RunError::runtime(name))?;
                self.shut_down(&server, timeout)?
            }
            RunState::Running => self.shut_down(&server, timeout)?,
        };
        if outcome != StopOutcome::NotRunning {
            wait_exit_record(&server);
        }
        self.cleanup(&server)?;
        Ok(outcome)
    }

    fn shut_down(
        &self,
        server: &Server,
        timeout: Option<Duration>,
    ) -> Result<StopOutcome, RunError> {
        let name = &server.name;
        let grace = timeout
            .or(server.config.init.stop_timeout.map(Duration::from_secs))
            .unwrap_or(DEFAULT_TIMEOUT);
        match self.runtime.kill(name, stop_signal(server), false) {
            Ok(()) | Err(jaula_runtime::Error::NotRunning { .. }) => {}
            Err(e) => return Err(RunError::runtime(name)(e)),
        }
        if self.wait_stopped(name, grace)? {
            return Ok(StopOutcome::Stopped);
        }
        match self.runtime.kill(name, libc::SIGKILL, true) {
            Ok(()) | Err(jaula_runtime::Error::NotRunning { .. }) => {}
            Err(e) => return Err(RunError::runtime(name)(e)),
        }
        self.wait_stopped(name, KILL_WAIT)?;
        Ok(StopOutcome::Killed)
    }

    /// Polls until the server no longer runs; false when `limit` passed first.
    fn wait_stopped(&self, name: &str, limit: Duration) -> Result<bool, RunError> {
        let deadline = Instant::now() + limit;
        loop {
            if !matches!(self.state(name)?, RunState::Running | RunState::Paused) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(POLL);
        }
    }
}

/// The init is gone (a zombie counts), but its supervisor may still be reaping it: give
/// it a moment to record the exit status, so `status` right after `stop` can show it.
fn wait_exit_record(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while super::ExitRecord::load(server).is_none() && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
}

/// The signal that asks the server's init to shut down: the configured one, else
/// SIGRTMIN+3 for systemd, SIGUSR2 (poweroff) for busybox init, SIGPWR for sysvinit, and
/// SIGTERM for jaula's minimal init and single commands.
pub fn stop_signal(server: &Server) -> i32 {
    let cfg = &server.config;
    if let Some(sig) = cfg.init.stop_signal.as_deref().and_then(signal::parse) {
        return sig;
    }
    match cfg.init.style {
        InitStyle::Minimal | InitStyle::Command => libc::SIGTERM,
        InitStyle::Init => {
            let program = cfg
                .init
                .command
                .first()
                .map_or("/sbin/init", String::as_str);
            let target = resolve_in_root(&server.rootfs(), Path::new(program));
            let file = target
                .as_deref()
                .and_then(Path::file_name)
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            if file.contains("systemd") {
                signal::SIGRTMIN + 3
            } else if file == "busybox" {
                libc::SIGUSR2
            } else {
                libc::SIGPWR
            }
        }
    }
}

/// Follows symlinks of `path` as the server would see them (absolute links relative to its
/// root, never above it). Returns the final path inside the server.
fn resolve_in_root(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut cur = PathBuf::from("/");
    let mut todo: Vec<PathBuf> = path
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        match Path::new(&part).components().next()? {
            Component::RootDir => cur = PathBuf::from("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                cur.pop();
            }
            Component::Normal(n) => {
                let next = cur.join(n);
                let host = root.join(next.strip_prefix("/").ok()?);
                match std::fs::read_link(&host) {
                    Ok(target) => {
                        hops += 1;
                        if hops > 40 {
                            return None;
                        }
                        todo.extend(
                            target
                                .components()
                                .rev()
                                .map(|c| PathBuf::from(c.as_os_str())),
                        );
                    }
                    Err(_) => cur = next,
                }
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use crate::testutil::TempDir;

    fn server(dir: &Path, style: InitStyle) -> Server {
        let mut config = ServerConfig::new(40000);
        config.init.style = style;
        Server {
            name: "s".into(),
            dir: dir.into(),
            config,
        }
    }

    #[test]
    fn signals_follow_the_init() {
        let t = TempDir::new("stopsig");
        let root = t.path().join("rootfs");
        std::fs::create_dir_all(root.join("sbin")).unwrap();
        std::fs::create_dir_all(root.join("lib/systemd")).unwrap();
        std::fs::write(root.join("lib/systemd/systemd"), "").unwrap();
        assert_eq!(
            stop_signal(&server(t.path(), InitStyle::Minimal)),
            libc::SIGTERM
        );
        assert_eq!(
            stop_signal(&server(t.path(), InitStyle::Init)),
            libc::SIGPWR
        );
        std::os::unix::fs::symlink("/lib/systemd/systemd", root.join("sbin/init")).unwrap();
        assert_eq!(stop_signal(&server(t.path(), InitStyle::Init)), 37);
        std::fs::remove_file(root.join("sbin/init")).unwrap();
        std::os::unix::fs::symlink("../bin/busybox", root.join("sbin/init")).unwrap();
        assert_eq!(
            stop_signal(&server(t.path(), InitStyle::Init)),
            libc::SIGUSR2
        );
        let mut s = server(t.path(), InitStyle::Init);
        s.config.init.stop_signal = Some("SIGINT".into());
        assert_eq!(stop_signal(&s), libc::SIGINT);
    }

    #[test]
    fn resolution_stays_inside_the_root() {
        let t = TempDir::new("resolve");
        std::fs::create_dir_all(t.path().join("a")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", t.path().join("a/up")).unwrap();
        assert_eq!(
            resolve_in_root(t.path(), Path::new("/a/up/passwd")).unwrap(),
            Path::new("/etc/passwd")
        );
        std::os::unix::fs::symlink("loop", t.path().join("loop")).unwrap();
        assert_eq!(resolve_in_root(t.path(), Path::new("/loop")), None);
    }
}
