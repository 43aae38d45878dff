//! The hardened default `config.json` (`jaula-oci spec`) and the `features` document.

use std::collections::BTreeMap;

use jaula_spec::{
    Capabilities, Features, IdMapping, Linux, Mount, Namespace, Process, Rlimit, Root, Spec, User,
};

use crate::plan::CAP_NAMES;

/// Capabilities a default container keeps: the same short list as runc's `spec`.
pub const DEFAULT_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// Paths hidden from containers: they leak host information or kernel state.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths containers may read but not write.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// One `mounts` entry from short strings.
pub fn mount_entry(dest: &str, typ: &str, source: &str, opts: &[&str]) -> Mount {
    Mount {
        destination: dest.into(),
        typ: Some(typ.into()),
        source: Some(source.into()),
        options: opts.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The default mounts every container gets.
pub fn default_mounts() -> Vec<Mount> {
    vec![
        mount_entry("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount_entry(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount_entry(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount_entry(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount_entry(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount_entry(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount_entry(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

/// runc's `spec` layout, hardened: seccomp default profile and no_new_privs.
pub fn default_spec(rootless: bool) -> Spec {
    let caps = strings(DEFAULT_CAPS);
    let mut namespaces: Vec<Namespace> = ["pid", "network", "ipc", "uts", "mount", "cgroup"]
        .iter()
        .map(|t| Namespace {
            typ: t.to_string(),
            path: None,
        })
        .collect();
    let (mut uid_mappings, mut gid_mappings) = (Vec::new(), Vec::new());
    if rootless {
        namespaces.push(Namespace {
            typ: "user".into(),
            path: None,
        });
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        uid_mappings.push(IdMapping {
            container_id: 0,
            host_id: uid,
            size: 1,
        });
        gid_mappings.push(IdMapping {
            container_id: 0,
            host_id: gid,
            size: 1,
        });
    }
    Spec {
        oci_version: jaula_spec::OCI_VERSION.into(),
        process: Some(Process {
            terminal: true,
            user: User {
                uid: 0,
                gid: 0,
                ..Default::default()
            },
            args: vec!["sh".into()],
            env: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                "TERM=xterm".into(),
            ],
            cwd: "/".into(),
            capabilities: Some(Capabilities {
                bounding: Some(caps.clone()),
                effective: Some(caps.clone()),
                permitted: Some(caps),
                inheritable: None,
                ambient: None,
            }),
            rlimits: vec![Rlimit {
                typ: "RLIMIT_NOFILE".into(),
                hard: 1024,
                soft: 1024,
            }],
            no_new_privileges: true,
            ..Default::default()
        }),
        root: Some(Root {
            path: "rootfs".into(),
            readonly: true,
        }),
        hostname: Some("jaula".into()),
        mounts: default_mounts(),
        linux: Some(Linux {
            namespaces,
            uid_mappings,
            gid_mappings,
            masked_paths: MASKED_PATHS.iter().map(Into::into).collect(),
            readonly_paths: READONLY_PATHS.iter().map(Into::into).collect(),
            seccomp: Some(jaula_seccomp::default_profile()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What this runtime supports, for `jaula-oci features`.
pub fn features() -> Features {
    use jaula_spec::{CgroupFeatures, Enabled, LinuxFeatures, MountExtensions, SeccompFeatures};
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    Features {
        oci_version_min: "1.0.0".into(),
        oci_version_max: jaula_spec::OCI_VERSION.into(),
        hooks: strings(&[
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ]),
        mount_options: strings(&[
            "async",
            "atime",
            "bind",
            "defaults",
            "dev",
            "diratime",
            "dirsync",
            "exec",
            "lazytime",
            "loud",
            "mand",
            "noatime",
            "nodev",
            "nodiratime",
            "noexec",
            "nolazytime",
            "nomand",
            "norelatime",
            "nostrictatime",
            "nosuid",
            "private",
            "rbind",
            "relatime",
            "rprivate",
            "rshared",
            "rslave",
            "runbindable",
            "ro",
            "rw",
            "shared",
            "silent",
            "slave",
            "strictatime",
            "suid",
            "sync",
            "unbindable",
        ]),
        linux: LinuxFeatures {
            namespaces: strings(&[
                "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
            ]),
            capabilities: strings(&CAP_NAMES),
            cgroup: CgroupFeatures {
                v1: true,
                v2: true,
                systemd: false,
                systemd_user: false,
                rdma: false,
            },
            seccomp: SeccompFeatures {
                enabled: true,
                actions: strings(jaula_seccomp::SUPPORTED_ACTIONS),
                operators: strings(jaula_seccomp::SUPPORTED_OPERATORS),
                archs: strings(jaula_seccomp::SUPPORTED_ARCHES),
                known_flags: strings(jaula_seccomp::SUPPORTED_FLAGS),
                supported_flags: strings(jaula_seccomp::SUPPORTED_FLAGS),
            },
            apparmor: Enabled { enabled: apparmor },
            selinux: Enabled { enabled: false },
            intel_rdt: Enabled { enabled: false },
            mount_extensions: MountExtensions {
                idmap: Enabled { enabled: false },
            },
        },
        annotations: BTreeMap::new(),
        potentially_unsafe_config_annotations: Vec::new(),
    }
}
