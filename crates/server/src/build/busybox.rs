//! The `busybox` method: a static busybox and one symlink per applet.

use std::path::Path;
use std::process::Command;

use super::{skeleton, BuildError};

/// Installs `binary` as `/bin/busybox` and links its applets where `--list-full` puts them.
pub fn populate(rootfs: &Path, binary: &Path) -> Result<(), BuildError> {
    skeleton::make_dirs(rootfs)?;
    for d in ["bin", "sbin", "usr", "usr/bin", "usr/sbin"] {
        let p = skeleton::safe_path(rootfs, d)?;
        std::fs::create_dir_all(&p).map_err(BuildError::io("cannot create", &p))?;
    }
    let dest = rootfs.join("bin/busybox");
    std::fs::copy(binary, &dest).map_err(BuildError::io("cannot copy busybox to", &dest))?;
    skeleton::set_mode(&dest, 0o755)?;
    for applet in applets(binary)? {
        if let Some(parent) = Path::new(&applet).parent() {
            let p = skeleton::safe_path(rootfs, &parent.to_string_lossy())?;
            std::fs::create_dir_all(&p).map_err(BuildError::io("cannot create", &p))?;
        }
        skeleton::symlink(rootfs, &applet, "/bin/busybox")?;
    }
    skeleton::write_accounts(rootfs, "/bin/sh")?;
    // busybox init runs this at boot; an empty one keeps it from complaining.
    skeleton::write_file(rootfs, "etc/inittab", INITTAB, 0o644)?;
    Ok(())
}

/// busybox's own inittab for the `init` style: no gettys, since a server has no ttys.
const INITTAB: &str = "::sysinit:/bin/sh -c '[ -x /etc/rc.local ] && exec /etc/rc.local; exit 0'\n::restart:/sbin/init\n";

/// Applet paths relative to `/` (`usr/bin/wget`), without `bin/busybox` itself: busybox
/// lists itself, and linking it would replace the binary by a symlink to itself.
fn applets(binary: &Path) -> Result<Vec<String>, BuildError> {
    let out = Command::new(binary)
        .arg("--list-full")
        .output()
        .map_err(BuildError::io("cannot run", binary))?;
    if !out.status.success() {
        return Err(BuildError::Busybox {
            program: binary.into(),
            status: out.status.to_string(),
        });
    }
    Ok(parse_list(&String::from_utf8_lossy(&out.stdout)))
}

fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim().trim_start_matches('/'))
        .filter(|l| {
            !l.is_empty()
                && !l.contains("..")
                && Path::new(l).file_name() != Some("busybox".as_ref())
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_skips_busybox_itself() {
        let l = parse_list("usr/bin/[\nbin/busybox\nbin/sh\n/sbin/init\n../x\n");
        assert_eq!(l, ["usr/bin/[", "bin/sh", "sbin/init"]);
    }
}
