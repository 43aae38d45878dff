//! `kill`: a signal to every process of a server (vkill), or to one of them.

use std::os::fd::AsFd;

use nix::unistd::Pid;

use super::{Manager, RunError, RunState};

impl Manager {
    /// Sends `sig` to process `pid` of server `name` (its pid inside the server, or its
    /// host pid), or to all of the server's processes when `pid` is `None`.
    pub fn kill(&self, name: &str, sig: i32, pid: Option<i32>) -> Result<(), RunError> {
        self.home.open(name)?;
        if self.state(name)? != RunState::Running {
            return Err(RunError::NotRunning { name: name.into() });
        }
        let Some(pid) = pid else {
            return self
                .runtime
                .kill(name, sig, true)
                .map_err(RunError::runtime(name));
        };
        let members = self
            .runtime
            .cgroup(name)
            .map_err(RunError::runtime(name))?
            .pids()
            .map_err(|e| RunError::runtime(name)(e.into()))?;
        let host_pid = members
            .iter()
            .copied()
            .find(|&p| inner_pid(p) == Some(pid))
            .or_else(|| members.contains(&pid).then_some(pid))
            .ok_or_else(|| RunError::ForeignPid {
                pid,
                name: name.into(),
            })?;
        // Through a pidfd: the pid cannot be reused between the check above and the signal.
        let fd = jaula_sys::process::pidfd_open(Pid::from_raw(host_pid)).map_err(|e| {
            RunError::io("cannot signal process", format!("/proc/{host_pid}"))(e.into())
        })?;
        jaula_sys::process::pidfd_send_signal(fd.as_fd(), sig).map_err(|e| {
            RunError::io("cannot signal process", format!("/proc/{host_pid}"))(e.into())
        })
    }
}

/// The pid of host process `pid` in its innermost pid namespace (`NSpid:`'s last field).
fn inner_pid(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_inner_pid_is_known() {
        let me = std::process::id() as i32;
        assert!(inner_pid(me).is_some());
    }
}
