//! OCI seccomp profiles compiled to classic BPF, plus the default profile.
//!
//! [`compile`] turns the `linux.seccomp` section of a spec into a [`Filter`]: a checked
//! classic-BPF program and the seccomp(2) flags to load it with. Compiling is pure (no
//! syscall), so a runtime validates the profile before it forks; the child then calls
//! [`Filter::load`] as its last step before `execve`. [`default_profile`] and
//! [`default_profile_for`] give jaula's default profile (Docker's, in effect).
//!
//! The program is built for the x86 family (x86_64, i386, x32); names of other
//! architectures are accepted and compile to nothing, since an x86 kernel never reports
//! them. Module map: `plan` validates the spec into per-ABI decisions, `codegen` lowers
//! them to BPF through the `asm` assembler (labels, long-jump trampolines), `tables` holds
//! the syscall numbers and `profile` the default profile.

mod action;
mod arch;
mod asm;
mod codegen;
mod error;
#[cfg(test)]
mod interp;
mod plan;
mod profile;
mod tables;

use std::os::fd::OwnedFd;

use jaula_sys::seccomp::{sock_filter, FilterFlags};

pub use action::Action;
pub use arch::Abi;
pub use error::Error;
pub use profile::{default_profile, default_profile_for, DEFAULT_CAPABILITIES, NEVER_ALLOWED};

/// Actions a profile may use (`SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`, as in libseccomp).
pub const SUPPORTED_ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

/// Argument comparison operators a profile may use.
pub const SUPPORTED_OPERATORS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// Architectures a profile may name. The x86 ones get code; the others are accepted and
/// compile to nothing, because an x86 kernel never reports them in `seccomp_data.arch`.
pub const SUPPORTED_ARCHES: &[&str] = arch::ARCH_NAMES;

/// Filter flags a profile may use (`SECCOMP_FILTER_FLAG_NEW_LISTENER` is implied by
/// `SCMP_ACT_NOTIFY`).
pub const SUPPORTED_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// A compiled, kernel-ready seccomp filter.
pub struct Filter {
    program: Vec<sock_filter>,
    flags: FilterFlags,
    ignored_syscalls: Vec<String>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &self.flags)
            .field("ignored_syscalls", &self.ignored_syscalls)
            .finish()
    }
}

impl Filter {
    /// The classic-BPF program.
    pub fn program(&self) -> &[sock_filter] {
        &self.program
    }

    /// The flags [`Filter::load`] passes to seccomp(2).
    pub fn flags(&self) -> FilterFlags {
        self.flags
    }

    /// Whether loading returns a user-notification listener (the profile uses
    /// `SCMP_ACT_NOTIFY`).
    pub fn has_listener(&self) -> bool {
        self.flags.contains(FilterFlags::NEW_LISTENER)
    }

    /// Syscall names of the profile that no x86 syscall table knows. The spec says to
    /// ignore them (they may be newer than these tables, or typos); a caller may want to
    /// log them.
    pub fn ignored_syscalls(&self) -> &[String] {
        &self.ignored_syscalls
    }

    /// Installs the filter on the calling thread (all threads with TSYNC) and returns the
    /// notify listener if [`Filter::has_listener`].
    ///
    /// The caller must have set `no_new_privs` or hold `CAP_SYS_ADMIN`; a runtime calls
    /// this last, after dropping capabilities. It does not allocate, so it is usable
    /// between fork and exec.
    pub fn load(&self) -> Result<Option<OwnedFd>, Error> {
        jaula_sys::seccomp::load_filter(&self.program, self.flags).map_err(Error::Load)
    }
}

/// Validates `seccomp` and compiles it to a BPF filter. Pure: makes no syscall.
///
/// For each syscall, rules with argument conditions are tried in profile order (all
/// conditions of a rule must hold; the first matching rule decides), then the rule without
/// conditions, then `defaultAction`. Syscalls of an ABI the profile does not list kill the
/// process; numbers above the syscall tables get ENOSYS unless the default action lets
/// syscalls run. On i386, arguments are compared as 32-bit values (the value's high half is
/// ignored, as libseccomp does); on x86_64 and x32, as full 64-bit values.
pub fn compile(seccomp: &jaula_spec::Seccomp) -> Result<Filter, Error> {
    let plan = plan::Plan::new(seccomp)?;
    let program = codegen::generate(&plan)?;
    Ok(Filter {
        program,
        flags: plan.flags,
        ignored_syscalls: plan.ignored_syscalls,
    })
}

#[cfg(test)]
mod tests;
