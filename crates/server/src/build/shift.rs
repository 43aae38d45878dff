//! Moving a tree's owners into a server's id range, so that its root is root inside the
//! server's user namespace.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{BuildError, Cancel};
use crate::idmap::IdShift;

/// Re-owns every entry below (and including) `root`, keeping set-id bits.
pub fn shift_tree(root: &Path, shift: IdShift, cancel: &Cancel) -> Result<(), BuildError> {
    if shift.is_identity() {
        return Ok(());
    }
    let meta = root
        .symlink_metadata()
        .map_err(BuildError::io("cannot read", root))?;
    walk(root, meta.dev(), shift, cancel)
}

fn walk(path: &Path, dev: u64, shift: IdShift, cancel: &Cancel) -> Result<(), BuildError> {
    cancel.check()?;
    let meta = path
        .symlink_metadata()
        .map_err(BuildError::io("cannot read", path))?;
    if meta.is_dir() && meta.dev() == dev {
        for e in std::fs::read_dir(path).map_err(BuildError::io("cannot read", path))? {
            let e = e.map_err(BuildError::io("cannot read", path))?;
            walk(&e.path(), dev, shift, cancel)?;
        }
    }
    let (uid, gid) = (shift.map(meta.uid()), shift.map(meta.gid()));
    if (uid, gid) == (meta.uid(), meta.gid()) {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(BuildError::io("cannot chown", path))?;
    // The kernel clears set-user-id and set-group-id on chown, even for root.
    let setid = meta.mode() & 0o6000;
    if setid != 0 && !meta.file_type().is_symlink() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(BuildError::io("cannot chmod", path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn identity_touches_nothing() {
        let t = TempDir::new("shift-id");
        std::fs::write(t.path().join("f"), "x").unwrap();
        shift_tree(t.path(), IdShift { from: 5, to: 5 }, &Cancel::default()).unwrap();
    }

    #[test]
    fn cancel_stops_the_walk() {
        let t = TempDir::new("shift-cancel");
        let c = Cancel::default();
        c.cancel();
        let e = shift_tree(t.path(), IdShift::from_root(1 << 16), &c).unwrap_err();
        assert!(matches!(e, BuildError::Interrupted));
    }
}
