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
//!   .add_pid(pid)                          join every hierarchy (cgroup.procs: ~10 ms, see join)
//!   .self_join(V2Entry) -> SelfJoin        parent opens; child calls .join(): the fast path
//!   .unified_dir() / .v2_dir_fd()          for eBPF attach and clone3(CLONE_INTO_CGROUP)
//!   .pids() .stats() .oom_kill_count() .oom_watcher()
//!   .freeze() .thaw() .is_frozen()
//!   .kill_all(signal)                      cgroup.kill, or freeze/signal/thaw
//!   .destroy()                             rmdir bottom-up, idempotent
//! ```
//!
//! Rules that hold everywhere:
//!
//! - Paths: absolute and relative `cgroupsPath` are both taken from the hierarchy roots (as
//!   runc's cgroupfs driver does); `..`, the root itself and systemd `slice:prefix:name` paths
//!   are refused ([`path`]).
//! - Each resource goes to whichever hierarchy carries its controller, a v1 one first, then v2
//!   (a hybrid host's v2 may offer controllers v1 lacks, such as hugetlb). Values are converted
//!   to v2 units the way runc converts them ([`convert`]). A requested resource whose controller
//!   is missing, or that the version cannot express, is an error, never a silent no-op.
//! - Devices: v1 `devices.allow`/`deny` where that controller is mounted, otherwise an eBPF
//!   `CGROUP_DEVICE` program on the v2 cgroup; both apply the rules in order, last match wins.
//! - Hybrid: freezing uses the v1 freezer, SIGKILL uses the unified `cgroup.kill`, and the
//!   process list comes from the unified hierarchy, which every process joins.
//! - Pure v2: `create` enables every available controller in the ancestors (best effort, for
//!   accounting); `apply` enables what a limit needs and fails if it cannot.
//!
//! Tests can run the v2 (or v1) code against a fake root directory or a view of the real one:
//! build [`Hierarchies`] by hand and use [`Cgroup::with_hierarchies`].

mod apply;
mod cgroup;
pub mod convert;
mod devices;
mod error;
mod freeze;
mod fs;
mod join;
pub mod layout;
mod oom;
pub mod path;
pub mod stats;
mod v1;
mod v2;

#[cfg(test)]
mod testutil;

pub use cgroup::{Cgroup, HierarchyDir};
pub use error::Error;
pub use join::{JoinError, SelfJoin, V2Entry};
pub use layout::{detect, Hierarchies, Layout, V1Mount};
pub use nix::sys::signal::Signal;
pub use oom::{OomEvent, OomWatcher};
pub use stats::Stats;
