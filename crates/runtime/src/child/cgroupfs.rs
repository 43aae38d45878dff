//! The `cgroup` mount type: shows the container its own cgroup, whatever the host layout.
//!
//! On a pure v2 host with a private cgroup namespace a fresh cgroup2 mount does it.
//! Otherwise (v1, hybrid, or a shared cgroup namespace) the container gets a tmpfs
//! with one bind mount per hierarchy, each showing only the container's own cgroup
//! directory, as runc does.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

use jaula_sys::fs::{fd_path, open_in_root};

use jaula_cgroups::HierarchyDir;

use crate::plan::MountPlan;

/// `hier` is the container's cgroup in every host hierarchy (computed by the runtime
/// before the fork); `private` says whether the container has its own cgroup namespace.
pub fn mount(
    root: std::os::fd::BorrowedFd<'_>,
    m: &MountPlan,
    target: &Path,
    hier: &[HierarchyDir],
    private: bool,
) -> Result<(), Errno> {
    let pure_v2 =
        hier.len() == 1 && hier[0].v2 && hier[0].mount_point == Path::new("/sys/fs/cgroup");
    let flags = m.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if pure_v2 && private {
        return nix::mount::mount(
            Some("cgroup2"),
            target,
            Some("cgroup2"),
            flags,
            None::<&str>,
        );
    }
    if pure_v2 {
        return bind_hierarchy(&hier[0], target, flags, || {
            open_in_root(root, &m.dest, OFlag::O_PATH | OFlag::O_DIRECTORY, 0)
        });
    }
    nix::mount::mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        (flags - MsFlags::MS_RDONLY) | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )?;
    let dir = open_in_root(root, &m.dest, OFlag::O_DIRECTORY | OFlag::O_RDONLY, 0)?;
    for h in hier {
        let Some(name) = h.mount_point.file_name() else {
            continue;
        };
        if h.mount_point.parent() != Some(Path::new("/sys/fs/cgroup")) {
            continue;
        }
        match nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755))
        {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        let sub = jaula_sys::fs::open_beneath(
            dir.as_fd(),
            Path::new(name),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            0,
        )?;
        bind_hierarchy(h, &fd_path(sub.as_fd()), flags, || {
            jaula_sys::fs::open_beneath(
                dir.as_fd(),
                Path::new(name),
                OFlag::O_PATH | OFlag::O_DIRECTORY,
                0,
            )
        })?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let top = open_in_root(root, &m.dest, OFlag::O_PATH | OFlag::O_DIRECTORY, 0)?;
        nix::mount::mount(
            None::<&str>,
            &fd_path(top.as_fd()),
            None::<&str>,
            MsFlags::MS_REMOUNT | flags,
            Some("mode=755"),
        )?;
    }
    Ok(())
}

/// Binds our cgroup dir of one hierarchy on `target`; `reopen` looks the target up
/// again by name, which (unlike the fd we mounted on) now finds the new mount.
fn bind_hierarchy(
    h: &HierarchyDir,
    target: &Path,
    flags: MsFlags,
    reopen: impl Fn() -> Result<std::os::fd::OwnedFd, Errno>,
) -> Result<(), Errno> {
    nix::mount::mount(
        Some(&h.dir),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    let fd = reopen()?;
    super::rootfs::remount_bind(fd.as_fd(), flags - MsFlags::MS_REC, MsFlags::empty())
}
