//! `run`: create and start in one go; in the foreground, forward signals and
//! return the container's exit code, then clean up as `delete` would.

use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::create::Mode;
use crate::error::{Error, Result};
use crate::sync::ToChild;
use crate::{CreateOptions, Runtime};

/// Signals a foreground `run` passes on to the container's init.
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGPWR,
    Signal::SIGCONT,
    Signal::SIGALRM,
    Signal::SIGWINCH,
];

impl Runtime {
    /// Returns the exit code (128+N for a signal) in the foreground, 0 detached.
    pub fn run(&self, id: &str, opts: CreateOptions, detach: bool) -> Result<i32> {
        let foreground = !detach;
        let mut mask = SigSet::empty();
        if foreground {
            // Adopt the init if an intermediate process forked it, and catch the
            // signals before anything can be lost between fork and wait.
            nix::sys::prctl::set_child_subreaper(true)
                .map_err(|e| Error::sys("set subreaper", e))?;
            for s in FORWARDED.iter().chain([Signal::SIGCHLD].iter()) {
                mask.add(*s);
            }
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
                .map_err(|e| Error::sys("block signals", e))?;
        }
        let mode = if detach { Mode::RunDetached } else { Mode::Run };
        let s = self.spawn(id, opts, mode)?;
        let (pid, master) = (s.pid, s.pty_master);
        let state =
            serde_json::to_vec(&s.record.to_state(jaula_spec::Status::Created)).unwrap_or_default();
        let poststart = s.plan.hooks.poststart.clone();
        // Others (kill, delete, state) must not wait behind our lock while we run.
        drop(s.handle);
        if let Err(e) = crate::start::wait_for_exec(&s.chan, ToChild::Start(state.clone())) {
            let _ = self.delete(id, true);
            return Err(e);
        }
        drop(s.chan);
        let state =
            serde_json::to_vec(&s.record.to_state(jaula_spec::Status::Running)).unwrap_or_default();
        for w in crate::hooks::run_all_lenient("poststart", &poststart, &state) {
            log::warn!("{w}");
        }
        if detach {
            return Ok(0);
        }
        let code = wait_forwarding(pid, &mask, master);
        self.delete(id, true)?;
        code
    }
}

/// Forwards signals to `init` until it exits; reaps every child meanwhile. With
/// a pty master, proxies it to our own stdio.
pub(crate) fn wait_forwarding(init: Pid, mask: &SigSet, master: Option<OwnedFd>) -> Result<i32> {
    let sfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::sys("signalfd", e))?;
    let mut tty = master.map(crate::tty::Proxy::new).transpose()?;
    loop {
        if let Some(code) = reap(init) {
            if let Some(t) = tty.as_mut() {
                t.drain();
            }
            return Ok(code);
        }
        let ready =
            crate::tty::wait(sfd.as_fd(), tty.as_ref()).map_err(|e| Error::sys("poll", e))?;
        if ready.signal {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    continue;
                }
                if sig == libc::SIGWINCH {
                    if let Some(t) = tty.as_ref() {
                        t.resize();
                    }
                    continue;
                }
                let _ = nix::sys::signal::kill(init, Signal::try_from(sig).ok());
            }
        }
        if let Some(t) = tty.as_mut() {
            t.pump(&ready);
        }
    }
}

/// Reaps exited children; returns the init's exit code once it has exited.
fn reap(init: Pid) -> Option<i32> {
    loop {
        match nix::sys::wait::waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, c)) if p == init => return Some(c),
            Ok(WaitStatus::Signaled(p, s, _)) if p == init => return Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}
