//! Terminal proxy for a foreground `run` without a console socket: our stdio
//! becomes the container's pty, in raw mode, with window size passed on.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};

use crate::error::{Error, Result};

pub(crate) struct Proxy {
    master: OwnedFd,
    saved: Option<Termios>,
    stdin_open: bool,
    master_open: bool,
}

/// Which fds have something to read.
pub(crate) struct Ready {
    pub signal: bool,
    stdin: bool,
    master: bool,
}

fn stdin() -> BorrowedFd<'static> {
    jaula_sys::process::borrow_raw(0)
}

fn stdout() -> BorrowedFd<'static> {
    jaula_sys::process::borrow_raw(1)
}

impl Proxy {
    pub fn new(master: OwnedFd) -> Result<Proxy> {
        let saved = termios::tcgetattr(stdin()).ok();
        if let Some(orig) = &saved {
            let mut raw = orig.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(stdin(), SetArg::TCSANOW, &raw)
                .map_err(|e| Error::sys("set raw mode", e))?;
        }
        let p = Proxy {
            master,
            saved,
            stdin_open: true,
            master_open: true,
        };
        p.resize();
        Ok(p)
    }

    /// Copies our terminal's size to the container's.
    pub fn resize(&self) {
        if let Ok((rows, cols)) = jaula_sys::term::get_size(stdin()) {
            let _ = jaula_sys::term::set_size(self.master.as_fd(), rows, cols);
        }
    }

    pub fn pump(&mut self, r: &Ready) {
        if r.stdin && !copy(stdin(), self.master.as_fd()) {
            self.stdin_open = false;
        }
        if r.master && !copy(self.master.as_fd(), stdout()) {
            self.master_open = false;
        }
    }

    /// Writes out whatever the program printed before it exited.
    pub fn drain(&mut self) {
        if !self.master_open {
            return;
        }
        loop {
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(n) if n > 0 && copy(self.master.as_fd(), stdout()) => {}
                _ => break,
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(stdin(), SetArg::TCSANOW, t);
        }
    }
}

/// Copies one chunk; false on EOF or error (a pty master gives EIO once the
/// last slave fd is closed).
fn copy(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from.as_raw_fd(), &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match nix::unistd::write(to, &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(Errno::EINTR) => {}
                    Err(_) => return false,
                }
            }
            true
        }
    }
}

/// Waits until a signal arrives or (with a proxy) either side has data.
pub(crate) fn wait(sfd: BorrowedFd<'_>, tty: Option<&Proxy>) -> Result<Ready, Errno> {
    let mut fds = vec![PollFd::new(sfd, PollFlags::POLLIN)];
    let (mut si, mut mi) = (None, None);
    if let Some(t) = tty {
        if t.stdin_open {
            si = Some(fds.len());
            fds.push(PollFd::new(stdin(), PollFlags::POLLIN));
        }
        if t.master_open {
            mi = Some(fds.len());
            fds.push(PollFd::new(t.master.as_fd(), PollFlags::POLLIN));
        }
    }
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    let hit = |i: Option<usize>| i.is_some_and(|i| fds[i].revents().is_some_and(|r| !r.is_empty()));
    Ok(Ready {
        signal: hit(Some(0)),
        stdin: hit(si),
        master: hit(mi),
    })
}
