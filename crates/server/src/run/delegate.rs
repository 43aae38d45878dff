//! cgroup delegation for servers that boot their own init.
//!
//! systemd (and other inits that manage services) creates sub-cgroups below its own. In a
//! user namespace the server's root is an unprivileged host uid, so it can only do that in
//! directories it owns: the kernel's delegation model is to chown the cgroup directory and
//! its `cgroup.procs`, `cgroup.threads` and `cgroup.subtree_control` files (v2), or
//! `cgroup.procs` and `tasks` (v1), to the delegatee. Only the hierarchies an init writes
//! are delegated: the unified one and `name=systemd`. Controller files (limits) stay owned
//! by the host's root, so the server cannot raise its own limits.

use std::path::{Path, PathBuf};

use super::RunError;

/// Files of a delegated v2 cgroup (besides the directory).
const V2_FILES: &[&str] = &["cgroup.procs", "cgroup.threads", "cgroup.subtree_control"];
/// Files of a delegated v1 cgroup.
const V1_FILES: &[&str] = &["cgroup.procs", "tasks"];

/// Chowns `pid`'s cgroups (which must be `expected`, the container's cgroup path) in the
/// unified and `name=systemd` hierarchies to host uid/gid `owner`.
pub fn delegate(pid: i32, expected: &str, owner: u32) -> Result<(), RunError> {
    let cgroup_file = format!("/proc/{pid}/cgroup");
    let cgroups =
        std::fs::read_to_string(&cgroup_file).map_err(RunError::io("cannot read", &cgroup_file))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(RunError::io("cannot read", "/proc/self/mountinfo"))?;
    let expected = format!("/{}", expected.trim_matches('/'));
    for (dir, files) in targets(&cgroups, &mountinfo, &expected) {
        chown(&dir, owner)?;
        for f in files {
            let p = dir.join(f);
            if p.exists() {
                chown(&p, owner)?;
            }
        }
    }
    Ok(())
}

fn chown(p: &Path, owner: u32) -> Result<(), RunError> {
    std::os::unix::fs::chown(p, Some(owner), Some(owner))
        .map_err(RunError::io("cannot delegate cgroup", p))
}

/// The directories to delegate, with their files. A cgroup that is not the container's own
/// (a hierarchy the runtime did not place it in) is never touched.
fn targets(
    cgroups: &str,
    mountinfo: &str,
    expected: &str,
) -> Vec<(PathBuf, &'static [&'static str])> {
    let mut out = Vec::new();
    for line in cgroups.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if path != expected {
            continue;
        }
        let found = match ctrl {
            "" => mount_point(mountinfo, |fstype, _| fstype == "cgroup2").map(|m| (m, V2_FILES)),
            "name=systemd" => mount_point(mountinfo, |fstype, opts| {
                fstype == "cgroup" && opts.split(',').any(|o| o == "name=systemd")
            })
            .map(|m| (m, V1_FILES)),
            _ => None,
        };
        if let Some((mount, files)) = found {
            out.push((mount.join(path.trim_start_matches('/')), files));
        }
    }
    out
}

/// The first mount point whose filesystem type and super options satisfy `want`.
fn mount_point(mountinfo: &str, want: impl Fn(&str, &str) -> bool) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut post = post.split(' ');
        let (fstype, _src, opts) = (post.next()?, post.next()?, post.next()?);
        let mp = pre.split(' ').nth(4)?;
        want(fstype, opts).then(|| PathBuf::from(mp))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 24 0:26 / /sys/fs/cgroup/unified rw,nosuid shared:8 - cgroup2 cgroup2 rw
31 24 0:27 / /sys/fs/cgroup/systemd rw,nosuid shared:9 - cgroup cgroup rw,xattr,name=systemd
32 24 0:28 / /sys/fs/cgroup/memory rw,nosuid shared:10 - cgroup cgroup rw,memory
";

    #[test]
    fn only_the_containers_own_writable_hierarchies() {
        let cg = "9:name=systemd:/jaula/web\n4:memory:/jaula/web\n0::/jaula/web\n";
        let t = targets(cg, MOUNTINFO, "/jaula/web");
        let dirs: Vec<_> = t.iter().map(|(d, _)| d.clone()).collect();
        assert_eq!(
            dirs,
            [
                PathBuf::from("/sys/fs/cgroup/systemd/jaula/web"),
                PathBuf::from("/sys/fs/cgroup/unified/jaula/web")
            ]
        );
        // A hierarchy where the process is elsewhere (the host's) is left alone.
        let elsewhere = "9:name=systemd:/system.slice/x\n0::/jaula/web\n";
        assert_eq!(targets(elsewhere, MOUNTINFO, "/jaula/web").len(), 1);
    }
}
