//! The `host` method: a skeleton whose `/usr` is the host's, bind-mounted read-only at start.
//!
//! It costs no disk and no time: the server gets its own `/etc`, `/var`, `/home`... and runs
//! the host's programs. On a merged-usr host `/bin`, `/lib`... are symlinks into `/usr` and
//! are copied as such; on an older host they are bind-mounted too.

use std::path::Path;

use super::{skeleton, BuildError};
use crate::config::{MountConfig, ServerConfig};

/// Top-level directories that hold programs and libraries.
const PROGRAM_DIRS: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Host `/etc` files a shell and the dynamic linker expect; absent ones are skipped.
const ETC_FILES: &[&str] = &[
    "nsswitch.conf",
    "profile",
    "bash.bashrc",
    "shells",
    "inputrc",
    "ld.so.conf",
    "ld.so.cache",
    "resolv.conf",
    "environment",
    "login.defs",
];

/// The read-only bind mounts the server needs at start.
pub fn mounts() -> Vec<MountConfig> {
    let ro = |dir: &str| MountConfig {
        source: Path::new("/").join(dir),
        destination: Path::new("/").join(dir),
        typ: "bind".into(),
        options: vec!["ro".into()],
    };
    let mut out = vec![ro("usr")];
    for d in PROGRAM_DIRS {
        let host = Path::new("/").join(d);
        if host.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            out.push(ro(d));
        }
    }
    out
}

/// Creates the skeleton in `rootfs`.
pub fn populate(rootfs: &Path, _cfg: &ServerConfig) -> Result<(), BuildError> {
    skeleton::make_dirs(rootfs)?;
    let usr = rootfs.join("usr");
    std::fs::create_dir_all(&usr).map_err(BuildError::io("cannot create", &usr))?;
    for d in PROGRAM_DIRS {
        program_dir(rootfs, d)?;
    }
    let shell = if Path::new("/usr/bin/bash").exists() {
        "/bin/bash"
    } else {
        "/bin/sh"
    };
    skeleton::write_accounts(rootfs, shell)?;
    copy_etc(rootfs)?;
    skeleton::symlink(rootfs, "etc/os-release", "../usr/lib/os-release")?;
    Ok(())
}

/// Mirrors host `/<d>`: the same symlink, or an empty mount point for a real directory.
fn program_dir(rootfs: &Path, d: &str) -> Result<(), BuildError> {
    let host = Path::new("/").join(d);
    let Ok(meta) = host.symlink_metadata() else {
        return Ok(());
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&host).map_err(BuildError::io("cannot read", &host))?;
        return skeleton::symlink(rootfs, d, &target.to_string_lossy());
    }
    let p = skeleton::safe_path(rootfs, d)?;
    std::fs::create_dir_all(&p).map_err(BuildError::io("cannot create", &p))
}

fn copy_etc(rootfs: &Path) -> Result<(), BuildError> {
    for f in ETC_FILES {
        let host = Path::new("/etc").join(f);
        // resolv.conf is often a symlink into /run on the host: its content is what matters.
        if let Ok(text) = std::fs::read(&host) {
            let p = skeleton::safe_path(rootfs, &format!("etc/{f}"))?;
            std::fs::write(&p, text).map_err(BuildError::io("cannot write", &p))?;
        }
    }
    if let Ok(target) = std::fs::read_link("/etc/localtime") {
        skeleton::symlink(rootfs, "etc/localtime", &target.to_string_lossy())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn mounts_share_usr_read_only() {
        let m = mounts();
        assert_eq!(m[0].destination, Path::new("/usr"));
        assert_eq!(m[0].options, ["ro"]);
    }

    #[test]
    fn skeleton_mirrors_the_host_layout() {
        let t = TempDir::new("host");
        populate(t.path(), &ServerConfig::new(40000)).unwrap();
        assert!(t.path().join("usr").is_dir());
        if Path::new("/bin").is_symlink() {
            assert_eq!(
                std::fs::read_link(t.path().join("bin")).unwrap(),
                std::fs::read_link("/bin").unwrap()
            );
        }
        let passwd = std::fs::read_to_string(t.path().join("etc/passwd")).unwrap();
        assert!(passwd.starts_with("root:x:0:0:"));
    }
}
