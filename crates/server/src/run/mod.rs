//! Running servers: start (through a small supervisor), stop, exec, destroy, status.
//!
//! There is no daemon. A server's truth is the runtime's state (derived from the kernel:
//! the init's pid and start time) plus the files in the server's `run/` directory, and
//! every verb re-derives it. A `jaula` process killed at any point leaves either a
//! running server or remains that the next verb cleans up ([`Manager::cleanup`]).

mod delegate;
mod destroy;
mod exec;
mod kill;
mod net;
mod start;
mod stop;
mod supervise;

use std::path::PathBuf;

use jaula_runtime::Runtime;
use jaula_spec::Status;

use crate::home::{Home, HomeError, Server};

pub use destroy::IfRunning;
pub use exec::ExecRequest;
pub use start::StartOptions;
pub use stop::{stop_signal, StopOutcome};
pub use supervise::{ExitRecord, LOG_CAP};

/// Why a lifecycle verb failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error("server {name:?}")]
    Runtime {
        name: String,
        #[source]
        source: Box<jaula_runtime::Error>,
    },
    #[error("server {name:?} is already running")]
    AlreadyRunning { name: String },
    #[error("server {name:?} is not running")]
    NotRunning { name: String },
    #[error("server {name:?} is running; stop it first (or use --force)")]
    Running { name: String },
    #[error("rootfs {path} is missing")]
    RootfsMissing { path: PathBuf },
    #[error("rootfs {path} is not a directory")]
    RootfsNotDir { path: PathBuf },
    #[error("rootfs {path} is owned by host uid {uid}: a server's files keep their own ids on disk (its root is uid {expected} there); was the tree chowned into a host range?")]
    RootfsOwner {
        path: PathBuf,
        uid: u32,
        expected: u32,
    },
    #[error("address {addr} of server {name:?} is in use by running server {other:?}")]
    AddressInUse {
        name: String,
        addr: std::net::IpAddr,
        other: String,
    },
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Net(#[from] jaula_net::NetError),
    #[error(transparent)]
    Passwd(#[from] crate::passwd::PasswdError),
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("supervisor of server {name:?}: {message}")]
    Supervisor { name: String, message: String },
    #[error("invalid signal {0:?}")]
    BadSignal(String),
    #[error("process {pid} is not part of server {name:?}")]
    ForeignPid { pid: i32, name: String },
    #[error(transparent)]
    Remove(#[from] crate::build::RemoveError),
}

impl RunError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> RunError {
        let path = path.into();
        move |source| RunError::Io { op, path, source }
    }

    pub(crate) fn runtime(name: &str) -> impl FnOnce(jaula_runtime::Error) -> RunError {
        let name = name.to_string();
        move |source| RunError::Runtime {
            name,
            source: Box::new(source),
        }
    }
}

/// A server's run state, as `status` and `list` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    /// Created but not started, or paused: it exists but does not run its program.
    Created,
    Paused,
    Stopped,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Created => "created",
            RunState::Paused => "paused",
            RunState::Stopped => "stopped",
        }
    }

    fn from_status(s: Status) -> RunState {
        match s {
            Status::Running => RunState::Running,
            Status::Paused => RunState::Paused,
            Status::Creating | Status::Created => RunState::Created,
            Status::Stopped => RunState::Stopped,
        }
    }
}

/// The home of servers and the runtime state store, together.
#[derive(Debug, Clone)]
pub struct Manager {
    pub home: Home,
    pub runtime: Runtime,
}

impl Manager {
    pub fn new(home: Home, runtime: Runtime) -> Manager {
        Manager { home, runtime }
    }

    /// The server's run state (a server the runtime does not know is stopped).
    pub fn state(&self, name: &str) -> Result<RunState, RunError> {
        match self.runtime.state(name) {
            Ok(st) => Ok(RunState::from_status(st.status)),
            Err(jaula_runtime::Error::NotFound { .. }) => Ok(RunState::Stopped),
            // A state directory without a record is one being claimed or removed right
            // now (by a create, or a delete in another process): nothing runs in it.
            Err(e) => match self.runtime.record(name) {
                Err(jaula_runtime::Error::NotFound { .. }) => Ok(RunState::Stopped),
                _ => Err(RunError::runtime(name)(e)),
            },
        }
    }

    /// The pid of the server's init when it runs.
    pub fn init_pid(&self, name: &str) -> Option<i32> {
        self.runtime
            .state(name)
            .ok()
            .filter(|s| s.status == Status::Running)
            .and_then(|s| s.pid)
    }

    /// Removes what a stopped server left: its network and the runtime's record (which
    /// also removes its cgroup). Idempotent, and serialized by `run/cleanup.lock` because
    /// the supervisor and `stop` may both get here.
    pub fn cleanup(&self, server: &Server) -> Result<(), RunError> {
        self.cleanup_run(server, None)
    }

    /// [`Manager::cleanup`], limited to the run whose init was `init` when given: a
    /// supervisor that is late must not remove the next run, which a new `start` may
    /// already have created.
    pub(crate) fn cleanup_run(&self, server: &Server, init: Option<i32>) -> Result<(), RunError> {
        let run = server.run_dir();
        // No run dir: never started, or destroyed under a late supervisor, which must not
        // recreate it. Only the runtime's record can be left then.
        let _lock = match run.is_dir() {
            true => Some(lock(&run.join("cleanup.lock"))?),
            false => None,
        };
        if matches!(
            self.state(&server.name)?,
            RunState::Running | RunState::Paused
        ) {
            return Ok(());
        }
        let current = self.runtime.record(&server.name).ok().and_then(|r| r.pid);
        // A late supervisor only cleans its own run: if the record now names another
        // init, or none yet (a new `start` is still creating it), it leaves it alone.
        if let Some(mine) = init {
            if current != Some(mine) {
                return Ok(());
            }
        }
        let net_result = net::teardown_recorded(server);
        match self.runtime.delete(&server.name, true) {
            Ok(()) | Err(jaula_runtime::Error::NotFound { .. }) => {}
            Err(e) => return Err(RunError::runtime(&server.name)(e)),
        }
        net_result
    }
}

fn lock(path: &std::path::Path) -> Result<nix::fcntl::Flock<std::fs::File>, RunError> {
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(RunError::io("cannot open", path))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| RunError::io("cannot lock", path)(e.into()))
}
