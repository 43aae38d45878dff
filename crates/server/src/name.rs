//! Server names: the one rule every verb checks before it touches the disk.
//!
//! A name is a directory under `JAULA_HOME`, the OCI container id, a cgroup directory and the
//! default hostname, so it must be safe in all four places.

/// Longest accepted name: a hostname label is at most 63 bytes.
pub const MAX_LEN: usize = 63;

/// Why a server name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "invalid server name {name:?}: it must match [a-z0-9][a-z0-9_.-]* and not contain \"..\""
    )]
    Pattern { name: String },
    #[error("invalid server name {name:?}: longer than {MAX_LEN} characters")]
    TooLong { name: String },
}

/// Checks `name` against `[a-z0-9][a-z0-9_.-]*`, no `..`, at most [`MAX_LEN`] bytes.
pub fn validate(name: &str) -> Result<(), NameError> {
    let first_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if !first_ok || !rest_ok || name.contains("..") {
        return Err(NameError::Pattern { name: name.into() });
    }
    if name.len() > MAX_LEN {
        return Err(NameError::TooLong { name: name.into() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for n in ["web1", "0", "a.b-c_d", "db-01.example"] {
            assert_eq!(validate(n), Ok(()), "{n}");
        }
    }

    #[test]
    fn refuses_bad_names() {
        for n in [
            "", "Web", "-a", ".a", "_a", "a/b", "a..b", "a b", "é", "a\n",
        ] {
            assert!(
                matches!(validate(n), Err(NameError::Pattern { .. })),
                "{n:?}"
            );
        }
    }

    #[test]
    fn refuses_long_names() {
        let n = "a".repeat(MAX_LEN + 1);
        assert!(matches!(validate(&n), Err(NameError::TooLong { .. })));
        assert_eq!(validate(&"a".repeat(MAX_LEN)), Ok(()));
    }
}
