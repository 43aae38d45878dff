//! seccomp(2): loading classic-BPF syscall filters and using notify listeners.
