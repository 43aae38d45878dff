//! Syscall wrappers: the one place where jaula talks to libc.
