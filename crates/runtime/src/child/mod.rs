//! The container's first process: it runs the plan as one linear sequence.
//!
//! This code runs in a freshly cloned, single-threaded copy of the runtime,
//! already inside the new namespaces. It never parses JSON and never returns:
//! it either execs the container's program or reports an error and exits.
//!
//! Phase 1 ([`prepare`]) ends when the container is *created*; its errors go to
//! the runtime over the sync channel. Phase 2 ([`launch`]) starts at `start`; its
//! errors go back over the start connection, to the `start` command.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sched::CloneFlags;

use crate::plan::Plan;
use crate::sync::{Channel, FromChild, ToChild};
use crate::InitMode;

pub(crate) mod cgroupfs;
pub(crate) mod identity;
mod reaper;
pub(crate) mod rootfs;

/// Result of one setup step; the error is the message the user will see.
pub(crate) type Step<T> = Result<T, String>;

/// Turns an errno into a step error that says what was being done.
pub(crate) fn fail(what: impl Into<String>) -> impl FnOnce(Errno) -> String {
    let what = what.into();
    move |e| format!("{what}: {}", e.desc())
}

/// Where `start` reaches the waiting init.
pub(crate) enum StartFrom {
    /// `create`: a listening socket in the state dir; `start` connects to it.
    Listener(OwnedFd),
    /// `run`: the runtime stays and sends Start over the sync channel.
    Channel,
}

pub(crate) struct ChildCtx<'a> {
    pub plan: &'a Plan,
    pub chan: Option<Channel>,
    pub start: StartFrom,
    pub init: InitMode,
    pub preserve_fds: u32,
    pub stdio: Option<[OwnedFd; 3]>,
    /// Whether the seccomp filter uses user notification, which must be loaded
    /// before `create` returns so the listener fd can be handed out.
    pub seccomp_notify: bool,
    /// The container's cgroup in every host hierarchy, for `cgroup` mounts.
    pub cgroup_dirs: Vec<jaula_cgroups::HierarchyDir>,
    /// Opened cgroup files the init writes itself into, before anything else.
    pub cgroup_join: Option<jaula_cgroups::SelfJoin>,
}

/// Runs the whole sequence; never returns.
pub(crate) fn run(mut ctx: ChildCtx<'_>) -> ! {
    let (conn, state) = match prepare(&mut ctx) {
        Ok(c) => c,
        Err(msg) => {
            if let Some(chan) = &ctx.chan {
                let _ = chan.send_to_parent(&FromChild::Fail(msg));
            }
            jaula_sys::process::exit_now(1)
        }
    };
    let msg = match launch(&ctx, &conn, &state) {
        Err(m) => m,
        Ok(never) => match never {},
    };
    let _ = conn.send_to_parent(&FromChild::Fail(msg));
    jaula_sys::process::exit_now(127)
}

/// Phase 1: everything up to "created". Returns the connection `start` came on.
fn prepare(ctx: &mut ChildCtx<'_>) -> Step<(Channel, Vec<u8>)> {
    let plan = ctx.plan;
    let chan = ctx.chan.as_ref().ok_or("no sync channel")?;
    if let Some(j) = ctx.cgroup_join.take() {
        j.join().map_err(|e| format!("{e}: {}", e.errno.desc()))?;
    }
    jaula_sys::process::set_name("jaula:[init]");
    // Die with the runtime while it is still setting us up; cleared at Ready.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(fail("set pdeathsig"))?;
    // Not dumpable: no process in the container may ptrace us or open /proc/1/exe
    // (the runtime binary) until we exec the container's program.
    nix::sys::prctl::set_dumpable(false).map_err(fail("set non-dumpable"))?;
    reset_signals()?;
    if let Some(fds) = ctx.stdio.take() {
        for (i, fd) in fds.iter().enumerate() {
            jaula_sys::process::dup_onto(fd.as_fd(), i as i32).map_err(fail("set up stdio"))?;
        }
    }
    drop_parent_fds(ctx)?;
    let state = match chan.recv_in_child().map_err(fail("wait for runtime"))? {
        Some(ToChild::Go(state)) => state,
        other => return Err(format!("unexpected message {other:?}")),
    };
    enter_namespaces_late(plan)?;
    set_names(plan)?;
    if plan.ns.new.contains(CloneFlags::CLONE_NEWNET) {
        jaula_sys::fs::loopback_up().map_err(fail("bring up lo"))?;
    }
    let root = rootfs::prepare(plan, chan)?;
    rootfs::mount_all(plan, root.as_fd(), &ctx.cgroup_dirs)?;
    if plan.has_hooks_before_pivot() {
        chan.send_to_parent(&FromChild::RunHooks)
            .map_err(fail("ask for hooks"))?;
        match chan.recv_in_child().map_err(fail("wait for hooks"))? {
            Some(ToChild::HooksDone) => {}
            other => return Err(format!("hooks did not run: {other:?}")),
        }
        crate::hooks::run_all("createContainer", &plan.hooks.create_container, &state)
            .map_err(|e| e.to_string())?;
    }
    let tty = if plan.process.terminal {
        Some(open_pty(plan, root.as_fd(), chan, true)?)
    } else {
        None
    };
    rootfs::pivot(root)?;
    // Sysctls before the read-only paths: /proc/sys is one of them.
    rootfs::sysctls(plan)?;
    rootfs::finish(plan)?;
    identity::limits(plan)?;
    if let Some(tty) = tty {
        take_terminal(tty)?;
    }
    if ctx.seccomp_notify {
        identity::load_seccomp_early(plan, chan)?;
    }
    // Only stdio and the preserved fds may reach the program.
    jaula_sys::process::cloexec_from(3 + ctx.preserve_fds)
        .map_err(fail("mark fds close-on-exec"))?;
    for fd in 3..3 + ctx.preserve_fds as i32 {
        jaula_sys::process::dup_onto(jaula_sys::process::borrow_raw(fd), fd)
            .map_err(fail(format!("preserve fd {fd}")))?;
    }
    identity::check_executable(plan)?;
    nix::sys::prctl::set_pdeathsig(None).map_err(fail("clear pdeathsig"))?;
    chan.send_to_parent(&FromChild::Ready)
        .map_err(fail("report ready"))?;
    wait_for_start(ctx)
}

/// Closes our copies of the runtime's fds (its state-dir lock, its end of the
/// sync socket): if the runtime dies mid-create, nothing of it lives on in us.
fn drop_parent_fds(ctx: &ChildCtx<'_>) -> Step<()> {
    let mut keep = Vec::new();
    if let Some(c) = &ctx.chan {
        keep.push(c.fd().as_raw_fd());
    }
    if let StartFrom::Listener(l) = &ctx.start {
        keep.push(l.as_raw_fd());
    }
    jaula_sys::process::close_all_except(3 + ctx.preserve_fds, &keep)
        .map_err(fail("close the runtime's fds"))
}

/// The runtime blocks signals and (as every Rust program) ignores SIGPIPE; the
/// container's program must start with neither.
pub(crate) fn reset_signals() -> Step<()> {
    use nix::sys::signal::{SigSet, SigmaskHow};
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(fail("unblock signals"))?;
    jaula_sys::process::reset_signal_dispositions();
    Ok(())
}

/// Namespaces that must be entered after the runtime put us in our cgroup.
fn enter_namespaces_late(plan: &Plan) -> Step<()> {
    if plan.ns.new.contains(CloneFlags::CLONE_NEWUSER) {
        // The maps are written: become root of the new user namespace.
        nix::unistd::setresgid(0.into(), 0.into(), 0.into())
            .map_err(fail("setresgid 0 in user namespace"))?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into())
            .map_err(fail("setresuid 0 in user namespace"))?;
    }
    if plan.ns.new.contains(CloneFlags::CLONE_NEWCGROUP) {
        // Unshared only now so the namespace's root is the container's cgroup.
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(fail("unshare cgroup namespace"))?;
    }
    Ok(())
}

fn set_names(plan: &Plan) -> Step<()> {
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).map_err(fail("set hostname"))?;
    }
    if let Some(d) = &plan.domainname {
        jaula_sys::process::set_domainname(d).map_err(fail("set domainname"))?;
    }
    Ok(())
}

/// Opens a pty in the container's own devpts and hands the master to the
/// runtime; for the init, also binds the peer on /dev/console. Returns the peer.
pub(crate) fn open_pty(
    plan: &Plan,
    root: std::os::fd::BorrowedFd<'_>,
    chan: &Channel,
    console: bool,
) -> Step<OwnedFd> {
    use nix::fcntl::OFlag;
    let master = jaula_sys::fs::open_in_root(
        root,
        Path::new("/dev/pts/ptmx"),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        0,
    )
    .map_err(fail(
        "open /dev/pts/ptmx (terminal: true needs a devpts mount)",
    ))?;
    if jaula_sys::fs::fs_magic(master.as_fd()) != Ok(DEVPTS_SUPER_MAGIC) {
        return Err("/dev/pts/ptmx is not on devpts".into());
    }
    let peer = jaula_sys::term::open_peer(master.as_fd()).map_err(fail("open pty peer"))?;
    if let Some((rows, cols)) = plan.process.console_size {
        jaula_sys::term::set_size(peer.as_fd(), rows, cols).map_err(fail("set console size"))?;
    }
    if console {
        bind_console(root, &peer)?;
    }
    chan.send_fd_to_parent(&FromChild::PtyMaster, master.as_fd())
        .map_err(fail("send pty master"))?;
    Ok(peer)
}

fn bind_console(root: std::os::fd::BorrowedFd<'_>, peer: &OwnedFd) -> Step<()> {
    let console = rootfs::ensure_target(root, Path::new("/dev/console"), false)
        .map_err(fail("create /dev/console"))?;
    nix::mount::mount(
        Some(&jaula_sys::fs::fd_path(peer.as_fd())),
        &jaula_sys::fs::fd_path(console.as_fd()),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(fail("bind /dev/console"))
}

const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

/// New session with the pty as controlling terminal and as stdio.
pub(crate) fn take_terminal(tty: OwnedFd) -> Step<()> {
    nix::unistd::setsid().map_err(fail("setsid"))?;
    jaula_sys::term::set_controlling(tty.as_fd()).map_err(fail("set controlling terminal"))?;
    for i in 0..3 {
        jaula_sys::process::dup_onto(tty.as_fd(), i).map_err(fail("dup terminal"))?;
    }
    Ok(())
}

/// Blocks until `start`; returns the connection its errors must go back on.
fn wait_for_start(ctx: &mut ChildCtx<'_>) -> Step<(Channel, Vec<u8>)> {
    let conn = match &ctx.start {
        StartFrom::Channel => ctx.chan.take().ok_or("no sync channel")?,
        StartFrom::Listener(l) => {
            let fd = loop {
                match nix::sys::socket::accept4(
                    l.as_raw_fd(),
                    nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                ) {
                    Err(Errno::EINTR) => continue,
                    r => break r.map_err(fail("accept start connection"))?,
                }
            };
            ctx.chan = None;
            Channel::from_fd(jaula_sys::process::own_raw(fd).map_err(fail("own start connection"))?)
        }
    };
    // The listener is not needed any more; the `start` side unlinks its path.
    ctx.start = StartFrom::Channel;
    match conn.recv_in_child().map_err(fail("wait for start"))? {
        Some(ToChild::Start(state)) => Ok((conn, state)),
        None => Err("runtime went away before start".into()),
        other => Err(format!("unexpected message {other:?}")),
    }
}

/// Phase 2: from `start` to execve.
fn launch(ctx: &ChildCtx<'_>, conn: &Channel, state: &[u8]) -> Step<Infallible> {
    let plan = ctx.plan;
    crate::hooks::run_all("startContainer", &plan.hooks.start_container, state)
        .map_err(|e| e.to_string())?;
    identity::finalize(plan, ctx.seccomp_notify)?;
    nix::unistd::chdir(&plan.process.cwd)
        .map_err(fail(format!("chdir to cwd {}", plan.process.cwd.display())))?;
    let exe = identity::resolve_executable(plan)?;
    match ctx.init {
        InitMode::Exec => exec(&exe, plan),
        InitMode::Reaper => reaper::run(&exe, plan, conn),
    }
}

pub(crate) fn exec(exe: &CString, plan: &Plan) -> Step<Infallible> {
    let mut env = plan.process.env.clone();
    if plan.process.listen_fds > 0 {
        // sd_listen_fds() only trusts fds announced for its own pid.
        let pid = nix::unistd::getpid();
        env.retain(|e| !e.to_bytes().starts_with(b"LISTEN_"));
        env.push(
            CString::new(format!("LISTEN_FDS={}", plan.process.listen_fds)).unwrap_or_default(),
        );
        env.push(CString::new(format!("LISTEN_PID={pid}")).unwrap_or_default());
    }
    nix::unistd::execve(exe, &plan.process.args, &env)
        .map_err(|e| format!("exec {}: {}", exe.to_string_lossy(), e.desc()))
}
