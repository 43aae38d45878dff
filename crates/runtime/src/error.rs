//! The runtime's error type. Messages carry the strings container shims match on.

use std::path::PathBuf;

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid container ID {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    /// containerd and conmon match "container ID does not exist".
    #[error("container ID does not exist: {id}")]
    NotFound { id: String },
    #[error("container with id exists: {id}")]
    AlreadyExists { id: String },
    /// containerd matches "container not running".
    #[error("container not running: {id}")]
    NotRunning { id: String },
    #[error("cannot {op} container {id}: it is {status}")]
    WrongState {
        id: String,
        op: &'static str,
        status: jaula_spec::Status,
    },
    #[error(transparent)]
    Spec(#[from] jaula_spec::SpecError),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error(transparent)]
    Cgroup(#[from] jaula_cgroups::Error),
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}")]
    Sys {
        op: String,
        #[source]
        source: Errno,
    },
    #[error("corrupt state file {path}")]
    CorruptState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// An error the container's setup process reported before it could exec.
    #[error("container setup failed: {0}")]
    Setup(String),
    #[error("{kind} hook {path} failed: {reason}")]
    Hook {
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("unknown signal {0:?}")]
    BadSignal(String),
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(op: impl Into<String>, source: Errno) -> Error {
        Error::Sys {
            op: op.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
