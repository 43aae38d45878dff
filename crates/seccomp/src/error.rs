//! Errors of profile validation, compilation and loading.

use jaula_sys::seccomp::SeccompError;

/// Why a seccomp profile cannot be compiled or loaded. Messages name the spec key
/// (`linux.seccomp.…`) that holds the offending value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{key}: unknown seccomp action {value:?}")]
    UnknownAction { key: String, value: String },
    #[error(
        "{key}: errnoRet is not allowed with {action} (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE)"
    )]
    ErrnoRetNotAllowed { key: String, action: String },
    #[error("{key}: errnoRet {value} is above {max}")]
    ErrnoRetRange { key: String, value: u32, max: u32 },
    #[error("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (the runtime could not finish starting the container)")]
    NotifyDefault,
    #[error("linux.seccomp.architectures: unknown architecture {0:?}")]
    UnknownArch(String),
    #[error("linux.seccomp.flags: unknown flag {0:?}")]
    UnknownFlag(String),
    #[error("{key}: unknown operator {value:?}")]
    UnknownOperator { key: String, value: String },
    #[error("{key}: argument index {index} is out of range (0 to 5)")]
    ArgIndex { key: String, index: u32 },
    #[error("{key}: names is empty")]
    NoNames { key: String },
    #[error("the compiled filter has {0} instructions; the kernel accepts at most 4096")]
    TooLong(usize),
    #[error("internal seccomp assembler error: {0}")]
    Assembler(String),
    #[error("the seccomp compiler targets x86 hosts only")]
    UnsupportedHost,
    #[error("cannot load the seccomp filter")]
    Load(#[source] SeccompError),
}
