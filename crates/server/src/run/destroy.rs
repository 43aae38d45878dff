//! `destroy`: removes a stopped server and everything it left, all or nothing visible.

use super::{Manager, RunError, RunState};
use crate::build::remove_tree;
use crate::config::ServerConfig;
use crate::home::{HomeError, Server, STAGING_PREFIX};

/// Whether a running server is stopped first or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfRunning {
    Refuse,
    Stop,
}

impl Manager {
    /// Destroys server `name`: its network, runtime record, cgroup and directory.
    pub fn destroy(&self, name: &str, if_running: IfRunning) -> Result<(), RunError> {
        let server = self.open_for_destroy(name)?;
        if self.state(name)? != RunState::Stopped {
            match if_running {
                IfRunning::Refuse => return Err(RunError::Running { name: name.into() }),
                IfRunning::Stop => {
                    self.stop(name, None)?;
                }
            }
        }
        let lock = self.home.lock()?;
        let guard = server.lock()?;
        // A start may have slipped in between the check and the lock.
        if self.state(name)? == RunState::Running {
            return Err(RunError::Running { name: name.into() });
        }
        self.cleanup(&server)?;
        // Renamed first, so the server disappears at once; named like a staging dir of
        // this process, so a removal cut short is finished by a later build.
        let trash = self.home.dir().join(format!(
            "{STAGING_PREFIX}{name}-{}-{}",
            std::process::id(),
            crate::build::random_suffix()
        ));
        std::fs::rename(&server.dir, &trash).map_err(RunError::io("cannot remove", &server.dir))?;
        drop(guard);
        drop(lock);
        remove_tree(&trash)?;
        Ok(())
    }
}

impl Manager {
    /// The server to destroy. A server whose `server.toml` no longer parses can still be
    /// destroyed: removal needs only its name and directory.
    fn open_for_destroy(&self, name: &str) -> Result<Server, RunError> {
        match self.home.open(name) {
            Err(HomeError::Config(_)) => Ok(Server {
                name: name.into(),
                dir: self.home.server_dir(name),
                config: ServerConfig::new(crate::config::MIN_CONTEXT),
            }),
            other => Ok(other?),
        }
    }
}
