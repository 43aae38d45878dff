//! The caller's side of `--console-socket` and a host pty, for the terminal and exec suites.
//!
//! `ConsoleSocket` binds a unix listener and, in a thread, accepts one connection and takes
//! the pty master the runtime sends with SCM_RIGHTS (as containerd and conmon do). `Pty`
//! reads and writes such a master with timeouts, so that a runtime that never connects or
//! never hangs up fails the test instead of hanging it.
#![allow(dead_code)]

use std::fs::File;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use tempfile::TempDir;

/// How long a test waits for the runtime to connect or for the container to write.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// What the runtime sent on the console socket.
#[derive(Debug)]
pub struct Received {
    pub master: OwnedFd,
    /// The message payload (runc sends the name "/dev/ptmx").
    pub payload: Vec<u8>,
}

/// A listening console socket; the runtime connects once and sends the pty master.
pub struct ConsoleSocket {
    dir: TempDir,
    path: PathBuf,
    rx: mpsc::Receiver<Result<Received, String>>,
}

impl ConsoleSocket {
    pub fn new() -> ConsoleSocket {
        let dir = tempfile::Builder::new()
            .prefix("jaula-console-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // The receiver may be gone when the test failed early: nothing to report then.
            let _ = tx.send(accept_master(&listener));
        });
        ConsoleSocket { dir, path, rx }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Waits for the runtime to hand over the pty master.
    #[track_caller]
    pub fn receive(&self) -> Received {
        match self.rx.recv_timeout(TIMEOUT) {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("console socket {}: {e}", self.path.display()),
            Err(e) => panic!("no pty master on {} ({e})", self.path.display()),
        }
    }

    /// Waits for the master and checks the payload runc sends with it.
    #[track_caller]
    pub fn pty(&self) -> Pty {
        let r = self.receive();
        assert_eq!(
            String::from_utf8_lossy(&r.payload),
            "/dev/ptmx",
            "console socket payload"
        );
        Pty::new(r.master)
    }
}

impl Default for ConsoleSocket {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        // Wake the accepting thread if the runtime never connected; it then ends on EOF.
        let _ = UnixStream::connect(&self.path);
    }
}

/// Accepts one connection and receives one descriptor from it.
fn accept_master(listener: &UnixListener) -> Result<Received, String> {
    let (conn, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    let bytes = msg.bytes;
    let mut fds: Vec<RawFd> = Vec::new();
    for c in msg.cmsgs().map_err(|e| format!("control messages: {e}"))? {
        if let ControlMessageOwned::ScmRights(v) = c {
            fds.extend(v);
        }
    }
    let owned: Vec<OwnedFd> = fds
        .into_iter()
        // SAFETY: each number was installed in our table by this recvmsg (SCM_RIGHTS) and
        // nothing else knows it, so this is its only owner.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    let [master]: [OwnedFd; 1] = owned
        .try_into()
        .map_err(|v: Vec<OwnedFd>| format!("expected one fd, got {}", v.len()))?;
    Ok(Received {
        master,
        payload: buf[..bytes].to_vec(),
    })
}

/// Why a read stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Every slave descriptor is closed (EIO on the master) or EOF.
    Hangup,
    /// The deadline passed.
    Timeout,
    /// The caller's condition holds for the text read so far.
    Matched,
}

/// A pty master with everything read from it so far.
pub struct Pty {
    file: File,
    pub seen: String,
}

impl Pty {
    pub fn new(master: OwnedFd) -> Pty {
        Pty {
            file: File::from(master),
            seen: String::new(),
        }
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Types `text` into the terminal.
    pub fn write(&mut self, text: &str) {
        self.file.write_all(text.as_bytes()).unwrap();
    }

    /// Reads whatever arrives until `done` holds for the text so far, a hangup, or `limit`.
    fn read_while(&mut self, limit: Duration, done: impl Fn(&str) -> bool) -> End {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while !done(&self.seen) {
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() {
                return End::Timeout;
            }
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            let wait = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, wait) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => panic!("poll pty master: {e}"),
            }
            match self.file.read(&mut buf) {
                Ok(0) => return End::Hangup,
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.raw_os_error() == Some(libc::EIO) => return End::Hangup,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read pty master: {e}"),
            }
        }
        End::Matched
    }

    /// Reads until `needle` appears; panics with the text so far when it does not.
    #[track_caller]
    pub fn expect(&mut self, needle: &str) -> &str {
        let end = self.read_while(TIMEOUT, |s| s.contains(needle));
        assert!(
            self.seen.contains(needle),
            "pty never showed {needle:?} ({end:?}); it showed {:?}",
            self.seen
        );
        &self.seen
    }

    /// Reads until every slave descriptor is closed (the process and its children exited).
    #[track_caller]
    pub fn read_to_hangup(&mut self) -> &str {
        let end = self.read_while(TIMEOUT, |_| false);
        assert_eq!(
            end,
            End::Hangup,
            "pty still open after {TIMEOUT:?}; it showed {:?}",
            self.seen
        );
        &self.seen
    }
}
