//! jaula's default seccomp profile: an allow-list that in effect matches Docker's.
//!
//! Everything not listed fails with EPERM. The list keeps what a full distribution needs
//! (systemd, apt, sshd, nginx, compilers, debuggers) and leaves out what reaches kernel
//! state that namespaces do not isolate: the keyring, kernel modules, the clock, swap,
//! mounting, new namespaces, eBPF, perf, io_uring, file handles, and obsolete syscalls
//! whose only users today are exploits. Groups of syscalls that a capability makes
//! legitimate come back when the process keeps that capability
//! ([`default_profile_for`]): the kernel checks the capability as well, so the filter
//! is defence in depth there, not the only gate.

use jaula_spec::{Seccomp, SyscallArg, SyscallRule};

/// The default capability set of an OCI process (runc's and Docker's defaults).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Syscalls allowed whatever the capabilities. Names of every x86 ABI are mixed: each
/// ABI takes the names it has.
const ALLOWED: &[&str] = &[
    "_llseek",
    "_newselect",
    "accept",
    "accept4",
    "access",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "file_getattr",
    "file_setattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lsm_get_self_attr",
    "lsm_list_modules",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "modify_ldt",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "nice",
    "oldfstat",
    "oldlstat",
    "oldolduname",
    "oldstat",
    "olduname",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readdir",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "sgetmask",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaction",
    "sigaltstack",
    "signal",
    "signalfd",
    "signalfd4",
    "sigpending",
    "sigprocmask",
    "sigreturn",
    "sigsuspend",
    "socketcall",
    "socketpair",
    "splice",
    "ssetmask",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uprobe",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Syscall groups that a capability makes legitimate: allowed when the process keeps any
/// of the capabilities named.
const CAP_GATED: &[(&[&str], &[&str])] = &[
    // Mounting, namespaces and the administration syscalls CAP_SYS_ADMIN stands for.
    // clone, clone3 and unshare come back without restriction too (see NAMESPACE_FLAGS).
    (
        &["CAP_SYS_ADMIN"],
        &[
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "open_tree_attr",
            "pivot_root",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (&["CAP_SYS_ADMIN", "CAP_BPF"], &["bpf"]),
    (&["CAP_SYS_ADMIN", "CAP_PERFMON"], &["perf_event_open"]),
    (&["CAP_SYS_ADMIN", "CAP_SYSLOG"], &["syslog"]),
    // File handles bypass path-based checks: open_by_handle_at was the "shocker" escape.
    (&["CAP_DAC_READ_SEARCH"], &["open_by_handle_at"]),
    (
        &["CAP_DAC_READ_SEARCH", "CAP_SYS_ADMIN"],
        &["name_to_handle_at"],
    ),
    (&["CAP_SYS_BOOT"], &["reboot"]),
    (&["CAP_SYS_CHROOT"], &["chroot"]),
    (
        &["CAP_SYS_MODULE"],
        &["delete_module", "finit_module", "init_module"],
    ),
    (&["CAP_SYS_PACCT"], &["acct"]),
    // Reading or changing another process's memory; userfaultfd makes kernel races
    // reliable, which exploits love.
    (
        &["CAP_SYS_PTRACE"],
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "userfaultfd",
        ],
    ),
    (&["CAP_SYS_RAWIO"], &["ioperm", "iopl"]),
    // The clock is not namespaced. adjtimex and clock_adjtime are blocked too: whether
    // they only read depends on a field of the struct they point to, which a filter
    // cannot see.
    (
        &["CAP_SYS_TIME"],
        &[
            "adjtimex",
            "clock_adjtime",
            "clock_adjtime64",
            "clock_settime",
            "clock_settime64",
            "settimeofday",
            "stime",
        ],
    ),
    (&["CAP_SYS_TTY_CONFIG"], &["vhangup"]),
    (
        &["CAP_SYS_NICE"],
        &[
            "get_mempolicy",
            "mbind",
            "migrate_pages",
            "move_pages",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
];

/// Never allowed, whatever the capabilities: the keyring is not namespaced; kexec and
/// swap act on the whole machine; io_uring bypasses seccomp for the operations it
/// performs; the rest are obsolete or removed syscalls (old module API, vm86, sysctl,
/// uselib, ustat, sysfs, nfsservctl, lookup_dcookie) kept only by old exploits. They are
/// listed for documentation and tests; being absent from the allow-lists is what blocks
/// them.
pub const NEVER_ALLOWED: &[&str] = &[
    "_sysctl",
    "add_key",
    "create_module",
    "get_kernel_syms",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "lsm_set_self_attr",
    "nfsservctl",
    "query_module",
    "request_key",
    "swapoff",
    "swapon",
    "sysfs",
    "uselib",
    "ustat",
    "vm86",
    "vm86old",
];

/// Namespace flags of clone(2) and unshare(2): new namespaces expose kernel code that is
/// otherwise reserved to the host's root (user namespaces above all).
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;
/// unshare(2) also takes CLONE_NEWTIME, whose bit is part of clone(2)'s exit signal.
const UNSHARE_NAMESPACE_FLAGS: u64 = NAMESPACE_FLAGS | libc::CLONE_NEWTIME as u64;

/// personality(2) values Docker allows: Linux, Linux32 (`setarch i386`), UNAME26, both,
/// and 0xffffffff (query). Others, like ADDR_NO_RANDOMIZE, weaken the process.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// Socket families nobody in a container needs and whose kernel code has a history:
/// AF_ALG (kernel crypto) and AF_VSOCK (talks to the hypervisor host).
const BLOCKED_SOCKET_FAMILIES: &[u64] = &[libc::AF_ALG as u64, libc::AF_VSOCK as u64];

/// The default profile for the default capability set ([`DEFAULT_CAPABILITIES`]).
pub fn default_profile() -> Seccomp {
    let caps: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|&c| c.to_owned()).collect();
    default_profile_for(&caps)
}

/// The default profile for a process whose bounding set is `caps` (`CAP_*` names; case
/// and the `CAP_` prefix do not matter).
///
/// Limitation: on i386, `socketcall` multiplexes socket(2) with its arguments in memory,
/// out of a filter's sight, so the socket family check covers 32-bit processes only when
/// they use the direct `socket` syscall.
pub fn default_profile_for(caps: &[String]) -> Seccomp {
    let has = |wanted: &str| caps.iter().any(|c| same_cap(c, wanted));
    let mut syscalls = vec![allow(ALLOWED)];

    for &value in PERSONALITIES {
        syscalls.push(rule(
            &["personality"],
            "SCMP_ACT_ALLOW",
            None,
            vec![eq(0, value)],
        ));
    }
    for &family in BLOCKED_SOCKET_FAMILIES {
        // EAFNOSUPPORT: what a kernel without the family says; callers fall back.
        let errno = Some(libc::EAFNOSUPPORT as u32);
        syscalls.push(rule(
            &["socket"],
            "SCMP_ACT_ERRNO",
            errno,
            vec![eq(0, family)],
        ));
    }
    syscalls.push(allow(&["socket"]));

    if !has("CAP_SYS_ADMIN") {
        // Threads and processes, but no new namespaces. clone3 passes its flags in memory
        // the filter cannot read: ENOSYS makes glibc fall back to clone.
        syscalls.push(rule(
            &["clone"],
            "SCMP_ACT_ALLOW",
            None,
            vec![masked_eq(0, NAMESPACE_FLAGS, 0)],
        ));
        syscalls.push(rule(
            &["unshare"],
            "SCMP_ACT_ALLOW",
            None,
            vec![masked_eq(0, UNSHARE_NAMESPACE_FLAGS, 0)],
        ));
        syscalls.push(rule(
            &["clone3"],
            "SCMP_ACT_ERRNO",
            Some(libc::ENOSYS as u32),
            Vec::new(),
        ));
    }
    for &(gates, names) in CAP_GATED {
        if gates.iter().any(|&cap| has(cap)) {
            syscalls.push(allow(names));
        }
    }

    Seccomp {
        default_action: "SCMP_ACT_ERRNO".to_owned(),
        default_errno_ret: Some(libc::EPERM as u32),
        architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
            .map(String::from)
            .to_vec(),
        flags: Vec::new(),
        listener_path: None,
        listener_metadata: None,
        syscalls,
    }
}

/// Whether capability names match, ignoring case and the `CAP_` prefix.
fn same_cap(given: &str, wanted: &str) -> bool {
    let strip = |s: &str| {
        let upper = s.to_ascii_uppercase();
        upper
            .strip_prefix("CAP_")
            .map(str::to_owned)
            .unwrap_or(upper)
    };
    strip(given) == strip(wanted)
}

fn allow(names: &[&str]) -> SyscallRule {
    rule(names, "SCMP_ACT_ALLOW", None, Vec::new())
}

fn rule(
    names: &[&str],
    action: &str,
    errno_ret: Option<u32>,
    args: Vec<SyscallArg>,
) -> SyscallRule {
    SyscallRule {
        names: names.iter().map(|&n| n.to_owned()).collect(),
        action: action.to_owned(),
        errno_ret,
        args,
    }
}

fn eq(index: u32, value: u64) -> SyscallArg {
    SyscallArg {
        index,
        value,
        value_two: 0,
        op: "SCMP_CMP_EQ".to_owned(),
    }
}

fn masked_eq(index: u32, mask: u64, value: u64) -> SyscallArg {
    SyscallArg {
        index,
        value: mask,
        value_two: value,
        op: "SCMP_CMP_MASKED_EQ".to_owned(),
    }
}
