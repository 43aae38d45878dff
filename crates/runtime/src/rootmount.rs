//! Mounting a user-namespaced container's rootfs from the host side.
//!
//! The runtime clones the rootfs mount tree (idmapped through the container's user
//! namespace when asked), steps into the init's mount namespace, attaches the tree
//! on the rootfs path there and opens it, then steps back. The init gets that fd
//! and never walks host directories it may not be allowed to see. The init made
//! its `/` a slave mount before asking, so nothing propagates back to the host.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::plan::Plan;

fn open(path: &Path, flags: OFlag) -> Result<OwnedFd> {
    jaula_sys::fs::open(path, flags, 0)
        .map_err(|e| Error::sys(format!("open {}", path.display()), e))
}

/// Returns an O_PATH fd on the rootfs as mounted in `pid`'s mount namespace.
pub(crate) fn mount_root(plan: &Plan, pid: Pid) -> Result<OwnedFd> {
    let tree = jaula_sys::fs::clone_tree(&plan.rootfs)
        .map_err(|e| Error::sys(format!("clone mount tree {}", plan.rootfs.display()), e))?;
    if plan.idmap_rootfs {
        let userns = open(
            &PathBuf::from(format!("/proc/{pid}/ns/user")),
            OFlag::O_RDONLY,
        )?;
        jaula_sys::fs::idmap_tree(tree.as_fd(), userns.as_fd()).map_err(|e| {
            Error::sys(
                format!(
                    "idmap {} (does its filesystem support idmapped mounts?)",
                    plan.rootfs.display()
                ),
                e,
            )
        })?;
    }
    let ours = open(Path::new("/proc/self/ns/mnt"), OFlag::O_RDONLY)?;
    let cwd = open(Path::new("."), OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    let theirs = open(
        &PathBuf::from(format!("/proc/{pid}/ns/mnt")),
        OFlag::O_RDONLY,
    )?;
    nix::sched::setns(theirs.as_fd(), CloneFlags::CLONE_NEWNS)
        .map_err(|e| Error::sys("enter the container's mount namespace", e))?;
    let root = jaula_sys::fs::attach_tree(tree.as_fd(), &plan.rootfs)
        .map_err(|e| Error::sys(format!("mount rootfs {}", plan.rootfs.display()), e))
        .and_then(|()| open(&plan.rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY));
    // Back home whatever happened: the rest of the runtime works with host paths.
    if let Err(e) = nix::sched::setns(ours.as_fd(), CloneFlags::CLONE_NEWNS) {
        // Carrying on in the container's namespace would act on the wrong tree.
        log::error!("cannot return to the host mount namespace: {e}");
        jaula_sys::process::exit_now(1);
    }
    nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(&cwd))
        .map_err(|e| Error::sys("restore working directory", e))?;
    root
}
