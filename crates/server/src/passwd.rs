//! Users of a server, read from its own `/etc/passwd` and `/etc/group` (never the host's).

use std::path::{Path, PathBuf};

/// Why a user could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no user {user:?} in {path}")]
    NoUser { user: String, path: PathBuf },
}

/// One `/etc/passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    /// Supplementary groups from `/etc/group`.
    pub groups: Vec<u32>,
}

/// Looks `user` (a name or a numeric uid) up in the server's account files. A numeric uid
/// without an entry is accepted as itself with gid = uid, as `docker exec -u` does.
pub fn lookup(rootfs: &Path, user: &str) -> Result<Account, PasswdError> {
    let path = rootfs.join("etc/passwd");
    let text = read_confined(rootfs, "etc/passwd")?;
    let numeric: Option<u32> = user.parse().ok();
    let found = text.lines().filter_map(parse_line).find(|a| match numeric {
        Some(uid) => a.uid == uid,
        None => a.name == user,
    });
    let mut acct = match (found, numeric) {
        (Some(a), _) => a,
        (None, Some(uid)) => Account {
            name: user.into(),
            uid,
            gid: uid,
            home: "/".into(),
            shell: "/bin/sh".into(),
            groups: Vec::new(),
        },
        (None, None) => {
            return Err(PasswdError::NoUser {
                user: user.into(),
                path,
            })
        }
    };
    if let Ok(groups) = read_confined(rootfs, "etc/group") {
        acct.groups = member_groups(&groups, &acct.name, acct.gid);
    }
    Ok(acct)
}

/// Reads a file of the rootfs, refusing symlinks (a server's `/etc/passwd` could point at
/// the host's `/etc/shadow`, which the host-side `jaula` could read).
fn read_confined(rootfs: &Path, rel: &str) -> Result<String, PasswdError> {
    let path = rootfs.join(rel);
    let err = |source| PasswdError::Read {
        path: path.clone(),
        source,
    };
    let mut cur = rootfs.to_path_buf();
    for c in Path::new(rel).components() {
        cur.push(c);
        let m = cur.symlink_metadata().map_err(err)?;
        if m.file_type().is_symlink() {
            return Err(err(std::io::Error::other("is a symlink")));
        }
    }
    std::fs::read_to_string(&path).map_err(err)
}

fn parse_line(line: &str) -> Option<Account> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 || line.starts_with('#') {
        return None;
    }
    Some(Account {
        name: f[0].into(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: f[5].into(),
        shell: if f[6].is_empty() {
            "/bin/sh".into()
        } else {
            f[6].into()
        },
        groups: Vec::new(),
    })
}

/// Gids of the groups listing `user` as a member (the primary group excluded).
fn member_groups(group_text: &str, user: &str, primary: u32) -> Vec<u32> {
    group_text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            let gid: u32 = f[2].parse().ok()?;
            (gid != primary && f[3].split(',').any(|m| m == user)).then_some(gid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn rootfs() -> TempDir {
        let t = TempDir::new("passwd");
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nwww:x:33:33:www:/var/www:/usr/sbin/nologin\nbob:x:1000:1000::/home/bob:\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nwww:x:33:\nadm:x:4:bob,www\nbob:x:1000:\n",
        )
        .unwrap();
        t
    }

    #[test]
    fn looks_up_names_and_ids() {
        let t = rootfs();
        let root = lookup(t.path(), "root").unwrap();
        assert_eq!((root.uid, root.shell.as_str()), (0, "/bin/bash"));
        let bob = lookup(t.path(), "bob").unwrap();
        assert_eq!(
            (bob.uid, bob.gid, bob.shell.as_str()),
            (1000, 1000, "/bin/sh")
        );
        assert_eq!(bob.groups, [4]);
        assert_eq!(lookup(t.path(), "33").unwrap().name, "www");
        assert_eq!(lookup(t.path(), "4242").unwrap().gid, 4242);
        let e = lookup(t.path(), "alice").unwrap_err();
        assert!(e.to_string().contains("alice"), "{e}");
    }

    #[test]
    fn symlinked_passwd_is_refused() {
        let t = TempDir::new("passwd-link");
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("etc/passwd")).unwrap();
        assert!(lookup(t.path(), "root").is_err());
    }
}
