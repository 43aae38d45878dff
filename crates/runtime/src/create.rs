//! `create`: validate, claim the ID, make the cgroup, clone the init, wait until it is ready.
//!
//! Everything this makes is owned by a [`Cleanup`] guard until the container is
//! created, so a failure at any step leaves no state dir, cgroup or process behind.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::child::{self, ChildCtx, StartFrom};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::store::{self, Handle, Record};
use crate::sync::{self, Channel, FromChild, ToChild};
use crate::{CreateOptions, Runtime, Stdio};
use jaula_sys::process::{clone3, fork, Forked};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `create`: the init waits on a socket for a later `start`.
    Create,
    /// `run`: the runtime stays and starts the init over the sync channel.
    Run,
    /// `run --detach`: as `Run`, but nobody stays to proxy a terminal.
    RunDetached,
}

/// A container whose init is set up and waiting for `start`.
pub(crate) struct Spawned {
    pub handle: Handle,
    pub record: Record,
    pub pid: Pid,
    pub chan: Channel,
    pub pty_master: Option<OwnedFd>,
    pub plan: Plan,
}

/// Undoes a half-made container unless disarmed.
struct Cleanup {
    handle: Option<Handle>,
    cgroup: Option<jaula_cgroups::Cgroup>,
    pid: Option<Pid>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(jaula_cgroups::Signal::SIGKILL);
            let _ = cg.destroy();
        }
        if let Some(h) = self.handle.take() {
            let _ = h.remove();
        }
    }
}

impl Cleanup {
    fn disarm(mut self) -> Handle {
        self.cgroup = None;
        self.pid = None;
        self.handle.take().expect("handle is set until disarm")
    }
}

impl Runtime {
    /// `create`: the container ends up *created*, its init waiting for `start`.
    pub fn create(&self, id: &str, opts: CreateOptions) -> Result<()> {
        let s = self.spawn(id, opts, Mode::Create)?;
        drop(s.chan);
        Ok(())
    }

    pub(crate) fn spawn(&self, id: &str, mut opts: CreateOptions, mode: Mode) -> Result<Spawned> {
        crate::id::validate(id)?;
        let mut plan = Plan::from_bundle(id, &opts.bundle)?;
        plan.process.listen_fds = opts.listen_fds;
        if plan.process.terminal && opts.console_socket.is_none() && mode != Mode::Run {
            return Err(Error::Other("process.terminal is true: --console-socket is required when the runtime does not stay attached".into()));
        }
        if plan.process.terminal && opts.console_socket.is_none() && mode == Mode::Run {
            // The runtime proxies its own terminal: size the pty before the program starts.
            plan.process.console_size = caller_tty_size().or(plan.process.console_size);
        }
        let handle = self.store().claim(id)?;
        let mut guard = Cleanup {
            handle: Some(handle),
            cgroup: None,
            pid: None,
        };
        let handle = guard.handle.as_ref().expect("just set");
        let cg = jaula_cgroups::Cgroup::for_container(plan.cgroups_path.as_deref(), id)?;
        let mut record = Record {
            id: id.to_owned(),
            bundle: plan.bundle.clone(),
            rootfs: plan.rootfs.clone(),
            pid: None,
            pid_start: 0,
            created: store::rfc3339_now(),
            annotations: plan.spec.annotations.clone(),
            cgroup_path: cg.path().to_owned(),
            owner: String::new(),
            config: plan.spec.clone(),
            created_done: false,
        };
        // Written before anything else exists, so `delete --force` can clean up
        // after a runtime killed at any later point.
        handle.write(&record)?;
        cg.create()?;
        guard.cgroup = Some(cg.clone());
        if let Some(r) = &plan.resources {
            cg.apply(r)?;
        }
        let listener = match mode {
            Mode::Create => Some(start_listener(&handle.dir)?),
            Mode::Run | Mode::RunDetached => None,
        };
        let (chan, child_chan) = sync::pair().map_err(|e| Error::sys("socketpair", e))?;
        let stdio = match std::mem::take(&mut opts.stdio) {
            Stdio::Inherit => None,
            Stdio::Fds {
                stdin,
                stdout,
                stderr,
            } => Some([stdin, stdout, stderr]),
        };
        let seccomp_notify = plan.seccomp.as_ref().is_some_and(|f| f.has_listener());
        let ctx = ChildCtx {
            plan: &plan,
            chan: Some(child_chan),
            start: match listener {
                Some(l) => StartFrom::Listener(l),
                None => StartFrom::Channel,
            },
            init: opts.init,
            preserve_fds: opts.preserve_fds,
            stdio,
            seccomp_notify,
            cgroup_join: Some(cg.self_join(join_mode(&plan))?),
            cgroup_dirs: cg.hierarchy_dirs(),
        };
        let v2_dir = cg.v2_dir_fd()?;
        let pid = clone_init(&plan, ctx, &chan, v2_dir.as_ref().map(|f| f.as_fd()))?;
        guard.pid = Some(pid);
        record.pid = Some(pid.as_raw());
        record.pid_start = jaula_sys::process::proc_start_time(pid.as_raw())
            .map(|(s, _)| s)
            .unwrap_or(0);
        let state =
            serde_json::to_vec(&record.to_state(jaula_spec::Status::Creating)).unwrap_or_default();
        chan.send_to_child(&ToChild::Go(state.clone()))
            .map_err(|e| Error::sys("start container setup", e))?;
        let pty_master = serve_child(&plan, &opts, &chan, &state, pid)?;
        record.created_done = true;
        handle.write(&record)?;
        if let Some(f) = &opts.pid_file {
            write_pid_file(f, pid)?;
        }
        let handle = guard.disarm();
        Ok(Spawned {
            handle,
            record,
            pid,
            chan,
            pty_master,
            plan,
        })
    }
}

/// The socket a created init listens on; `start` connects to it.
fn start_listener(dir: &Path) -> Result<OwnedFd> {
    use nix::sys::socket::{
        bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("socket", e))?;
    let dirfd = jaula_sys::fs::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
        0,
    )
    .map_err(|e| Error::sys(format!("open {}", dir.display()), e))?;
    // Through the dir fd, so a long --root cannot overflow sun_path.
    let path = jaula_sys::fs::fd_path(dirfd.as_fd()).join(store::START_SOCKET);
    let addr = UnixAddr::new(&path).map_err(|e| Error::sys("socket path", e))?;
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr).map_err(|e| {
        Error::sys(
            format!("bind {}", dir.join(store::START_SOCKET).display()),
            e,
        )
    })?;
    listen(&fd, Backlog::new(4).unwrap_or(Backlog::MAXCONN))
        .map_err(|e| Error::sys("listen", e))?;
    Ok(fd)
}

/// Clones the container's init into its namespaces and returns its pid.
/// The size of the terminal on our stdin, if it is one.
pub(crate) fn caller_tty_size() -> Option<(u16, u16)> {
    jaula_sys::term::get_size(jaula_sys::process::borrow_raw(0))
        .ok()
        .filter(|&(r, c)| r > 0 && c > 0)
}

/// How the init enters its cgroup. Writing `cgroup.procs` costs an RCU grace
/// period (milliseconds); clone3 can place the child in the v2 cgroup for free,
/// and the child then writes itself into each v1 hierarchy's `tasks` (cheap).
/// The intermediate path forks without clone3's help, so the init writes v2 too.
fn join_mode(plan: &Plan) -> jaula_cgroups::V2Entry {
    if plan.needs_intermediate() {
        jaula_cgroups::V2Entry::WriteProcs
    } else {
        jaula_cgroups::V2Entry::CloneIntoCgroup
    }
}

fn clone_init(
    plan: &Plan,
    ctx: ChildCtx<'_>,
    chan: &Channel,
    v2_dir: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<Pid> {
    // The cgroup namespace is unshared by the child once it is in its cgroup.
    let flags = plan.ns.new - CloneFlags::CLONE_NEWCGROUP;
    if !plan.needs_intermediate() {
        let one = jaula_sys::process::SingleThreaded::check()
            .map_err(|e| Error::sys("clone3: runtime must be single-threaded", e))?;
        return match clone3(flags.bits() as u64, v2_dir, &one)
            .map_err(|e| Error::sys("clone3", e))?
        {
            Forked::Child => child::run(ctx),
            Forked::Parent(pid) => {
                drop(ctx);
                if flags.contains(CloneFlags::CLONE_NEWUSER) {
                    write_id_maps(plan, pid)?;
                }
                Ok(pid)
            }
        };
    }
    match fork().map_err(|e| Error::sys("fork", e))? {
        Forked::Child => intermediate(plan, ctx, flags),
        Forked::Parent(mid) => {
            drop(ctx);
            let init = talk_to_intermediate(plan, chan, mid);
            let _ = nix::sys::wait::waitpid(mid, None);
            init
        }
    }
}

/// The intermediate process joins namespaces by path and creates those that
/// only affect children (pid, time), then forks the init and exits.
fn intermediate(plan: &Plan, ctx: ChildCtx<'_>, flags: CloneFlags) -> ! {
    let Some(chan) = ctx
        .chan
        .as_ref()
        .and_then(|c| c.fd().try_clone_to_owned().ok())
        .map(Channel::from_fd)
    else {
        jaula_sys::process::exit_now(1)
    };
    let chan = &chan;
    let r = (|| -> std::result::Result<Pid, String> {
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| format!("pdeathsig: {e}"))?;
        for (flag, path) in &plan.ns.join {
            let fd = jaula_sys::fs::open(path, nix::fcntl::OFlag::O_RDONLY, 0)
                .map_err(|e| format!("open namespace {}: {e}", path.display()))?;
            nix::sched::setns(fd, *flag)
                .map_err(|e| format!("join namespace {}: {e}", path.display()))?;
        }
        if flags.contains(CloneFlags::CLONE_NEWUSER) {
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
                .map_err(|e| format!("unshare user namespace: {e}"))?;
            chan.send_to_parent(&FromChild::NeedMaps)
                .map_err(|e| format!("sync: {e}"))?;
            match chan.recv_in_child() {
                Ok(Some(ToChild::Go(_))) => {}
                other => return Err(format!("id maps not written: {other:?}")),
            }
        }
        nix::sched::unshare(flags - CloneFlags::CLONE_NEWUSER)
            .map_err(|e| format!("unshare namespaces: {e}"))?;
        if !plan.time_offsets.is_empty() {
            std::fs::write("/proc/self/timens_offsets", plan.time_offsets.join("\n"))
                .map_err(|e| format!("write timens_offsets: {e}"))?;
        }
        match fork().map_err(|e| format!("fork init: {e}"))? {
            Forked::Child => child::run(ctx),
            Forked::Parent(pid) => Ok(pid),
        }
    })();
    let code = match r {
        Ok(pid) => chan
            .send_to_parent(&FromChild::InitPid(pid.as_raw()))
            .is_err() as i32,
        Err(msg) => {
            let _ = chan.send_to_parent(&FromChild::Fail(msg));
            1
        }
    };
    jaula_sys::process::exit_now(code)
}

fn talk_to_intermediate(plan: &Plan, chan: &Channel, mid: Pid) -> Result<Pid> {
    loop {
        match chan
            .recv_in_parent()
            .map_err(|e| Error::sys("sync with intermediate", e))?
        {
            Some((FromChild::NeedMaps, _)) => {
                write_id_maps(plan, mid)?;
                chan.send_to_child(&ToChild::Go(Vec::new()))
                    .map_err(|e| Error::sys("sync with intermediate", e))?;
            }
            Some((FromChild::InitPid(p), _)) => return Ok(Pid::from_raw(p)),
            Some((FromChild::Fail(m), _)) => return Err(Error::Setup(m)),
            Some((other, _)) => return Err(Error::Setup(format!("unexpected message {other:?}"))),
            None => return Err(Error::Setup("namespace setup process died".into())),
        }
    }
}

/// The parent writes the maps: only it holds privileges in the outer namespace.
fn write_id_maps(plan: &Plan, pid: Pid) -> Result<()> {
    let fmt = |maps: &[jaula_spec::IdMapping]| {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
            .collect::<String>()
    };
    for (file, maps) in [("uid_map", &plan.uid_map), ("gid_map", &plan.gid_map)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, fmt(maps)).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Answers the init's requests until it is ready. Returns the pty master when
/// the runtime itself must proxy the terminal.
fn serve_child(
    plan: &Plan,
    opts: &CreateOptions,
    chan: &Channel,
    state: &[u8],
    pid: Pid,
) -> Result<Option<OwnedFd>> {
    let mut master = None;
    loop {
        match chan
            .recv_in_parent()
            .map_err(|e| Error::sys("sync with container", e))?
        {
            Some((FromChild::NeedRoot, _)) => {
                let root = crate::rootmount::mount_root(plan, pid)?;
                chan.send_fd_to_child(&ToChild::Root, root.as_fd())
                    .map_err(|e| Error::sys("send the rootfs", e))?;
            }
            Some((FromChild::RunHooks, _)) => {
                crate::hooks::run_all("prestart", &plan.hooks.prestart, state)?;
                crate::hooks::run_all("createRuntime", &plan.hooks.create_runtime, state)?;
                chan.send_to_child(&ToChild::HooksDone)
                    .map_err(|e| Error::sys("sync with container", e))?;
            }
            Some((FromChild::PtyMaster, Some(fd))) => match &opts.console_socket {
                Some(sock) => send_fd(sock, fd.as_fd(), b"/dev/ptmx")?,
                None => master = Some(fd),
            },
            Some((FromChild::SeccompListener, Some(fd))) => {
                send_seccomp_listener(plan, fd.as_fd(), state, pid)?
            }
            Some((FromChild::Ready, _)) => return Ok(master),
            Some((FromChild::Fail(m), _)) => return Err(Error::Setup(m)),
            Some((other, _)) => return Err(Error::Setup(format!("unexpected message {other:?}"))),
            None => return Err(Error::Setup("container init exited during setup".into())),
        }
    }
}

/// Sends `fd` over the unix socket at `path` with SCM_RIGHTS (console socket,
/// seccomp agent).
pub(crate) fn send_fd(path: &Path, fd: std::os::fd::BorrowedFd<'_>, payload: &[u8]) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    let sock = UnixStream::connect(path).map_err(|e| Error::io(path, e))?;
    let raw = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(payload)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&raw)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::sys(format!("send fd to {}", path.display()), e))?;
    Ok(())
}

fn send_seccomp_listener(
    plan: &Plan,
    fd: std::os::fd::BorrowedFd<'_>,
    state: &[u8],
    pid: Pid,
) -> Result<()> {
    let Some(sc) = plan.spec.linux.as_ref().and_then(|l| l.seccomp.as_ref()) else {
        return Ok(());
    };
    let Some(path) = sc.listener_path.as_deref().filter(|p| !p.is_empty()) else {
        return Err(Error::Other(
            "linux.seccomp: SCMP_ACT_NOTIFY needs listenerPath".into(),
        ));
    };
    let state: serde_json::Value = serde_json::from_slice(state).unwrap_or(serde_json::Value::Null);
    let msg = serde_json::json!({
        "ociVersion": jaula_spec::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid.as_raw(),
        "metadata": sc.listener_metadata.clone().unwrap_or_default(),
        "state": state,
    });
    send_fd(Path::new(path), fd, msg.to_string().as_bytes())
}

/// Writes the pid file atomically, as runc does (containerd reads it at once).
pub(crate) fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let tmp = path.with_extension("jaula-tmp");
    std::fs::write(&tmp, pid.as_raw().to_string()).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
