//! The error type of the crate: every failure names the cgroup file, path or resource at fault.

use std::io;
use std::path::PathBuf;

use crate::layout::LayoutError;
use crate::path::PathError;

/// Everything that can go wrong while managing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot find the cgroup hierarchies")]
    Layout(#[source] LayoutError),
    #[error("invalid cgroups path")]
    Path(#[source] PathError),
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot create cgroup directory {path}")]
    Mkdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove cgroup directory {path}")]
    Rmdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("cgroup {path} already exists and has processes in it")]
    Populated { path: PathBuf },
    #[error("cgroup {path} already exists and is frozen")]
    Frozen { path: PathBuf },
    #[error(
        "{resource} needs the {controller} cgroup controller, which is not mounted or not enabled"
    )]
    NoController {
        resource: String,
        controller: String,
    },
    #[error("{resource} is not supported on cgroup {version}")]
    Unsupported {
        resource: String,
        version: &'static str,
    },
    #[error("invalid value for {resource}: {reason}")]
    Invalid { resource: String, reason: String },
    #[error("timed out waiting for {what} in {path}")]
    Timeout { what: &'static str, path: PathBuf },
    #[error("cannot send signal {signal} to pid {pid}")]
    Signal {
        pid: i32,
        signal: i32,
        #[source]
        source: nix::Error,
    },
    #[error("cannot set up OOM notification for {path}")]
    OomNotify {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot install the device filter on {path}")]
    DeviceFilter {
        path: PathBuf,
        #[source]
        source: jaula_sys::bpf::BpfError,
    },
}

impl From<LayoutError> for Error {
    fn from(e: LayoutError) -> Self {
        Error::Layout(e)
    }
}

impl From<PathError> for Error {
    fn from(e: PathError) -> Self {
        Error::Path(e)
    }
}

impl Error {
    /// The OS error number behind an I/O failure, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Read { source, .. }
            | Error::Write { source, .. }
            | Error::Mkdir { source, .. }
            | Error::Rmdir { source, .. }
            | Error::Open { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
