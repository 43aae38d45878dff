//! Process creation and signalling: fork/clone3, pidfds, fd-table hygiene.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// Which side of a fork/clone the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent(Pid),
    Child,
}

/// clone3 flag: start the child in the cgroup given by `clone_args.cgroup`.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` from linux/sched.h (v2 layout, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Number of threads of this process, read from `/proc/self/stat`.
fn thread_count() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Field 20 (num_threads); fields after the parenthesised comm never contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(17)?.parse().ok()
}

/// Proof that the process had exactly one thread when it was made: forking a
/// threaded process leaves locks held by other threads forever locked in the
/// child. Not `Send`, so it cannot travel to another thread.
#[derive(Debug)]
pub struct SingleThreaded(std::marker::PhantomData<*const ()>);

impl SingleThreaded {
    /// Checks /proc/self/stat. Take it before entering another mount or pid
    /// namespace, where /proc/self may not be ours.
    pub fn check() -> Result<SingleThreaded, Errno> {
        match thread_count() {
            Some(1) => Ok(SingleThreaded(std::marker::PhantomData)),
            _ => Err(Errno::EDEADLK),
        }
    }
}

/// `clone3` without a new stack (fork semantics), optionally creating namespaces
/// (`CLONE_NEW*` bits in `flags`) and placing the child straight into a cgroup v2
/// directory. Refuses (EDEADLK) when the process has more than one thread.
pub fn clone3(
    flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
    _proof: &SingleThreaded,
) -> Result<Forked, Errno> {
    // With CLONE_PARENT the kernel takes the exit signal from the caller and
    // insists that none is given here.
    let exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 {
        0
    } else {
        libc::SIGCHLD as u64
    };
    let mut args = CloneArgs {
        flags,
        exit_signal,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid, fully initialised clone_args of the size we pass.
    // With stack == 0 clone3 behaves like fork: the child continues on a copy of our
    // stack. We checked above that we are single-threaded, so no lock can be held by
    // another thread at the moment of the copy.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    // A seccomp filter may answer clone3 with ENOSYS (Docker's profile does, so
    // that libc falls back): do the same for a plain fork.
    let ret = match Errno::result(ret) {
        Err(Errno::ENOSYS) if args.flags == 0 => legacy_fork()?,
        r => r?,
    };
    match ret {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// fork through the old clone(2) entry point, which seccomp profiles allow.
fn legacy_fork() -> Result<libc::c_long, Errno> {
    // SAFETY: clone with only an exit signal and no new stack behaves as fork; the
    // caller (clone3) holds the single-threaded proof.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    Errno::result(ret)
}

/// Plain fork (clone3 with no flags), after checking we are single-threaded.
pub fn fork() -> Result<Forked, Errno> {
    clone3(0, None, &SingleThreaded::check()?)
}

/// Opens a pidfd for `pid`, so later signals cannot hit a recycled pid.
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: the kernel just returned this fd to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `sig` to the process behind `pidfd`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> Result<(), Errno> {
    // SAFETY: a valid pidfd, a signal number, no siginfo (NULL) and no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// Marks every fd >= `first` close-on-exec, so nothing of the runtime's leaks
/// into the container's program.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range only changes flags of fds in the given range.
    let ret = unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) };
    Errno::result(ret).map(drop)
}

/// Duplicates `fd` onto the exact number `target` (dup2), clearing CLOEXEC.
/// Used to lay out stdio and preserved fds in the child.
pub fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> Result<(), Errno> {
    if fd.as_raw_fd() == target {
        // dup2 would be a no-op and keep CLOEXEC: clear it explicitly.
        let flags = nix::fcntl::fcntl(target, nix::fcntl::F_GETFD)?;
        let flags = nix::fcntl::FdFlag::from_bits_truncate(flags) - nix::fcntl::FdFlag::FD_CLOEXEC;
        nix::fcntl::fcntl(target, nix::fcntl::F_SETFD(flags))?;
        return Ok(());
    }
    // SAFETY: dup2 onto a number the caller reserved for this purpose; the old fd at
    // `target`, if any, is closed atomically by the kernel.
    let ret = unsafe { libc::dup2(fd.as_raw_fd(), target) };
    Errno::result(ret).map(drop)
}

/// Borrow an fd number that the caller knows is open for the duration of the borrow
/// (e.g. 0, 1, 2, or fds handed to us by our own parent).
pub fn borrow_raw(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: callers pass fds that stay open for the whole life of the process
    // (stdio and inherited fds we never close while borrowed).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Takes ownership of an inherited fd number (e.g. a preserved fd or LISTEN_FDS).
pub fn own_raw(fd: RawFd) -> Result<OwnedFd, Errno> {
    nix::fcntl::fcntl(fd, nix::fcntl::F_GETFD)?;
    // SAFETY: F_GETFD just proved the fd is open, and the caller hands over its only
    // owner (an fd inherited across exec that nothing else in the process tracks).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `_exit`: leave a forked child without running atexit handlers or flushing
/// buffers that belong to the parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it never returns.
    unsafe { libc::_exit(code) }
}

/// Sets the calling thread's name (`comm`), shown by ps (e.g. `jaula:[init]`).
pub fn set_name(name: &str) {
    if let Ok(c) = std::ffi::CString::new(name) {
        let _ = nix::sys::prctl::set_name(&c);
    }
}

/// Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), with
/// its state letter. Together with the pid it names a process uniquely.
pub fn proc_start_time(pid: i32) -> Option<(u64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3 (state); start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
}

/// setdomainname(2): nix has sethostname only.
pub fn set_domainname(name: &str) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}

/// Sets one resource limit of the calling process.
pub fn set_rlimit(resource: i32, soft: u64, hard: u64) -> Result<(), Errno> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads one rlimit struct from the pointer we pass.
    let ret = unsafe { libc::setrlimit(resource as libc::__rlimit_resource_t, &lim) };
    Errno::result(ret).map(drop)
}

/// Sets the process's personality (execution domain).
pub fn set_personality(persona: u64) -> Result<(), Errno> {
    // SAFETY: personality takes a plain integer.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    Errno::result(ret).map(drop)
}

/// The kernel's `struct sigaction` on x86_64 (not glibc's, which differs).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Restores the default disposition of every catchable signal, so nothing the
/// runtime (or whoever started it) ignored stays ignored in the container. Uses
/// the raw syscall: glibc refuses to touch its internal signals 32 and 33, which
/// posix_spawn leaves ignored in the processes it starts.
pub fn reset_signal_dispositions() {
    let dfl = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installs SIG_DFL (handler 0), so no code ever runs in signal
        // context; the struct has the kernel's layout and the size we pass.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
}

/// Closes every fd >= `first` except those in `keep`: a forked child drops the
/// copies of its parent's fds (state-dir lock, the parent's end of the sync
/// socket) so it can never keep them alive on its own.
pub fn close_all_except(first: u32, keep: &[RawFd]) -> Result<(), Errno> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&k| u32::try_from(k).ok())
        .filter(|&k| k >= first)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = first;
    for k in keep {
        if k > lo {
            close_range(lo, k - 1)?;
        }
        lo = k + 1;
    }
    close_range(lo, u32::MAX)
}

fn close_range(lo: u32, hi: u32) -> Result<(), Errno> {
    // SAFETY: closes only fds the caller asked to drop; kept fds are outside the range.
    let ret = unsafe { libc::close_range(lo, hi, 0) };
    Errno::result(ret).map(drop)
}

/// (soft, hard) of one resource limit of the calling process.
pub fn get_rlimit(resource: i32) -> Result<(u64, u64), Errno> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct into the pointer we pass.
    let ret = unsafe { libc::getrlimit(resource as libc::__rlimit_resource_t, &mut lim) };
    Errno::result(ret).map(|_| (lim.rlim_cur, lim.rlim_max))
}
