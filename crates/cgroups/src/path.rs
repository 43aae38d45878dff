//! Resolving OCI `linux.cgroupsPath` to a normalized path relative to every hierarchy root.
//!
//! Like runc's cgroupfs driver, absolute and relative paths are both taken relative to the
//! roots of the hierarchies (not to the runtime's own cgroup), so that a container's cgroup does
//! not depend on where the caller happened to run. With no path, the cgroup is `jaula/<id>`.

/// Why a cgroups path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("cgroups path {path:?} looks like a systemd \"slice:prefix:name\"; only the cgroupfs driver is built, use a /path instead")]
    Systemd { path: String },
    #[error("cgroups path {path:?} contains a \"..\" component")]
    DotDot { path: String },
    #[error("cgroups path {path:?} names the root cgroup; a container needs its own cgroup")]
    Root { path: String },
    #[error("container id {id:?} cannot be a cgroup directory name")]
    BadId { id: String },
    #[error("cgroups path {path:?} contains a control character")]
    Control { path: String },
}

/// The parent directory of default cgroups.
pub const DEFAULT_PARENT: &str = "jaula";

/// The normalized relative path ("a/b/c": no leading slash, no empty or "." components).
pub fn resolve(cgroups_path: Option<&str>, id: &str) -> Result<String, PathError> {
    match cgroups_path {
        None => default_path(id),
        Some(p) => normalize(p),
    }
}

fn default_path(id: &str) -> Result<String, PathError> {
    let bad = id.is_empty() || id == "." || id == ".." || id.contains('/');
    if bad || id.chars().any(char::is_control) {
        return Err(PathError::BadId { id: id.into() });
    }
    Ok(format!("{DEFAULT_PARENT}/{id}"))
}

/// Normalizes an explicit path. A ':' is refused outright: it is how systemd-driver paths
/// ("system.slice:docker:abc") are written, and guessing would put the container in an
/// unexpected place.
pub fn normalize(path: &str) -> Result<String, PathError> {
    if path.contains(':') {
        return Err(PathError::Systemd { path: path.into() });
    }
    if path.chars().any(char::is_control) {
        return Err(PathError::Control { path: path.into() });
    }
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(PathError::DotDot { path: path.into() }),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(PathError::Root { path: path.into() });
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_under_jaula() {
        assert_eq!(resolve(None, "abc").unwrap(), "jaula/abc");
    }

    #[test]
    fn absolute_and_relative_are_both_from_the_root() {
        assert_eq!(resolve(Some("/foo/bar"), "x").unwrap(), "foo/bar");
        assert_eq!(resolve(Some("foo/bar"), "x").unwrap(), "foo/bar");
        assert_eq!(resolve(Some("//foo/./bar/"), "x").unwrap(), "foo/bar");
    }

    #[test]
    fn dotdot_is_refused() {
        assert_eq!(
            resolve(Some("/foo/../../etc"), "x"),
            Err(PathError::DotDot {
                path: "/foo/../../etc".into()
            })
        );
    }

    #[test]
    fn systemd_paths_are_refused() {
        let e = resolve(Some("system.slice:jaula:abc"), "x").unwrap_err();
        assert!(matches!(e, PathError::Systemd { .. }));
        assert!(e.to_string().contains("system.slice:jaula:abc"));
    }

    #[test]
    fn root_is_refused() {
        assert!(matches!(
            resolve(Some("/"), "x"),
            Err(PathError::Root { .. })
        ));
        assert!(matches!(
            resolve(Some("/./"), "x"),
            Err(PathError::Root { .. })
        ));
    }

    #[test]
    fn bad_ids_are_refused() {
        for id in ["", "..", "a/b", "a\nb"] {
            assert!(
                matches!(resolve(None, id), Err(PathError::BadId { .. })),
                "{id:?}"
            );
        }
    }
}
