//! `exec`: run another process inside a running container.
//!
//! The runtime forks a joiner that enters the container's cgroup and then all of
//! its namespaces at once (setns on the init's pidfd, user namespace included).
//! The joiner clones the new process with CLONE_PARENT, so the runtime itself is
//! its parent and gets its exit status. The process is not dumpable until it
//! execs, so nothing in the container can open the runtime binary through
//! /proc/<pid>/exe (CVE-2019-5736) or inherit a host fd (CVE-2016-9962).

use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

use crate::child::{fail, Step};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::sync::{self, Channel, FromChild};
use crate::{ExecOptions, Runtime};
use jaula_spec::Status;
use jaula_sys::process::{clone3, fork, Forked};

/// Namespace files of /proc/PID/ns and their setns flags.
const NAMESPACES: &[(&str, i32)] = &[
    ("user", libc::CLONE_NEWUSER),
    ("mnt", libc::CLONE_NEWNS),
    ("pid", libc::CLONE_NEWPID),
    ("net", libc::CLONE_NEWNET),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
];

impl Runtime {
    /// Runs `opts.process` in container `id`. Returns its exit code, or 0 at once
    /// with `detach`.
    pub fn exec(&self, id: &str, opts: ExecOptions) -> Result<i32> {
        let (rec, status) = self.record_and_status(id)?;
        match status {
            Status::Running | Status::Created => {}
            Status::Paused if opts.ignore_paused => {}
            Status::Paused => {
                return Err(Error::Other(format!(
                    "cannot exec in container {id}: it is paused (use --ignore-paused)"
                )))
            }
            _ => return Err(Error::NotRunning { id: id.to_owned() }),
        }
        if opts.process.terminal && opts.detach && opts.console_socket.is_none() {
            return Err(Error::Other(
                "terminal exec with --detach needs --console-socket".into(),
            ));
        }
        let mut spec = rec.config.clone();
        spec.process = Some(opts.process.clone());
        let mut plan = Plan::new(id, &rec.bundle, spec)?;
        plan.process.listen_fds = 0;
        if plan.process.terminal && opts.console_socket.is_none() {
            plan.process.console_size =
                crate::create::caller_tty_size().or(plan.process.console_size);
        }
        let init = rec
            .pid
            .ok_or_else(|| Error::NotRunning { id: id.to_owned() })?;
        let pidfd = jaula_sys::process::pidfd_open(Pid::from_raw(init))
            .map_err(|_| Error::NotRunning { id: id.to_owned() })?;
        if !crate::store::is_alive(init, rec.pid_start) {
            return Err(Error::NotRunning { id: id.to_owned() });
        }
        let flags = namespaces_to_join(init);
        let cg = jaula_cgroups::Cgroup::open(&rec.cgroup_path)?;
        let mut mask = SigSet::empty();
        if !opts.detach {
            for s in [
                Signal::SIGHUP,
                Signal::SIGINT,
                Signal::SIGQUIT,
                Signal::SIGTERM,
                Signal::SIGUSR1,
                Signal::SIGUSR2,
                Signal::SIGWINCH,
                Signal::SIGCHLD,
            ] {
                mask.add(s);
            }
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
                .map_err(|e| Error::sys("block signals", e))?;
        }
        let (chan, child_chan) = sync::pair().map_err(|e| Error::sys("socketpair", e))?;
        let join = Join {
            v1: cg.self_join(jaula_cgroups::V2Entry::CloneIntoCgroup)?,
            v2_dir: cg.v2_dir_fd()?,
            cgroupns: open_cgroupns(init, flags)?,
            pidfd,
            flags: flags - CloneFlags::CLONE_NEWCGROUP,
        };
        let joiner = match fork().map_err(|e| Error::sys("fork", e))? {
            Forked::Child => join_and_clone(&plan, join, child_chan, opts.preserve_fds),
            Forked::Parent(p) => p,
        };
        drop(child_chan);
        let (pid, master) = match wait_exec(&chan, &opts) {
            Ok(r) => r,
            Err(e) => {
                let _ = nix::sys::wait::waitpid(joiner, None);
                return Err(e);
            }
        };
        let _ = nix::sys::wait::waitpid(joiner, None);
        if let Some(f) = &opts.pid_file {
            crate::create::write_pid_file(f, pid)?;
        }
        if opts.detach {
            return Ok(0);
        }
        crate::run::wait_forwarding(pid, &mask, master)
    }
}

/// Flags of the namespaces where the init differs from us.
fn namespaces_to_join(init: i32) -> CloneFlags {
    let mut flags = CloneFlags::empty();
    for (name, flag) in NAMESPACES {
        let theirs = std::fs::metadata(format!("/proc/{init}/ns/{name}"));
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
        use std::os::unix::fs::MetadataExt;
        if let (Ok(t), Ok(o)) = (theirs, ours) {
            if t.ino() != o.ino() || t.dev() != o.dev() {
                flags |= CloneFlags::from_bits_retain(*flag);
            }
        }
    }
    flags
}

/// Collects the new process's pid and pty master, and waits until it execs.
fn wait_exec(chan: &Channel, opts: &ExecOptions) -> Result<(Pid, Option<OwnedFd>)> {
    let (mut pid, mut master) = (None, None);
    loop {
        match chan
            .recv_in_parent()
            .map_err(|e| Error::sys("sync with exec process", e))?
        {
            Some((FromChild::InitPid(p), _)) => pid = Some(Pid::from_raw(p)),
            Some((FromChild::PtyMaster, Some(fd))) => match &opts.console_socket {
                Some(sock) => crate::create::send_fd(sock, fd.as_fd(), b"/dev/ptmx")?,
                None => master = Some(fd),
            },
            Some((FromChild::Fail(m), _)) => return Err(Error::Setup(m)),
            Some((other, _)) => return Err(Error::Setup(format!("unexpected message {other:?}"))),
            None => break,
        }
    }
    let pid = pid.ok_or_else(|| Error::Setup("exec process was not created".into()))?;
    Ok((pid, master))
}

/// What the joiner needs, opened by the runtime while it still sees host paths.
struct Join {
    /// v1 `tasks` files: cheap self-moves, unlike `cgroup.procs`.
    v1: jaula_cgroups::SelfJoin,
    /// The v2 directory, entered for free through clone3(CLONE_INTO_CGROUP).
    v2_dir: Option<OwnedFd>,
    /// The cgroup namespace, entered by the new process itself once it is in the
    /// container's cgroup (with nsdelegate, the kernel refuses cgroup moves across
    /// a namespace boundary).
    cgroupns: Option<OwnedFd>,
    pidfd: OwnedFd,
    flags: CloneFlags,
}

fn open_cgroupns(init: i32, flags: CloneFlags) -> Result<Option<OwnedFd>> {
    if !flags.contains(CloneFlags::CLONE_NEWCGROUP) {
        return Ok(None);
    }
    let path = std::path::PathBuf::from(format!("/proc/{init}/ns/cgroup"));
    jaula_sys::fs::open(&path, nix::fcntl::OFlag::O_RDONLY, 0)
        .map(Some)
        .map_err(|e| Error::sys(format!("open {}", path.display()), e))
}

/// The joiner: cgroup (v1) first, then every namespace but cgroup, then the clone.
fn join_and_clone(plan: &Plan, join: Join, chan: Channel, preserve: u32) -> ! {
    let r = (|| -> Step<Pid> {
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(fail("pdeathsig"))?;
        nix::sys::prctl::set_dumpable(false).map_err(fail("set non-dumpable"))?;
        let one = jaula_sys::process::SingleThreaded::check().map_err(fail("check threads"))?;
        join.v1.join().map_err(|e| format!("join cgroup: {e}"))?;
        nix::sched::setns(join.pidfd.as_fd(), join.flags)
            .map_err(fail("join the container's namespaces"))?;
        // With a v2 dir, clone3 adds CLONE_INTO_CGROUP.
        match clone3(
            libc::CLONE_PARENT as u64,
            join.v2_dir.as_ref().map(|f| f.as_fd()),
            &one,
        )
        .map_err(fail("clone exec process"))?
        {
            Forked::Child => {
                let msg = match enter_cgroupns(join.cgroupns.as_ref())
                    .and_then(|()| exec_process(plan, &chan, preserve))
                {
                    Err(m) => m,
                    Ok(never) => match never {},
                };
                let _ = chan.send_to_parent(&FromChild::Fail(msg));
                jaula_sys::process::exit_now(127)
            }
            Forked::Parent(p) => Ok(p),
        }
    })();
    let code = match r {
        Ok(pid) => i32::from(
            chan.send_to_parent(&FromChild::InitPid(pid.as_raw()))
                .is_err(),
        ),
        Err(m) => {
            let _ = chan.send_to_parent(&FromChild::Fail(m));
            1
        }
    };
    jaula_sys::process::exit_now(code)
}

fn enter_cgroupns(ns: Option<&OwnedFd>) -> Step<()> {
    match ns {
        Some(fd) => nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWCGROUP)
            .map_err(fail("join the container's cgroup namespace")),
        None => Ok(()),
    }
}

/// Inside the container: terminal, limits, identity, then execve.
fn exec_process(plan: &Plan, chan: &Channel, preserve: u32) -> Step<Infallible> {
    jaula_sys::process::set_name("jaula:[exec]");
    crate::child::reset_signals()?;
    if plan.process.terminal {
        let root = jaula_sys::fs::open(
            std::path::Path::new("/"),
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
            0,
        )
        .map_err(fail("open /"))?;
        let tty = crate::child::open_pty(plan, root.as_fd(), chan, false)?;
        crate::child::take_terminal(tty)?;
    }
    crate::child::identity::limits(plan)?;
    jaula_sys::process::cloexec_from(3 + preserve).map_err(fail("mark fds close-on-exec"))?;
    crate::child::identity::finalize(plan, false)?;
    nix::unistd::chdir(&plan.process.cwd)
        .map_err(fail(format!("chdir to cwd {}", plan.process.cwd.display())))?;
    let exe = crate::child::identity::resolve_executable(plan)?;
    crate::child::exec(&exe, plan)
}
