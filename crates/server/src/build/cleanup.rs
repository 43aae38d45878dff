//! Removing a half-made (or destroyed) server tree without ever touching anything outside it.
//!
//! Something may still be mounted inside a tree (a debootstrap killed midway, a crashed
//! start). Removal first detaches those mounts, then deletes entries without following
//! symlinks and without descending into another filesystem, so a leftover bind mount of a
//! host directory can never have its contents deleted.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

/// Why a tree could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("cannot remove {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is still a mount point; refusing to remove what is mounted there")]
    Mounted { path: PathBuf },
}

impl From<RemoveError> for super::BuildError {
    fn from(e: RemoveError) -> Self {
        match e {
            RemoveError::Io { path, source } => super::BuildError::Io {
                op: "cannot remove",
                path,
                source,
            },
            RemoveError::Mounted { path } => super::BuildError::Io {
                op: "still mounted:",
                path,
                source: std::io::Error::from(std::io::ErrorKind::ResourceBusy),
            },
        }
    }
}

/// Detaches every mount at or below `root`, then removes `root` and everything in it.
pub fn remove_tree(root: &Path) -> Result<(), RemoveError> {
    let meta = match root.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(RemoveError::Io {
                path: root.into(),
                source,
            })
        }
    };
    if !meta.is_dir() {
        return std::fs::remove_file(root).map_err(|source| RemoveError::Io {
            path: root.into(),
            source,
        });
    }
    detach_mounts_below(root);
    remove_dir(root, meta.dev())
}

/// Lazily unmounts every mount point at or below `root`, deepest first.
pub fn detach_mounts_below(root: &Path) {
    let Ok(root) = root.canonicalize() else {
        return;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = mount_points(&info)
        .into_iter()
        .filter(|p| p.starts_with(&root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        // A mount that is already gone (or stacked twice) is fine: the removal below refuses
        // anything that is still mounted.
        let _ = umount2(&p, MntFlags::MNT_DETACH);
    }
}

/// The mount points listed in a mountinfo text (field 5, octal escapes decoded).
fn mount_points(info: &str) -> Vec<PathBuf> {
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(jaula_cgroups::layout::unescape(p)))
        .collect()
}

fn remove_dir(dir: &Path, dev: u64) -> Result<(), RemoveError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RemoveError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let meta = path.symlink_metadata().map_err(io(&path))?;
        if meta.is_dir() {
            if meta.dev() != dev {
                return Err(RemoveError::Mounted { path });
            }
            remove_dir(&path, dev)?;
        } else {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    std::fs::remove_dir(dir).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn mountinfo_points_are_unescaped() {
        let info =
            "22 1 0:21 / /run/a\\040b rw - tmpfs tmpfs rw\n23 1 0:22 / /proc rw - proc proc rw\n";
        assert_eq!(
            mount_points(info),
            [PathBuf::from("/run/a b"), PathBuf::from("/proc")]
        );
    }

    #[test]
    fn removes_trees_without_following_symlinks() {
        let t = TempDir::new("rm");
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        let tree = t.path().join("tree");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        std::fs::write(tree.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("a/link")).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        assert!(outside.join("keep").exists());
        remove_tree(&tree).unwrap();
    }
}
