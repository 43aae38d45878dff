//! The directories and identity files every root filesystem gets, written without ever
//! following a symlink out of the rootfs (a tarball may carry `etc -> /etc`).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::BuildError;

/// The directories of a Linux root filesystem, with their modes.
const DIRS: &[(&str, u32)] = &[
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("mnt", 0o755),
    ("opt", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("run", 0o755),
    ("srv", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("var", 0o755),
    ("var/cache", 0o755),
    ("var/lib", 0o755),
    ("var/log", 0o755),
    ("var/spool", 0o755),
    ("var/tmp", 0o1777),
];

/// Creates the (empty) rootfs directory itself.
pub fn make_rootfs_dir(rootfs: &Path) -> Result<(), BuildError> {
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(rootfs)
        .map_err(BuildError::io("cannot create", rootfs))?;
    set_mode(rootfs, 0o755)
}

/// Creates the standard directories that do not exist yet.
pub fn make_dirs(rootfs: &Path) -> Result<(), BuildError> {
    for (rel, mode) in DIRS {
        let p = safe_path(rootfs, rel)?;
        if p.symlink_metadata().is_err() {
            std::fs::create_dir(&p).map_err(BuildError::io("cannot create", &p))?;
            set_mode(&p, *mode)?;
        }
    }
    Ok(())
}

/// Writes `/etc/hostname` and, if missing, `/etc/hosts`, when the rootfs has an `/etc`.
pub fn write_identity(rootfs: &Path, hostname: &str) -> Result<(), BuildError> {
    let etc = rootfs.join("etc");
    if !etc.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    write_file(rootfs, "etc/hostname", &format!("{hostname}\n"), 0o644)?;
    if etc.join("hosts").symlink_metadata().is_err() {
        let hosts = format!(
            "127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        );
        write_file(rootfs, "etc/hosts", &hosts, 0o644)?;
    }
    Ok(())
}

/// `rootfs/rel`, refusing `..` and any symlink among the parents.
pub fn safe_path(rootfs: &Path, rel: &str) -> Result<PathBuf, BuildError> {
    let mut p = rootfs.to_path_buf();
    let comps: Vec<Component> = Path::new(rel).components().collect();
    for (i, c) in comps.iter().enumerate() {
        let Component::Normal(part) = c else {
            return Err(BuildError::Invalid {
                key: "rootfs path".into(),
                message: format!("{rel:?} is not a plain relative path"),
            });
        };
        p.push(part);
        let is_parent = i + 1 < comps.len();
        if is_parent && p.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
            return Err(BuildError::Io {
                op: "refusing to write through",
                path: p,
                source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
            });
        }
    }
    Ok(p)
}

/// Writes a file inside the rootfs, replacing a symlink rather than following it.
pub fn write_file(rootfs: &Path, rel: &str, content: &str, mode: u32) -> Result<(), BuildError> {
    let p = safe_path(rootfs, rel)?;
    if p.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        std::fs::remove_file(&p).map_err(BuildError::io("cannot replace", &p))?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&p)
        .map_err(BuildError::io("cannot write", &p))?;
    f.write_all(content.as_bytes())
        .map_err(BuildError::io("cannot write", &p))?;
    set_mode(&p, mode)
}

/// A symlink inside the rootfs (replacing nothing: an existing entry is left alone).
pub fn symlink(rootfs: &Path, rel: &str, target: &str) -> Result<(), BuildError> {
    let p = safe_path(rootfs, rel)?;
    if p.symlink_metadata().is_ok() {
        return Ok(());
    }
    std::os::unix::fs::symlink(target, &p).map_err(BuildError::io("cannot create symlink", &p))
}

/// Sets the exact mode (the umask would otherwise trim 1777 and 0755 requests).
pub fn set_mode(p: &Path, mode: u32) -> Result<(), BuildError> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(BuildError::io("cannot chmod", p))
}

/// A minimal account database: root with `shell`, and nobody.
pub fn write_accounts(rootfs: &Path, shell: &str) -> Result<(), BuildError> {
    let passwd = format!(
        "root:x:0:0:root:/root:{shell}\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    );
    write_file(rootfs, "etc/passwd", &passwd, 0o644)?;
    write_file(rootfs, "etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644)?;
    write_file(
        rootfs,
        "etc/shadow",
        "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n",
        0o600,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn dirs_get_their_modes() {
        let t = TempDir::new("skel");
        make_dirs(t.path()).unwrap();
        let m = t.path().join("tmp").metadata().unwrap().mode();
        assert_eq!(m & 0o7777, 0o1777);
        assert_eq!(
            t.path().join("root").metadata().unwrap().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn writes_never_follow_symlinks() {
        let t = TempDir::new("skel-link");
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let rootfs = t.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        std::os::unix::fs::symlink(&outside, rootfs.join("etc")).unwrap();
        assert!(write_file(&rootfs, "etc/hostname", "x", 0o644).is_err());
        // write_identity skips a rootfs whose /etc is not a real directory.
        write_identity(&rootfs, "x").unwrap();
        assert!(!outside.join("hostname").exists());
        std::fs::remove_file(rootfs.join("etc")).unwrap();
        std::fs::create_dir(rootfs.join("etc")).unwrap();
        std::os::unix::fs::symlink(outside.join("victim"), rootfs.join("etc/hostname")).unwrap();
        write_identity(&rootfs, "web").unwrap();
        assert!(!outside.join("victim").exists());
        assert_eq!(
            std::fs::read_to_string(rootfs.join("etc/hostname")).unwrap(),
            "web\n"
        );
        assert!(std::fs::read_to_string(rootfs.join("etc/hosts"))
            .unwrap()
            .contains("web"));
        assert!(safe_path(&rootfs, "../x").is_err());
    }
}
