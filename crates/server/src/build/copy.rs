//! Copying a tree (the `dir` and `clone` methods): contents, owners (shifted into the new
//! server's id range), modes, times, xattrs, hard links, devices, fifos and symlinks.
//!
//! Like `cp -ax` it stays on the source's filesystem (a mount point inside the source is
//! copied as an empty directory) and never follows symlinks.

use std::collections::HashMap;
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use super::{BuildError, Cancel, Progress};
use crate::idmap::IdShift;

/// Copies the contents of `src` into the existing directory `dst`.
pub fn copy_tree(
    src: &Path,
    dst: &Path,
    shift: IdShift,
    progress: &mut dyn Progress,
    cancel: &Cancel,
) -> Result<(), BuildError> {
    let root_meta = src.metadata().map_err(BuildError::io("cannot read", src))?;
    let dst_meta = dst.metadata().map_err(BuildError::io("cannot read", dst))?;
    let mut c = Copier {
        shift,
        dev: root_meta.dev(),
        skip: (dst_meta.dev(), dst_meta.ino()),
        links: HashMap::new(),
        count: 0,
        progress,
        cancel,
    };
    c.dir_contents(src, dst)?;
    c.attributes(src, dst, &root_meta)
}

struct Copier<'a> {
    shift: IdShift,
    /// The source filesystem: other filesystems are not entered.
    dev: u64,
    /// The destination root, skipped if it lies inside the source.
    skip: (u64, u64),
    /// (dev, ino) of multiply-linked files already copied, to their copy.
    links: HashMap<(u64, u64), PathBuf>,
    count: u64,
    progress: &'a mut dyn Progress,
    cancel: &'a Cancel,
}

impl Copier<'_> {
    fn dir_contents(&mut self, src: &Path, dst: &Path) -> Result<(), BuildError> {
        let entries = std::fs::read_dir(src).map_err(BuildError::io("cannot read", src))?;
        for entry in entries {
            let entry = entry.map_err(BuildError::io("cannot read", src))?;
            self.entry(&entry.path(), &dst.join(entry.file_name()))?;
        }
        Ok(())
    }

    fn entry(&mut self, src: &Path, dst: &Path) -> Result<(), BuildError> {
        self.cancel.check()?;
        self.count += 1;
        if self.count.is_multiple_of(1000) {
            self.progress.step(self.count, None, &src.to_string_lossy());
        }
        let meta = src
            .symlink_metadata()
            .map_err(BuildError::io("cannot read", src))?;
        if (meta.dev(), meta.ino()) == self.skip {
            return Ok(());
        }
        let ft = meta.file_type();
        if !ft.is_dir() && meta.nlink() > 1 {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                return std::fs::hard_link(first, dst).map_err(BuildError::io("cannot link", dst));
            }
            self.links
                .insert((meta.dev(), meta.ino()), dst.to_path_buf());
        }
        if ft.is_dir() {
            std::fs::create_dir(dst).map_err(BuildError::io("cannot create", dst))?;
            if meta.dev() == self.dev {
                self.dir_contents(src, dst)?;
            }
        } else if ft.is_file() {
            copy_file(src, dst)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(src).map_err(BuildError::io("cannot read", src))?;
            std::os::unix::fs::symlink(target, dst)
                .map_err(BuildError::io("cannot create", dst))?;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            make_node(dst, &meta)?;
        } else {
            // Sockets belong to the process that bound them; a copy would be meaningless.
            return Ok(());
        }
        self.attributes(src, dst, &meta)
    }

    /// Owner first (chown clears set-id bits and file capabilities), then mode, xattrs, times.
    fn attributes(&self, src: &Path, dst: &Path, meta: &Metadata) -> Result<(), BuildError> {
        let (uid, gid) = (self.shift.map(meta.uid()), self.shift.map(meta.gid()));
        std::os::unix::fs::lchown(dst, Some(uid), Some(gid))
            .map_err(BuildError::io("cannot chown", dst))?;
        let is_link = meta.file_type().is_symlink();
        if !is_link {
            std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(BuildError::io("cannot chmod", dst))?;
            copy_xattrs(src, dst)?;
        }
        let at = TimeSpec::new(meta.atime(), meta.atime_nsec());
        let mt = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
        utimensat(None, dst, &at, &mt, UtimensatFlags::NoFollowSymlink).map_err(|e| {
            BuildError::Io {
                op: "cannot set times of",
                path: dst.into(),
                source: e.into(),
            }
        })
    }
}

fn copy_file(src: &Path, dst: &Path) -> Result<(), BuildError> {
    let mut from = File::open(src).map_err(BuildError::io("cannot open", src))?;
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dst)
        .map_err(BuildError::io("cannot create", dst))?;
    std::io::copy(&mut from, &mut to).map_err(BuildError::io("cannot copy to", dst))?;
    Ok(())
}

fn make_node(dst: &Path, meta: &Metadata) -> Result<(), BuildError> {
    let ft = meta.file_type();
    let kind = if ft.is_fifo() {
        SFlag::S_IFIFO
    } else if ft.is_char_device() {
        SFlag::S_IFCHR
    } else {
        SFlag::S_IFBLK
    };
    let mode = Mode::from_bits_truncate(meta.mode() & 0o777);
    mknod(dst, kind, mode, meta.rdev()).map_err(|e| BuildError::Io {
        op: "cannot create node",
        path: dst.into(),
        source: e.into(),
    })
}

/// Copies extended attributes; a destination without xattr support is not an error.
fn copy_xattrs(src: &Path, dst: &Path) -> Result<(), BuildError> {
    let names = match xattr::list(src) {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return Ok(()),
        Err(e) => return Err(BuildError::io("cannot list xattrs of", src)(e)),
    };
    for name in names {
        let Some(value) =
            xattr::get(src, &name).map_err(BuildError::io("cannot read xattrs of", src))?
        else {
            continue;
        };
        match xattr::set(dst, &name, &value) {
            Ok(()) => {}
            Err(e) if unsupported(&e) => return Ok(()),
            Err(e) => return Err(BuildError::io("cannot set xattrs of", dst)(e)),
        }
    }
    Ok(())
}

fn unsupported(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::NoProgress;
    use crate::testutil::TempDir;

    #[test]
    fn copies_contents_modes_links_and_times() {
        let t = TempDir::new("copy");
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("etc/sub")).unwrap();
        std::fs::write(src.join("etc/a"), "hello").unwrap();
        std::fs::set_permissions(src.join("etc/a"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::fs::hard_link(src.join("etc/a"), src.join("etc/sub/b")).unwrap();
        std::os::unix::fs::symlink("/nowhere", src.join("link")).unwrap();
        nix::unistd::mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        let dst = t.path().join("dst");
        std::fs::create_dir(&dst).unwrap();
        let me = nix::unistd::getuid().as_raw();
        let shift = IdShift { from: me, to: me };
        copy_tree(&src, &dst, shift, &mut NoProgress, &Cancel::default()).unwrap();
        assert_eq!(std::fs::read_to_string(dst.join("etc/a")).unwrap(), "hello");
        let a = dst.join("etc/a").metadata().unwrap();
        let b = dst.join("etc/sub/b").metadata().unwrap();
        assert_eq!(a.mode() & 0o777, 0o640);
        assert_eq!(a.ino(), b.ino(), "hard link preserved");
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            Path::new("/nowhere")
        );
        assert!(dst
            .join("fifo")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_fifo());
        let sm = src.join("etc/a").metadata().unwrap();
        assert_eq!((a.mtime(), a.mtime_nsec()), (sm.mtime(), sm.mtime_nsec()));
    }

    #[test]
    fn destination_inside_source_is_skipped() {
        let t = TempDir::new("copy-self");
        std::fs::write(t.path().join("f"), "x").unwrap();
        let dst = t.path().join("dst");
        std::fs::create_dir(&dst).unwrap();
        let me = nix::unistd::getuid().as_raw();
        copy_tree(
            t.path(),
            &dst,
            IdShift { from: me, to: me },
            &mut NoProgress,
            &Cancel::default(),
        )
        .unwrap();
        assert!(dst.join("f").exists());
        assert!(!dst.join("dst").exists());
    }
}
