//! The bpf(2) syscall: loading programs and attaching them to cgroups.
