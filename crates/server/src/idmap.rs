//! The user-id range of each server: context `c` owns host ids `c << 16 .. (c << 16) + 65536`.
//!
//! Deriving the range from the context id keeps ranges disjoint without a registry, and makes
//! a host-side `ls -ln` or `ps` readable: `id >> 16` is the context.

use crate::config::ServerConfig;

/// Ids per server: a full 16-bit range, so every distribution user fits.
pub const RANGE: u32 = 65536;
/// The overflow id inside a server ("nobody").
pub const NOBODY: u32 = 65534;

/// First host id of the server's range: 0 for a privileged server (no user namespace).
pub fn host_base(cfg: &ServerConfig) -> u32 {
    if cfg.security.privileged {
        0
    } else {
        cfg.context << 16
    }
}

/// Moves ids from one server range to another (used while building and cloning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdShift {
    pub from: u32,
    pub to: u32,
}

impl IdShift {
    /// Host-root-owned files (a fresh build) into the range starting at `to`.
    pub fn from_root(to: u32) -> IdShift {
        IdShift { from: 0, to }
    }

    /// True when nothing moves.
    pub fn is_identity(self) -> bool {
        self.from == self.to
    }

    /// The new id; ids outside the source range become the target's "nobody", because they
    /// would be unmapped (and so unusable) inside the server anyway.
    pub fn map(self, id: u32) -> u32 {
        if self.is_identity() {
            return id;
        }
        match id.checked_sub(self.from) {
            Some(off) if off < RANGE => self.to + off,
            _ => self.to + NOBODY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_the_context() {
        let mut cfg = ServerConfig::new(40000);
        assert_eq!(host_base(&cfg), 2_621_440_000);
        cfg.security.privileged = true;
        assert_eq!(host_base(&cfg), 0);
        // The top context still fits below u32::MAX.
        assert!(
            u64::from(crate::config::MAX_CONTEXT << 16) + u64::from(RANGE) <= u64::from(u32::MAX)
        );
    }

    #[test]
    fn shifting_maps_inside_and_squashes_outside() {
        let s = IdShift {
            from: 0,
            to: 40000 << 16,
        };
        assert_eq!(s.map(0), 40000 << 16);
        assert_eq!(s.map(1000), (40000 << 16) + 1000);
        assert_eq!(s.map(70000), (40000 << 16) + NOBODY);
        let back = IdShift {
            from: 40000 << 16,
            to: 40001 << 16,
        };
        assert_eq!(back.map((40000 << 16) + 5), (40001 << 16) + 5);
        assert_eq!(back.map(0), (40001 << 16) + NOBODY);
        let same = IdShift { from: 0, to: 0 };
        assert_eq!(same.map(123_456), 123_456);
    }
}
