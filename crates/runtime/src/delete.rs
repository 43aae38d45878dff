//! `delete`: kill what is left, remove the cgroup and the state, run poststop hooks.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::store::{is_alive, Record};
use crate::Runtime;
use jaula_spec::Status;

impl Runtime {
    /// Without `force`, only a stopped or created container is deleted.
    /// With it, also a running one, or the remains of a runtime killed mid-create.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let h = self.store().open(id)?;
        let Some(rec) = h.read()? else {
            // Killed before the first state write: nothing else was made yet.
            return h.remove();
        };
        // We hold the lock, so a "creating" record means its creator died.
        let status = rec.status(&h.dir);
        if matches!(status, Status::Running | Status::Paused) && !force {
            return Err(Error::WrongState {
                id: id.to_owned(),
                op: "delete",
                status,
            });
        }
        let cg = jaula_cgroups::Cgroup::open(&rec.cgroup_path)?;
        stop_everything(&rec, &cg)?;
        cg.destroy()?;
        let state = serde_json::to_vec(&rec.to_state(Status::Stopped)).unwrap_or_default();
        h.remove()?;
        for w in crate::hooks::run_all_lenient(
            "poststop",
            &rec.config.hooks.clone().unwrap_or_default().poststop,
            &state,
        ) {
            log::warn!("{w}");
        }
        Ok(())
    }
}

/// SIGKILLs the init and every process of the cgroup, then waits for the init
/// to be gone so the cgroup can be removed.
fn stop_everything(rec: &Record, cg: &jaula_cgroups::Cgroup) -> Result<()> {
    let pidfd = rec
        .pid
        .filter(|p| is_alive(*p, rec.pid_start))
        .and_then(|p| jaula_sys::process::pidfd_open(nix::unistd::Pid::from_raw(p)).ok());
    if let Some(fd) = &pidfd {
        let _ = jaula_sys::process::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
    }
    cg.kill_all(jaula_cgroups::Signal::SIGKILL)?;
    if let (Some(fd), Some(pid)) = (&pidfd, rec.pid) {
        wait_gone(fd.as_fd(), pid, rec.pid_start, Duration::from_secs(10));
    }
    Ok(())
}

/// Polls the pidfd until the process has exited (a zombie counts as gone).
pub(crate) fn wait_gone(fd: std::os::fd::BorrowedFd<'_>, pid: i32, start: u64, limit: Duration) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = Instant::now() + limit;
    while is_alive(pid, start) && Instant::now() < deadline {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(100u16));
    }
}
