//! The built-in init (`InitMode::Reaper`): PID 1 that runs the program as its child.
//!
//! A distribution's services expect an init that reaps orphans and passes on
//! stop signals; a bare program as PID 1 does neither. This loop does both and
//! exits with the program's status, which ends the container.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{fail, Step};
use crate::plan::Plan;
use crate::sync::{Channel, FromChild};
use jaula_sys::process::{fork, Forked};

pub fn run(exe: &CString, plan: &Plan, conn: &Channel) -> Step<Infallible> {
    let all = SigSet::all();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)
        .map_err(fail("block signals"))?;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(fail("pipe"))?;
    let child = match fork().map_err(fail("fork program"))? {
        Forked::Child => {
            drop(r);
            let _ = nix::sys::signal::sigprocmask(
                SigmaskHow::SIG_SETMASK,
                Some(&SigSet::empty()),
                None,
            );
            let err = match super::exec(exe, plan) {
                Err(e) => e,
                Ok(never) => match never {},
            };
            let _ = conn.send_to_parent(&FromChild::Fail(err));
            jaula_sys::process::exit_now(127)
        }
        Forked::Parent(pid) => pid,
    };
    drop(w);
    // EOF on the pipe: the program exec'd (or died). Either way `start` may now
    // see EOF on its connection too, so let go of our copy.
    let mut b = [0u8; 1];
    let _ = nix::unistd::read(r.as_raw_fd(), &mut b);
    if let Ok(null) = jaula_sys::fs::open(
        std::path::Path::new("/dev/null"),
        nix::fcntl::OFlag::O_RDWR,
        0,
    ) {
        let _ = jaula_sys::process::dup_onto(null.as_fd(), conn.fd().as_raw_fd());
    }
    jaula_sys::process::set_name("jaula:[reaper]");
    loop {
        let Ok(sig) = all.wait() else { continue };
        if sig == Signal::SIGCHLD {
            if let Some(code) = reap(child) {
                jaula_sys::process::exit_now(code);
            }
        } else {
            let _ = nix::sys::signal::kill(child, sig);
        }
    }
}

/// Reaps every exited process; returns the program's exit code once it is gone.
fn reap(child: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match nix::sys::wait::waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, c)) if pid == child => code = Some(c),
            Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => code = Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => {}
        }
    }
}
