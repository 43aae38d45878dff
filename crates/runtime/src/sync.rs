//! The typed channel between the runtime and the container's setup process.
//!
//! A SOCK_SEQPACKET socketpair keeps message boundaries, so each message is one
//! `send`: a tag byte and a payload. Fds travel with SCM_RIGHTS. The child side
//! only ever sees bytes and integers; JSON stays in the parent.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};

/// Messages from the runtime to the setup process.
#[derive(Debug, PartialEq, Eq)]
pub enum ToChild {
    /// Maps are written and the cgroup joined: go on. Carries the state JSON the
    /// createContainer hooks get on stdin.
    Go(Vec<u8>),
    /// prestart and createRuntime hooks have run.
    HooksDone,
    /// The rootfs is mounted; the message carries an O_PATH fd on it.
    Root,
    /// `start` was called; carries the state JSON for startContainer hooks.
    Start(Vec<u8>),
}

/// Messages from the setup process (or the intermediate) to the runtime.
#[derive(Debug, PartialEq, Eq)]
pub enum FromChild {
    /// The intermediate created the init: its pid in the runtime's pid namespace.
    InitPid(i32),
    /// The intermediate unshared its user namespace: write the id maps now.
    NeedMaps,
    /// Namespaces and mounts are ready: run prestart and createRuntime hooks.
    RunHooks,
    /// `/` is a slave mount now: mount the rootfs in our mount namespace.
    NeedRoot,
    /// The pty master of a `terminal: true` process.
    PtyMaster,
    /// The seccomp user-notification listener.
    SeccompListener,
    /// Setup finished; waiting for `start`.
    Ready,
    /// Setup failed with this message.
    Fail(String),
}

impl ToChild {
    fn encode(&self) -> Vec<u8> {
        match self {
            ToChild::Go(state) => [&[b'G'][..], state].concat(),
            ToChild::HooksDone => vec![b'H'],
            ToChild::Root => vec![b'F'],
            ToChild::Start(state) => [&[b's'][..], state].concat(),
        }
    }

    fn decode(b: &[u8]) -> Option<ToChild> {
        Some(match b.first()? {
            b'G' => ToChild::Go(b[1..].to_vec()),
            b'H' => ToChild::HooksDone,
            b'F' => ToChild::Root,
            b's' => ToChild::Start(b[1..].to_vec()),
            _ => return None,
        })
    }
}

impl FromChild {
    fn encode(&self) -> Vec<u8> {
        match self {
            FromChild::InitPid(p) => [&[b'P'][..], &p.to_le_bytes()].concat(),
            FromChild::NeedMaps => vec![b'M'],
            FromChild::RunHooks => vec![b'H'],
            FromChild::NeedRoot => vec![b'F'],
            FromChild::PtyMaster => vec![b'T'],
            FromChild::SeccompListener => vec![b'S'],
            FromChild::Ready => vec![b'R'],
            FromChild::Fail(m) => [&[b'E'][..], m.as_bytes()].concat(),
        }
    }

    fn decode(b: &[u8]) -> Option<FromChild> {
        Some(match b.first()? {
            b'P' => FromChild::InitPid(i32::from_le_bytes(b.get(1..5)?.try_into().ok()?)),
            b'M' => FromChild::NeedMaps,
            b'H' => FromChild::RunHooks,
            b'F' => FromChild::NeedRoot,
            b'T' => FromChild::PtyMaster,
            b'S' => FromChild::SeccompListener,
            b'R' => FromChild::Ready,
            b'E' => FromChild::Fail(String::from_utf8_lossy(&b[1..]).into_owned()),
            _ => return None,
        })
    }
}

/// A received message: its bytes and the fd it carried, if any.
type Packet = (Vec<u8>, Option<OwnedFd>);

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// A (parent, child) pair of connected channel ends, both close-on-exec.
pub fn pair() -> Result<(Channel, Channel), Errno> {
    let (a, b) = socket::socketpair(
        socket::AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

const MAX_MSG: usize = 256 << 10;

impl Channel {
    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    fn send_bytes(&self, data: &[u8], fd: Option<BorrowedFd<'_>>) -> Result<(), Errno> {
        let iov = [IoSlice::new(data)];
        let raw: [RawFd; 1] = [fd.map(|f| f.as_raw_fd()).unwrap_or(-1)];
        let cmsg = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage] = if fd.is_some() { &cmsg } else { &[] };
        loop {
            match socket::sendmsg::<()>(
                self.fd.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Err(Errno::EINTR) => continue,
                r => return r.map(drop),
            }
        }
    }

    /// Receives one message; `Ok(None)` means the other end closed.
    fn recv_bytes(&self) -> Result<Option<Packet>, Errno> {
        let mut buf = vec![0u8; MAX_MSG];
        let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match socket::recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
                Ok(msg) => {
                    let mut fd = None;
                    for c in msg.cmsgs()? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for raw in fds {
                                // SCM_RIGHTS just installed this fd in our table; we are its only owner.
                                if let Ok(owned) = jaula_sys::process::own_raw(raw) {
                                    fd.get_or_insert(owned);
                                }
                            }
                        }
                    }
                    break (msg.bytes, fd);
                }
            }
        };
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((buf, fd)))
    }

    pub fn send_to_child(&self, m: &ToChild) -> Result<(), Errno> {
        self.send_bytes(&m.encode(), None)
    }

    pub fn send_to_parent(&self, m: &FromChild) -> Result<(), Errno> {
        self.send_bytes(&m.encode(), None)
    }

    pub fn send_fd_to_parent(&self, m: &FromChild, fd: BorrowedFd<'_>) -> Result<(), Errno> {
        self.send_bytes(&m.encode(), Some(fd))
    }

    /// Next message for the child; `None` when the runtime went away.
    pub fn recv_in_child(&self) -> Result<Option<ToChild>, Errno> {
        Ok(self.recv_in_child_with_fd()?.map(|(m, _)| m))
    }

    /// Next message for the child, with the fd it carried if any.
    pub fn recv_in_child_with_fd(&self) -> Result<Option<(ToChild, Option<OwnedFd>)>, Errno> {
        match self.recv_bytes()? {
            None => Ok(None),
            Some((b, fd)) => ToChild::decode(&b)
                .map(|m| Some((m, fd)))
                .ok_or(Errno::EBADMSG),
        }
    }

    pub fn send_fd_to_child(&self, m: &ToChild, fd: BorrowedFd<'_>) -> Result<(), Errno> {
        self.send_bytes(&m.encode(), Some(fd))
    }

    /// Next message for the runtime, with the fd it carried if any.
    pub fn recv_in_parent(&self) -> Result<Option<(FromChild, Option<OwnedFd>)>, Errno> {
        match self.recv_bytes()? {
            None => Ok(None),
            Some((b, fd)) => FromChild::decode(&b)
                .map(|m| Some((m, fd)))
                .ok_or(Errno::EBADMSG),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let (p, c) = pair().unwrap();
        p.send_to_child(&ToChild::Go(b"{}".to_vec())).unwrap();
        assert_eq!(
            c.recv_in_child().unwrap(),
            Some(ToChild::Go(b"{}".to_vec()))
        );
        c.send_to_parent(&FromChild::InitPid(4242)).unwrap();
        c.send_to_parent(&FromChild::Fail("boom".into())).unwrap();
        assert_eq!(
            p.recv_in_parent().unwrap().unwrap().0,
            FromChild::InitPid(4242)
        );
        assert_eq!(
            p.recv_in_parent().unwrap().unwrap().0,
            FromChild::Fail("boom".into())
        );
        drop(c);
        assert!(p.recv_in_parent().unwrap().is_none());
    }

    #[test]
    fn fds_travel() {
        let (p, c) = pair().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        use std::os::fd::AsFd;
        c.send_fd_to_parent(&FromChild::PtyMaster, w.as_fd())
            .unwrap();
        let (m, fd) = p.recv_in_parent().unwrap().unwrap();
        assert_eq!(m, FromChild::PtyMaster);
        nix::unistd::write(fd.unwrap(), b"x").unwrap();
        let mut b = [0u8; 1];
        nix::unistd::read(r.as_raw_fd(), &mut b).unwrap();
        assert_eq!(&b, b"x");
    }
}
