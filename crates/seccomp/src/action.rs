//! Seccomp actions: parsing the spec's `SCMP_ACT_*` names and encoding `SECCOMP_RET_*`.

use crate::Error;

/// The kernel clamps a filter's errno to MAX_ERRNO; larger values are a profile mistake.
const MAX_ERRNO: u32 = 4095;
/// `SECCOMP_RET_DATA` is 16 bits wide: the limit for `SCMP_ACT_TRACE` data.
const MAX_TRACE_DATA: u32 = 0xffff;
/// What `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` return without `errnoRet` (runc's choice).
const DEFAULT_ERRNO: u16 = libc::EPERM as u16;

/// What the filter does with a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Kill the whole process (SIGSYS).
    KillProcess,
    /// Kill the calling thread only (`SCMP_ACT_KILL` and `SCMP_ACT_KILL_THREAD`).
    KillThread,
    /// Send SIGSYS to the thread.
    Trap,
    /// Fail the syscall with this errno.
    Errno(u16),
    /// Notify a ptrace tracer, passing this value (ENOSYS when no tracer).
    Trace(u16),
    /// Allow and log.
    Log,
    /// Allow.
    Allow,
    /// Ask the user-notification listener.
    Notify,
}

impl Action {
    /// The `SECCOMP_RET_*` value the filter returns.
    pub fn ret_value(self) -> u32 {
        match self {
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Errno(errno) => libc::SECCOMP_RET_ERRNO | u32::from(errno),
            Action::Trace(data) => libc::SECCOMP_RET_TRACE | u32::from(data),
            Action::Log => libc::SECCOMP_RET_LOG,
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Notify => libc::SECCOMP_RET_USER_NOTIF,
        }
    }

    /// Rank as the kernel ranks actions of stacked filters: lower wins (it compares
    /// the action bits as signed, so KILL_PROCESS comes first and ALLOW last).
    pub fn precedence(self) -> i32 {
        (self.ret_value() & libc::SECCOMP_RET_ACTION_FULL) as i32
    }

    /// Whether the syscall runs (possibly logged): such a default action makes the filter
    /// a deny-list, where unknown syscalls must keep running rather than get ENOSYS.
    pub fn lets_syscall_run(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }

    /// Parses an `SCMP_ACT_*` name with its optional `errnoRet`; `key` names the spec
    /// field for errors.
    pub(crate) fn parse(name: &str, errno_ret: Option<u32>, key: &str) -> Result<Self, Error> {
        let action = match name {
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_ERRNO" => Action::Errno(data(errno_ret, MAX_ERRNO, key)?),
            "SCMP_ACT_TRACE" => Action::Trace(data(errno_ret, MAX_TRACE_DATA, key)?),
            "SCMP_ACT_LOG" => Action::Log,
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_NOTIFY" => Action::Notify,
            _ => {
                return Err(Error::UnknownAction {
                    key: key.to_owned(),
                    value: name.to_owned(),
                })
            }
        };
        if errno_ret.is_some() && !matches!(action, Action::Errno(_) | Action::Trace(_)) {
            // The spec: a runtime MUST fail when errnoRet comes with an action without one.
            return Err(Error::ErrnoRetNotAllowed {
                key: key.to_owned(),
                action: name.to_owned(),
            });
        }
        Ok(action)
    }
}

/// The action's 16-bit data from `errnoRet`, defaulting to EPERM.
fn data(errno_ret: Option<u32>, max: u32, key: &str) -> Result<u16, Error> {
    match errno_ret {
        None => Ok(DEFAULT_ERRNO),
        Some(value) if value <= max => Ok(value as u16),
        Some(value) => Err(Error::ErrnoRetRange {
            key: key.to_owned(),
            value,
            max,
        }),
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::KillProcess => f.write_str("SCMP_ACT_KILL_PROCESS"),
            Action::KillThread => f.write_str("SCMP_ACT_KILL_THREAD"),
            Action::Trap => f.write_str("SCMP_ACT_TRAP"),
            Action::Errno(e) => write!(f, "SCMP_ACT_ERRNO({e})"),
            Action::Trace(d) => write!(f, "SCMP_ACT_TRACE({d})"),
            Action::Log => f.write_str("SCMP_ACT_LOG"),
            Action::Allow => f.write_str("SCMP_ACT_ALLOW"),
            Action::Notify => f.write_str("SCMP_ACT_NOTIFY"),
        }
    }
}
