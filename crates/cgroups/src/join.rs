//! The fast way for a freshly cloned child to enter its cgroup.
//!
//! A write to `cgroup.procs` (what [`Cgroup::add_pid`] does) takes the kernel's global
//! threadgroup lock for writing, and the first such write after a quiet spell waits for an
//! RCU grace period: about 10 ms on the test machine, the whole `run` budget. Moving only the
//! *calling thread* (`"0"` into a v1 `tasks` file) skips that lock. A child that is still
//! single-threaded (right after clone, before it starts threads) is entirely moved that way.
//! v2 has no such per-thread move between domain cgroups; there the child should be created
//! inside the cgroup with `clone3(CLONE_INTO_CGROUP, Cgroup::v2_dir_fd())`, which is fast too.
//!
//! The parent opens the files ([`Cgroup::self_join`]); the child only writes to the inherited
//! fds. The kernel checks permission against the opener's credentials, so this works even
//! after the child has entered a user namespace or pivoted its root.

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;

use nix::errno::Errno;

use crate::{Cgroup, Error};

/// How the child gets into the v2 hierarchy (pure v2, or hybrid `unified`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2Entry {
    /// The child is cloned with `CLONE_INTO_CGROUP` on [`Cgroup::v2_dir_fd`]: nothing to do.
    CloneIntoCgroup,
    /// The child writes itself into `cgroup.procs` (the slow, locked path).
    WriteProcs,
}

/// Open files through which a single-threaded child moves itself into the cgroup.
#[derive(Debug)]
pub struct SelfJoin {
    /// v1 `tasks` files, in hierarchy order, then possibly the v2 `cgroup.procs`.
    files: Vec<OwnedFd>,
}

/// Which write of [`SelfJoin::join`] failed (an index into the cgroup's hierarchies, v1
/// first, then v2), and why. Plain data: the child must not allocate to report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot move the process into hierarchy #{index} of its cgroup")]
pub struct JoinError {
    pub index: usize,
    #[source]
    pub errno: Errno,
}

impl Cgroup {
    /// Opens, in the parent and after [`Cgroup::create`], the files a child needs to join with
    /// [`SelfJoin::join`].
    pub fn self_join(&self, v2: V2Entry) -> Result<SelfJoin, Error> {
        let v1 = self
            .hierarchies()
            .v1
            .iter()
            .map(|m| m.mount_point.join(self.path()).join("tasks"));
        let v2 = self
            .unified_dir()
            .filter(|_| v2 == V2Entry::WriteProcs)
            .map(|d| d.join("cgroup.procs"));
        let mut files = Vec::new();
        for path in v1.chain(v2) {
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|source| Error::Open { path, source })?;
            files.push(file.into());
        }
        Ok(SelfJoin { files })
    }
}

impl SelfJoin {
    /// In the child: moves the calling process into every hierarchy. The caller must be
    /// single-threaded (only the calling thread moves in v1). Only `write(2)` calls, no
    /// allocation, so it is safe right after clone.
    pub fn join(&self) -> Result<(), JoinError> {
        for (index, fd) in self.files.iter().enumerate() {
            match nix::unistd::write(fd, b"0") {
                Ok(1) => {}
                Ok(_) => {
                    return Err(JoinError {
                        index,
                        errno: Errno::EIO,
                    })
                }
                Err(errno) => return Err(JoinError { index, errno }),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::testutil::TempDir;
    use crate::{Hierarchies, V1Mount};

    #[test]
    fn opens_v1_tasks_and_optionally_v2_procs() {
        let t = TempDir::new("join");
        for f in ["mem/a/tasks", "pids/a/tasks", "uni/a/cgroup.procs"] {
            t.file(f, "");
        }
        let mount = |name: &str| V1Mount {
            mount_point: t.path().join(name),
            controllers: vec![name.into()],
        };
        let h = Hierarchies::new(
            vec![mount("mem"), mount("pids")],
            Some((t.path().join("uni"), Vec::new())),
        );
        let cg = Cgroup::with_hierarchies(Arc::new(h), "a").unwrap();
        assert_eq!(
            cg.self_join(V2Entry::CloneIntoCgroup).unwrap().files.len(),
            2
        );
        let all = cg.self_join(V2Entry::WriteProcs).unwrap();
        assert_eq!(all.files.len(), 3);
        all.join().unwrap();
        assert_eq!(t.read("pids/a/tasks"), "0");
        assert_eq!(t.read("uni/a/cgroup.procs"), "0");
    }

    #[test]
    fn a_missing_hierarchy_directory_fails_in_the_parent() {
        let t = TempDir::new("joinmissing");
        let h = Hierarchies::new(
            vec![V1Mount {
                mount_point: t.path().join("mem"),
                controllers: vec!["memory".into()],
            }],
            None,
        );
        let cg = Cgroup::with_hierarchies(Arc::new(h), "a").unwrap();
        let e = cg.self_join(V2Entry::WriteProcs).unwrap_err();
        assert!(e.to_string().contains("mem/a/tasks"), "{e}");
    }
}
