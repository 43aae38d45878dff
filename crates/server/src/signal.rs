//! Signal names as admins write them (`TERM`, `SIGPWR`, `RTMIN+3`, `9`).

use nix::sys::signal::Signal;

/// The first real-time signal as glibc numbers it (the kernel's 32 and 33 are taken by the C
/// library's threading). systemd's "SIGRTMIN+3" is counted from here.
pub const SIGRTMIN: i32 = 34;
/// The last real-time signal.
pub const SIGRTMAX: i32 = 64;

/// The signal number for `name`, or `None` when it names no signal.
pub fn parse(name: &str) -> Option<i32> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Ok(n) = bare.parse::<i32>() {
        return (1..=SIGRTMAX).contains(&n).then_some(n);
    }
    if let Some(rest) = bare.strip_prefix("RTMIN") {
        let off = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+')?.parse().ok()?
        };
        return (SIGRTMIN + off <= SIGRTMAX).then_some(SIGRTMIN + off);
    }
    if let Some(rest) = bare.strip_prefix("RTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('-')?.parse().ok()?
        };
        return (SIGRTMAX - off >= SIGRTMIN).then_some(SIGRTMAX - off);
    }
    format!("SIG{bare}")
        .parse::<Signal>()
        .ok()
        .map(|s| s as i32)
}

/// A readable name for a signal number (`SIGTERM`, `SIGRTMIN+3`).
pub fn name(sig: i32) -> String {
    if (SIGRTMIN..=SIGRTMAX).contains(&sig) {
        return format!("SIGRTMIN+{}", sig - SIGRTMIN);
    }
    Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| sig.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("TERM"), Some(15));
        assert_eq!(parse("sigkill"), Some(9));
        assert_eq!(parse("SIGPWR"), Some(30));
        assert_eq!(parse("RTMIN+3"), Some(37));
        assert_eq!(parse("SIGRTMIN"), Some(34));
        assert_eq!(parse("RTMAX-1"), Some(63));
        assert_eq!(parse("9"), Some(9));
        for bad in ["", "FOO", "0", "65", "RTMIN+40", "RTMIN3"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(name(37), "SIGRTMIN+3");
        assert_eq!(name(15), "SIGTERM");
    }
}
