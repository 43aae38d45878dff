//! The context engine: an OCI bundle becomes a validated plan, then a running container.
//!
//! Both front ends (`jaula-oci` and `jaula`) drive containers through [`Runtime`].
//! The modules split the work by seam:
//! - `id`, `state`: naming and the on-disk state store (one dir per container);
//! - `plan`: spec -> validated, typed plan (pure, unit-testable, no syscalls);
//! - `create`, `start`, `kill`, `delete`, `exec`, ...: one lifecycle verb per file;
//! - `child`: the linear setup sequence the container's first process runs.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Entry point for every lifecycle verb; `root` is the state directory (`--root`).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
}

/// Where the container's stdio comes from.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The runtime's own fds 0, 1 and 2 pass through untouched (runc's behaviour).
    #[default]
    Inherit,
    /// Explicit fds (e.g. /dev/null and a log pipe for a virtual server).
    Fds {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

/// What runs as the container's PID 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InitMode {
    /// `process.args` is exec'd as PID 1 (OCI behaviour).
    #[default]
    Exec,
    /// A built-in jaula init is PID 1: it runs `process.args` as its child, forwards
    /// stop signals to it, reaps every zombie and exits with the child's status.
    Reaper,
}

/// Options of `create` (and of `run`, which is create + start).
#[derive(Debug, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// Number of fds after stdio (3, 4, ...) passed into the container.
    pub preserve_fds: u32,
    pub stdio: Stdio,
    pub init: InitMode,
    /// How many of the preserved fds are socket-activation fds (LISTEN_FDS).
    pub listen_fds: u32,
}

/// Options of `exec`: the process to run in an existing container.
#[derive(Debug, Default)]
pub struct ExecOptions {
    /// The OCI `process` object to run (args, env, cwd, user, caps, terminal...).
    pub process: jaula_spec::Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
}

mod child;
mod create;
mod defaults;
mod delete;
mod error;
mod exec;
mod hooks;
pub mod id;
mod kill;
mod pause;
pub mod plan;
mod rootmount;
mod run;
mod start;
pub mod store;
mod sync;
mod tty;
mod update;

pub use defaults::{
    default_mounts, default_spec, features, mount_entry, DEFAULT_CAPS, MASKED_PATHS, READONLY_PATHS,
};
pub use error::{Error, Result};
pub use kill::parse_signal;
pub use plan::Plan;

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { root: root.into() }
    }

    pub(crate) fn store(&self) -> store::Store {
        store::Store::new(&self.root)
    }

    /// The spec's state document, with the status derived from the kernel.
    pub fn state(&self, id: &str) -> Result<jaula_spec::State> {
        id::validate(id)?;
        let dir = self.store().dir(id);
        let rec = self.store().read(id)?.ok_or_else(|| {
            if dir.exists() {
                Error::Other(format!("container {id} is being created"))
            } else {
                Error::NotFound { id: id.to_owned() }
            }
        })?;
        Ok(rec.to_state(rec.status(&dir)))
    }

    /// Every container's state, sorted by ID. Unreadable entries are skipped.
    pub fn list(&self) -> Result<Vec<jaula_spec::State>> {
        let store = self.store();
        Ok(store
            .ids()?
            .into_iter()
            .filter_map(|id| store.read(&id).ok().flatten())
            .map(|rec| rec.to_state(rec.status(&store.dir(&rec.id))))
            .collect())
    }

    /// The container's persisted record (config, cgroup path, pid).
    pub fn record(&self, id: &str) -> Result<store::Record> {
        id::validate(id)?;
        self.store()
            .read(id)?
            .ok_or_else(|| Error::NotFound { id: id.to_owned() })
    }

    /// The container's cgroup, for stats, pids, freeze and limits.
    pub fn cgroup(&self, id: &str) -> Result<jaula_cgroups::Cgroup> {
        let rec = self.record(id)?;
        Ok(jaula_cgroups::Cgroup::open(&rec.cgroup_path)?)
    }
}
