//! The `cgroup` mount type: shows the container its own cgroup, whatever the host layout.
//!
//! On a pure v2 host with a private cgroup namespace a fresh cgroup2 mount does it.
//! Otherwise (v1, hybrid, or a shared cgroup namespace) the container gets a tmpfs
//! with one bind mount per hierarchy, each showing only the container's own cgroup
//! directory, as runc does.

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

use jaula_sys::fs::{fd_path, open_in_root};

use crate::plan::MountPlan;

/// One host cgroup hierarchy and where our process sits in it.
#[derive(Debug, Clone)]
struct Hierarchy {
    /// Host mount point, e.g. /sys/fs/cgroup/memory.
    mount_point: PathBuf,
    /// Our cgroup inside it, e.g. /jaula/ctr.
    path: String,
    v2: bool,
}

static HIERARCHIES: OnceLock<Vec<Hierarchy>> = OnceLock::new();
static PRIVATE_CGROUPNS: OnceLock<bool> = OnceLock::new();

/// Records where the process sits in every hierarchy. Must run before the process
/// enters a private cgroup namespace, which would hide the host paths.
pub fn snapshot(private_ns: bool) {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let _ = HIERARCHIES.set(hierarchies(&cgroup, &mountinfo));
    let _ = PRIVATE_CGROUPNS.set(private_ns);
}

fn hierarchies(cgroup: &str, mountinfo: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        let (Some(fstype), Some(_src), Some(opts)) = (post.next(), post.next(), post.next()) else {
            continue;
        };
        let Some(mp) = pre.split(' ').nth(4) else {
            continue;
        };
        let v2 = fstype == "cgroup2";
        if !v2 && fstype != "cgroup" {
            continue;
        }
        let ctrls: Vec<&str> = opts
            .split(',')
            .filter(|o| {
                !matches!(*o, "rw" | "ro")
                    && !o.starts_with("release_agent")
                    && *o != "clone_children"
                    && *o != "xattr"
                    && *o != "noprefix"
            })
            .collect();
        let found = cgroup.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            let matches = if v2 {
                c.is_empty()
            } else {
                !c.is_empty() && sorted(c.split(',').collect()) == sorted(ctrls.clone())
            };
            matches.then(|| p.to_owned())
        });
        if let Some(path) = found {
            out.push(Hierarchy {
                mount_point: PathBuf::from(mp),
                path,
                v2,
            });
        }
    }
    out
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v
}

pub fn mount(root: std::os::fd::BorrowedFd<'_>, m: &MountPlan, target: &Path) -> Result<(), Errno> {
    let hier = HIERARCHIES.get().cloned().unwrap_or_default();
    let private = PRIVATE_CGROUPNS.get().copied().unwrap_or(false);
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
    for h in &hier {
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
    h: &Hierarchy,
    target: &Path,
    flags: MsFlags,
    reopen: impl Fn() -> Result<std::os::fd::OwnedFd, Errno>,
) -> Result<(), Errno> {
    let src = h.mount_point.join(h.path.trim_start_matches('/'));
    nix::mount::mount(
        Some(&src),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    let fd = reopen()?;
    super::rootfs::remount_bind(fd.as_fd(), flags - MsFlags::MS_REC, MsFlags::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_hierarchies_match_controllers() {
        let mountinfo = "30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
31 25 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
32 25 0:28 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
33 25 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n";
        let cgroup = "5:memory:/jaula/a\n4:cpu:/jaula/a\n1:name=systemd:/jaula/a\n0::/jaula/a\n";
        let h = hierarchies(cgroup, mountinfo);
        assert_eq!(h.len(), 4);
        assert!(h.iter().all(|h| h.path == "/jaula/a"));
        assert!(h[2].v2);
    }
}
