//! seccomp(2): loading classic-BPF syscall filters and using notify listeners.
//!
//! The filter itself is compiled elsewhere (crate `jaula-seccomp`, pure Rust); this module
//! only hands it to the kernel, reports which flags and actions the kernel knows, and offers
//! a few narrow syscall *probes* with which a process can check, from the inside, that the
//! filter it runs under covers every syscall entry (64-bit, x32 and the 32-bit `int 0x80`).
//!
//! **Ordering requirement.** The kernel accepts a filter only from a task that has
//! `no_new_privs` set or holds `CAP_SYS_ADMIN` in its user namespace. A container runtime
//! therefore loads the filter last: after dropping capabilities and setting
//! `no_new_privs`, right before `execve`. The filter must allow every syscall the runtime
//! still makes between [`load_filter`] and `execve` (for a notify filter: sending the
//! listener fd out, `close`, `execve` itself).

use std::ops::BitOr;
use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

pub use libc::sock_filter;

/// The kernel's limit on the length of a classic-BPF program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// `SECCOMP_FILTER_FLAG_*` bits passed to `seccomp(SECCOMP_SET_MODE_FILTER)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FilterFlags(u32);

impl FilterFlags {
    /// Apply the filter to every thread of the process, not only the caller.
    pub const TSYNC: Self = Self(libc::SECCOMP_FILTER_FLAG_TSYNC as u32);
    /// Log every action except `ALLOW` (to the audit log).
    pub const LOG: Self = Self(libc::SECCOMP_FILTER_FLAG_LOG as u32);
    /// Do not enable the speculative store bypass mitigation for the task.
    pub const SPEC_ALLOW: Self = Self(libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32);
    /// Return a user-notification listener fd for `SECCOMP_RET_USER_NOTIF`.
    pub const NEW_LISTENER: Self = Self(libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32);
    /// With `TSYNC`: fail with `ESRCH` instead of returning a thread id; required by the
    /// kernel when `TSYNC` and `NEW_LISTENER` are combined.
    pub const TSYNC_ESRCH: Self = Self(libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32);
    /// The notified task waits killably once the supervisor has received the request.
    pub const WAIT_KILLABLE_RECV: Self = Self(libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32);

    /// No flag.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// The raw bit mask.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for FilterFlags {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// Errors of the seccomp(2) wrappers.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The program is empty or longer than the kernel accepts.
    #[error("seccomp filter has {0} instructions; the kernel accepts 1 to {MAX_INSNS}")]
    Length(usize),
    /// The kernel refused the filter or the flags (`EACCES`: neither `no_new_privs` nor
    /// `CAP_SYS_ADMIN`; `EINVAL`: bad program or unknown flag).
    #[error("kernel refused the seccomp filter (flags {flags:#x})")]
    Load {
        flags: u32,
        #[source]
        source: Errno,
    },
    /// With `TSYNC`, another thread of the process could not take the filter.
    #[error("thread {tid} could not be synchronised to the seccomp filter")]
    Tsync { tid: i64 },
}

/// `SECCOMP_SET_MODE_FILTER` (`linux/seccomp.h`).
const SET_MODE_FILTER: libc::c_uint = 1;
/// `SECCOMP_GET_ACTION_AVAIL` (`linux/seccomp.h`).
const GET_ACTION_AVAIL: libc::c_uint = 2;

/// Installs `prog` as a seccomp filter of the calling thread (of every thread with
/// [`FilterFlags::TSYNC`]). Returns the user-notification listener when `flags` contains
/// [`FilterFlags::NEW_LISTENER`].
///
/// The caller must have set `no_new_privs` or hold `CAP_SYS_ADMIN` (see the module docs).
/// Uses seccomp(2); falls back to `prctl(PR_SET_SECCOMP)` only when the kernel lacks
/// seccomp(2) and no flag was asked for, since prctl cannot carry flags. Does not allocate,
/// so it may run in a child between fork and exec.
pub fn load_filter(
    prog: &[sock_filter],
    flags: FilterFlags,
) -> Result<Option<OwnedFd>, SeccompError> {
    if prog.is_empty() || prog.len() > MAX_INSNS {
        return Err(SeccompError::Length(prog.len()));
    }
    let fprog = libc::sock_fprog {
        // Cannot truncate: checked against MAX_INSNS above.
        len: prog.len() as libc::c_ushort,
        // The kernel only reads the program.
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: seccomp(SET_MODE_FILTER) reads `fprog` and the `len` instructions it points
    // to, both alive for the duration of the call; it writes no user memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SET_MODE_FILTER,
            flags.bits() as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        let errno = Errno::last();
        if errno == Errno::ENOSYS && flags.is_empty() {
            return load_with_prctl(&fprog);
        }
        return Err(SeccompError::Load {
            flags: flags.bits(),
            source: errno,
        });
    }
    if flags.contains(FilterFlags::NEW_LISTENER) {
        // The kernel returned a new fd (a listener is only created on success).
        // SAFETY: `ret` is a freshly created file descriptor that nothing else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }));
    }
    if ret > 0 {
        // Without TSYNC_ESRCH, TSYNC failure reports the thread id that blocked it.
        return Err(SeccompError::Tsync { tid: ret });
    }
    Ok(None)
}

/// Installs the filter with `prctl(PR_SET_SECCOMP)` (kernels before 3.17).
fn load_with_prctl(fprog: &libc::sock_fprog) -> Result<Option<OwnedFd>, SeccompError> {
    // SAFETY: PR_SET_SECCOMP reads the program `fprog` describes, which is alive for the
    // duration of the call; the unused trailing arguments must be zero.
    let ret = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            fprog as *const libc::sock_fprog,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if ret < 0 {
        return Err(SeccompError::Load {
            flags: 0,
            source: Errno::last(),
        });
    }
    Ok(None)
}

/// Whether the running kernel knows `flags` (all of them) for `SECCOMP_SET_MODE_FILTER`.
///
/// Asks with a NULL program: the kernel validates flags first and answers `EFAULT` for a
/// known combination, `EINVAL` otherwise. Nothing is installed.
pub fn flags_supported(flags: FilterFlags) -> bool {
    // SAFETY: with a NULL program pointer the kernel fails before installing anything and
    // touches no user memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SET_MODE_FILTER,
            flags.bits() as libc::c_ulong,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    ret < 0 && Errno::last() == Errno::EFAULT
}

/// Whether the running kernel implements the filter return action `action`
/// (a `SECCOMP_RET_*` value without data).
pub fn action_available(action: u32) -> bool {
    // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 from `action`, alive during the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            GET_ACTION_AVAIL,
            0 as libc::c_ulong,
            &action as *const u32,
        )
    };
    ret == 0
}

/// Converts a raw syscall return (`-errno` on failure) into a `Result`.
fn raw_result(ret: i64) -> Result<i64, Errno> {
    if (-4095..0).contains(&ret) {
        Err(Errno::from_raw((-ret) as i32))
    } else {
        Ok(ret)
    }
}

/// Lowest syscall number [`unassigned_syscall`] accepts: far above every number assigned
/// on x86_64 or i386, so the kernel itself can only answer `ENOSYS`.
pub const UNASSIGNED_SYSCALL_MIN: u32 = 1000;

/// Makes the 64-bit syscall `nr`, which must be unassigned (at least
/// [`UNASSIGNED_SYSCALL_MIN`] and below the x32 range); returns the errno it fails with.
/// Without a filter this is `ENOSYS`; under a filter it shows the filter's decision for
/// syscalls newer than the filter. A number out of range returns `EINVAL` untried.
pub fn unassigned_syscall(nr: u32) -> Errno {
    if !(UNASSIGNED_SYSCALL_MIN..0x4000_0000).contains(&nr) {
        return Errno::EINVAL;
    }
    // SAFETY: `nr` is not a syscall of this kernel (checked range above), so the kernel
    // runs no syscall body: it returns ENOSYS or the seccomp filter's verdict. No
    // argument is read.
    let ret = unsafe { libc::syscall(libc::c_long::from(nr as i32)) };
    if ret < 0 {
        Errno::last()
    } else {
        // A success would mean the number got assigned; report it as such.
        Errno::UnknownErrno
    }
}

/// `getpid` through the x32 ABI (syscall 39 with the x32 bit 0x40000000).
///
/// Kernels without x32 support answer `ENOSYS`; the seccomp filter sees the call either way.
#[cfg(target_arch = "x86_64")]
pub fn x32_getpid() -> Result<u32, Errno> {
    const X32_GETPID: libc::c_long = 0x4000_0000 | 39;
    // SAFETY: getpid takes no argument and touches no memory in either ABI.
    let ret = unsafe { libc::syscall(X32_GETPID) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(ret as u32)
}

/// Makes an i386 syscall through `int 0x80` with up to three integer arguments.
///
/// # Safety
///
/// `nr` must be an i386 syscall whose arguments are plain integers and whose effect does
/// not touch this process's memory or fds (e.g. getpid, kill).
#[cfg(target_arch = "x86_64")]
unsafe fn int80(nr: u32, a: u32, b: u32, c: u32) -> i64 {
    let ret: u32;
    // SAFETY: `int 0x80` enters the kernel's 32-bit compat syscall path, which reads
    // eax/ebx/ecx/edx and returns in eax. rbx is reserved by LLVM, so the first argument
    // is swapped into it and rbx restored afterwards. r8-r11 are declared clobbered
    // because older kernels zero them on this path; the stack is not used. The caller
    // guarantees the syscall itself is harmless.
    unsafe {
        std::arch::asm!(
            "xchg {first}, rbx",
            "int 0x80",
            "xchg {first}, rbx",
            first = inout(reg) u64::from(a) => _,
            inlateout("eax") nr => ret,
            in("ecx") b,
            in("edx") c,
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
        );
    }
    // The 32-bit result is a signed C long of the i386 ABI.
    i64::from(ret as i32)
}

/// `getpid` through the 32-bit `int 0x80` entry (i386 syscall 20).
///
/// On a kernel built without IA-32 emulation (or booted with `ia32_emulation=0`) the
/// instruction raises SIGSEGV; call it from a process that may die.
#[cfg(target_arch = "x86_64")]
pub fn ia32_getpid() -> Result<u32, Errno> {
    const I386_GETPID: u32 = 20;
    // SAFETY: getpid takes no argument and has no side effect.
    let ret = unsafe { int80(I386_GETPID, 0, 0, 0) };
    raw_result(ret).map(|pid| pid as u32)
}

/// `kill(pid, sig)` through the 32-bit `int 0x80` entry (i386 syscall 37); `sig` 0 only
/// checks that `pid` exists. See [`ia32_getpid`] about kernels without IA-32 emulation.
#[cfg(target_arch = "x86_64")]
pub fn ia32_kill(pid: i32, sig: i32) -> Result<(), Errno> {
    const I386_KILL: u32 = 37;
    // SAFETY: kill takes two integers and sends a signal, which is as memory-safe as
    // nix::sys::signal::kill.
    let ret = unsafe { int80(I386_KILL, pid as u32, sig as u32, 0) };
    raw_result(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_combine_and_test() {
        let f = FilterFlags::TSYNC | FilterFlags::LOG;
        assert_eq!(f.bits(), 3);
        assert!(f.contains(FilterFlags::LOG));
        assert!(!f.contains(FilterFlags::NEW_LISTENER));
        assert!(FilterFlags::empty().is_empty());
    }

    #[test]
    fn empty_or_oversized_program_is_refused_before_the_kernel() {
        assert!(matches!(
            load_filter(&[], FilterFlags::empty()),
            Err(SeccompError::Length(0))
        ));
        let insn = sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        };
        let long = vec![insn; MAX_INSNS + 1];
        assert!(matches!(
            load_filter(&long, FilterFlags::empty()),
            Err(SeccompError::Length(n)) if n == MAX_INSNS + 1
        ));
    }

    #[test]
    fn kernel_reports_known_flags_and_actions() {
        assert!(flags_supported(FilterFlags::TSYNC));
        assert!(flags_supported(FilterFlags::NEW_LISTENER));
        assert!(!flags_supported(FilterFlags(1 << 30)));
        assert!(action_available(libc::SECCOMP_RET_ALLOW));
        assert!(!action_available(0x1234_0000));
    }

    #[test]
    fn unassigned_syscall_is_enosys_and_low_numbers_are_refused() {
        assert_eq!(unassigned_syscall(1000), Errno::ENOSYS);
        assert_eq!(unassigned_syscall(39), Errno::EINVAL);
    }

    #[test]
    fn raw_results_map_to_errno() {
        assert_eq!(raw_result(-1), Err(Errno::EPERM));
        assert_eq!(raw_result(42), Ok(42));
    }
}
