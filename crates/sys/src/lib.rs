//! Syscall wrappers: the one place where jaula talks to libc.
//!
//! Every `unsafe` block of the project lives in this crate. Each module covers one
//! kernel area and exposes safe functions that take `OwnedFd`/`BorrowedFd`.

pub mod bpf;
pub mod caps;
pub mod fs;
pub mod process;
pub mod seccomp;
pub mod term;
