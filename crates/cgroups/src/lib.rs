//! cgroup v1, v2 and hybrid hierarchies behind one interface.
//!
//! Every container lives in its own cgroup, whatever the host's layout. A [`Cgroup`] is one
//! relative path (`jaula/<id>` by default) present in every hierarchy of the host: each v1
//! hierarchy (including `name=systemd`) and, on v2 or hybrid hosts, the v2 one, which is where
//! eBPF programs attach.
//!
//! ```text
//! detect() -> Layout                       V1 | V2 | Hybrid, cached per process
//! Cgroup::for_container(path, id)          resolve linux.cgroupsPath, touch nothing
//! Cgroup::open(persisted_path)             rebuild in another process from Cgroup::path()
//!   .create()                              mkdir everywhere; refuse a populated/frozen one
//!   .apply(&Resources)                     write limits (create and update)
//!   .add_pid(pid)                          join every hierarchy
//!   .unified_dir() / .v2_dir_fd()          for eBPF attach and clone3(CLONE_INTO_CGROUP)
//!   .pids() .stats() .oom_kill_count() .oom_watcher()
//!   .freeze() .thaw() .is_frozen()
//!   .kill_all(signal)                      cgroup.kill, or freeze/signal/thaw
//!   .destroy()                             rmdir bottom-up, idempotent
//! ```
//!
//! Each resource goes to whichever hierarchy carries its controller (v1 first, then v2), with
//! v1 values converted to v2 units the way runc converts them ([`convert`]). A requested
//! resource whose controller is missing is an error, never a silent no-op.
//!
//! Tests can run v2 (or v1) code against a fake root directory: build [`Hierarchies`] by hand
//! and use [`Cgroup::with_hierarchies`].

mod apply;
mod cgroup;
pub mod convert;
mod devices;
mod error;
mod freeze;
mod fs;
pub mod layout;
mod oom;
pub mod path;
pub mod stats;
mod v1;
mod v2;

#[cfg(test)]
mod testutil;

pub use cgroup::Cgroup;
pub use error::Error;
pub use layout::{detect, Hierarchies, Layout, V1Mount};
pub use nix::sys::signal::Signal;
pub use oom::{OomEvent, OomWatcher};
pub use stats::Stats;
