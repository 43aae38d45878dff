//! OCI seccomp profiles compiled to classic BPF, plus the default profile.
