//! `start`: tell a created container's init to exec the program.

use std::os::fd::AsFd;

use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};

use crate::error::{Error, Result};
use crate::store;
use crate::sync::{Channel, FromChild, ToChild};
use crate::Runtime;
use jaula_spec::Status;

impl Runtime {
    /// `start`: only a *created* container can be started.
    pub fn start(&self, id: &str) -> Result<()> {
        let h = self.store().open(id)?;
        let rec = h
            .read()?
            .ok_or_else(|| Error::NotFound { id: id.to_owned() })?;
        let status = rec.status(&h.dir);
        if status != Status::Created {
            return Err(Error::WrongState {
                id: id.to_owned(),
                op: "start",
                status,
            });
        }
        let conn = connect_start(&h)?;
        let state = serde_json::to_vec(&rec.to_state(Status::Created)).unwrap_or_default();
        // From here on the container counts as running, whatever happens below.
        let sock = h.dir.join(store::START_SOCKET);
        let _ = std::fs::remove_file(&sock);
        wait_for_exec(&conn, ToChild::Start(state))?;
        let state = serde_json::to_vec(&rec.to_state(Status::Running)).unwrap_or_default();
        for w in crate::hooks::run_all_lenient(
            "poststart",
            &rec.config.hooks.clone().unwrap_or_default().poststart,
            &state,
        ) {
            log::warn!("{w}");
        }
        Ok(())
    }
}

fn connect_start(h: &store::Handle) -> Result<Channel> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("socket", e))?;
    let path = jaula_sys::fs::fd_path(h.lock_fd()).join(store::START_SOCKET);
    let addr = UnixAddr::new(&path).map_err(|e| Error::sys("socket path", e))?;
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd()), &addr).map_err(|e| {
        Error::sys(
            format!("connect to {}", h.dir.join(store::START_SOCKET).display()),
            e,
        )
    })?;
    Ok(Channel::from_fd(fd))
}

/// Sends Start and waits until the init's end closes (it exec'd: every fd of the
/// runtime is close-on-exec) or it reports why it could not.
pub(crate) fn wait_for_exec(conn: &Channel, msg: ToChild) -> Result<()> {
    conn.send_to_child(&msg)
        .map_err(|e| Error::sys("signal start", e))?;
    match conn.recv_in_parent() {
        Ok(None) => Ok(()),
        Ok(Some((FromChild::Fail(m), _))) => Err(Error::Setup(m)),
        Ok(Some((other, _))) => Err(Error::Setup(format!("unexpected message {other:?}"))),
        Err(nix::errno::Errno::ECONNRESET) => Ok(()),
        Err(e) => Err(Error::sys("wait for exec", e)),
    }
}
