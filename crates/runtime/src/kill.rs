//! `kill`: signal the init (or, with `--all`, every process of the container).

use std::os::fd::AsFd;

use crate::error::{Error, Result};
use crate::store::is_alive;
use crate::Runtime;
use jaula_spec::Status;

impl Runtime {
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        crate::id::validate(id)?;
        let dir = self.store().dir(id);
        let rec = self
            .store()
            .read(id)?
            .ok_or_else(|| Error::NotFound { id: id.to_owned() })?;
        let status = rec.status(&dir);
        if matches!(status, Status::Stopped | Status::Creating) && !all {
            return Err(Error::NotRunning { id: id.to_owned() });
        }
        if all {
            let cg = jaula_cgroups::Cgroup::open(&rec.cgroup_path)?;
            let sig = nix::sys::signal::Signal::try_from(signal)
                .map_err(|_| Error::BadSignal(signal.to_string()))?;
            return Ok(cg.kill_all(sig)?);
        }
        let pid = rec
            .pid
            .ok_or_else(|| Error::NotRunning { id: id.to_owned() })?;
        signal_pid(pid, rec.pid_start, signal).map_err(|e| match e {
            nix::errno::Errno::ESRCH => Error::NotRunning { id: id.to_owned() },
            e => Error::sys(format!("kill {pid}"), e),
        })
    }
}

/// Signals `pid` through a pidfd, after checking (with the pidfd held, so the
/// pid cannot be recycled meanwhile) that it is still the process we started.
pub(crate) fn signal_pid(pid: i32, start: u64, signal: i32) -> Result<(), nix::errno::Errno> {
    let fd = jaula_sys::process::pidfd_open(nix::unistd::Pid::from_raw(pid))?;
    if !is_alive(pid, start) {
        return Err(nix::errno::Errno::ESRCH);
    }
    jaula_sys::process::pidfd_send_signal(fd.as_fd(), signal)
}

/// Parses a signal given as a number, `KILL` or `SIGKILL` (any case).
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return if (0..=64).contains(&n) {
            Ok(n)
        } else {
            Err(Error::BadSignal(s.to_owned()))
        };
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.trim_start_matches('+')
                .parse()
                .map_err(|_| Error::BadSignal(s.to_owned()))?
        };
        return Ok(libc::SIGRTMIN() + off);
    }
    if let Some(rest) = name.strip_prefix("SIGRTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.trim_start_matches('-')
                .parse()
                .map_err(|_| Error::BadSignal(s.to_owned()))?
        };
        return Ok(libc::SIGRTMAX() - off);
    }
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| Error::BadSignal(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::parse_signal;

    #[test]
    fn signal_names_and_numbers() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), libc::SIGRTMIN() + 3);
        assert!(parse_signal("BOGUS").is_err());
        assert!(parse_signal("99").is_err());
    }
}
