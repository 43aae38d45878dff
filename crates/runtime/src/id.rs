//! Container ID validation: IDs become directory names, so they must be inert.

use crate::error::{Error, Result};

/// Longest accepted ID. Leaves room under NAME_MAX for suffixes we add.
pub const MAX_ID_LEN: usize = 200;

/// Accepts `[A-Za-z0-9_+.-]{1,200}` except `.` and `..`, like runc.
pub fn validate(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > MAX_ID_LEN {
        return bad("longer than 200 characters");
    }
    if id == "." || id == ".." {
        return bad("reserved name");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'.' | b'-'))
    {
        return bad("only A-Z a-z 0-9 _ + . - are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["a", "abc-123", "x_y.z+1", "A.B"] {
            validate(id).unwrap();
        }
    }

    #[test]
    fn rejects_traversal_and_odd_bytes() {
        for id in ["", ".", "..", "../x", "a/b", "a b", "é", &"x".repeat(201)] {
            assert!(validate(id).is_err(), "{id:?} accepted");
        }
    }
}
