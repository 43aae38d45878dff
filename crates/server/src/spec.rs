//! A server definition becomes an OCI spec: the plan the runtime executes.
//!
//! This is pure (no syscalls beyond reading a custom seccomp profile), so everything a
//! server will get (namespaces, id maps, capabilities, mounts, limits) is unit-tested here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jaula_spec::{
    Capabilities, Cpu, IdMapping, Linux, Memory, Mount, Namespace, Pids, Process, Resources, Root,
    Seccomp, Spec, User,
};

use crate::config::{normalize_capability, InitStyle, NetMode, SeccompChoice, ServerConfig};
use crate::home::Server;
use crate::idmap::{self, RANGE};
use crate::units::CPU_PERIOD_US;

/// Annotation naming the server a container belongs to (absent on plain OCI containers).
pub const ANNOTATION_SERVER: &str = "org.jaula.server";
/// Annotation holding the server's context id.
pub const ANNOTATION_CONTEXT: &str = "org.jaula.context";

/// Capabilities a server keeps by default: Linux-VServer's secure set, without what a
/// distribution does not need and what reaches past the context (modules, raw I/O, the
/// clock, reboot, mounts, network configuration, MAC policy, eBPF, perf, ptrace of
/// others, raw sockets on a shared stack).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// The `PATH` every server process starts with.
pub const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// PID 1's child under the `minimal` style: runs `/etc/rc.local`, then each configured
/// service (its arguments) in the background, and on SIGTERM passes the stop on to every
/// process of the server and waits for them. jaula's reaper is PID 1 above it.
pub const MINIMAL_SCRIPT: &str = r#"trap 'kill -TERM -1 2>/dev/null; wait; exit 0' TERM INT HUP
if [ -x /etc/rc.local ]; then /etc/rc.local start & wait $!; fi
for svc in "$@"; do /bin/sh -c "$svc" & done
while :; do sleep 2147483647 & wait $!; done"#;

/// Why a spec could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read seccomp profile {path}")]
    ReadProfile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid seccomp profile {path}")]
    ParseProfile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// How the server's first process runs, for the runtime's `InitMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid1 {
    /// The program itself is PID 1.
    Program,
    /// jaula's reaper is PID 1 and runs the program as its child.
    Reaper,
}

/// The init style's PID 1 arrangement.
pub fn pid1(cfg: &ServerConfig) -> Pid1 {
    match cfg.init.style {
        InitStyle::Minimal => Pid1::Reaper,
        InitStyle::Init | InitStyle::Command => Pid1::Program,
    }
}

/// The capability names in force (`CAP_*`), sorted and unique.
pub fn capabilities(cfg: &ServerConfig) -> Vec<String> {
    let mut caps: Vec<String> = match &cfg.security.capabilities {
        Some(list) => list
            .iter()
            .filter_map(|c| normalize_capability(c))
            .collect(),
        None => DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
    };
    caps.sort();
    caps.dedup();
    caps
}

/// The command line of the server's first program.
pub fn args(cfg: &ServerConfig) -> Vec<String> {
    match cfg.init.style {
        InitStyle::Init if cfg.init.command.is_empty() => vec!["/sbin/init".into()],
        InitStyle::Init | InitStyle::Command => cfg.init.command.clone(),
        InitStyle::Minimal => {
            let mut a = vec![
                "/bin/sh".into(),
                "-c".into(),
                MINIMAL_SCRIPT.into(),
                "jaula-minimal".into(),
            ];
            a.extend(cfg.init.services.iter().cloned());
            a
        }
    }
}

/// The spec of `server`.
pub fn server_spec(server: &Server) -> Result<Spec, SpecError> {
    let cfg = &server.config;
    let caps = capabilities(cfg);
    let mut annotations = BTreeMap::new();
    annotations.insert(ANNOTATION_SERVER.to_string(), server.name.clone());
    annotations.insert(ANNOTATION_CONTEXT.to_string(), cfg.context.to_string());
    if !cfg.security.privileged {
        // Files on disk keep the server's own ids; the mount maps them to its range.
        annotations.insert(
            jaula_runtime::plan::IDMAP_ANNOTATION.to_string(),
            "true".to_string(),
        );
    }
    Ok(Spec {
        oci_version: jaula_spec::OCI_VERSION.into(),
        process: Some(process(cfg, &caps)),
        root: Some(Root {
            path: server.rootfs(),
            readonly: false,
        }),
        hostname: Some(cfg.hostname_or(&server.name).to_string()),
        mounts: mounts(cfg),
        annotations,
        linux: Some(linux(cfg, &caps)?),
        ..Default::default()
    })
}

fn process(cfg: &ServerConfig, caps: &[String]) -> Process {
    let mut env = vec![PATH.to_string(), "HOME=/root".into()];
    if cfg.init.style == InitStyle::Init {
        // systemd and other inits read this to know they run in a container.
        env.push("container=jaula".into());
    }
    Process {
        user: User::default(),
        args: args(cfg),
        env,
        cwd: "/".into(),
        capabilities: Some(Capabilities {
            bounding: Some(caps.to_vec()),
            effective: Some(caps.to_vec()),
            permitted: Some(caps.to_vec()),
            inheritable: Some(Vec::new()),
            ambient: None,
        }),
        // A whole system needs its set-uid programs (su, passwd, sudo): no_new_privs would
        // break them. The user namespace and the capability bound limit what they gain.
        no_new_privileges: false,
        ..Default::default()
    }
}

use jaula_runtime::mount_entry as mount;

/// The runtime's default mounts, adjusted for a whole system, then the configured ones.
fn mounts(cfg: &ServerConfig) -> Vec<Mount> {
    let own_netns = has_own_netns(cfg);
    let mut out: Vec<Mount> = jaula_runtime::default_mounts()
        .into_iter()
        .map(|m| {
            // sysfs can only be mounted by the owner of the network namespace; a server
            // on the host's stack sees the host's /sys read-only instead.
            if m.destination == Path::new("/sys") && !own_netns && !cfg.security.privileged {
                mount(
                    "/sys",
                    "bind",
                    "/sys",
                    &["rbind", "nosuid", "noexec", "nodev", "ro"],
                )
            } else if m.destination == Path::new("/sys/fs/cgroup")
                && cfg.init.style == InitStyle::Init
            {
                // An init manages its services in sub-cgroups: it needs its cgroup
                // writable (only the files delegated to it are, see run::delegate).
                Mount {
                    options: m.options.into_iter().filter(|o| o != "ro").collect(),
                    ..m
                }
            } else {
                m
            }
        })
        .collect();
    // A distribution expects a fresh /run at boot (pid files, sockets, locks).
    out.push(mount(
        "/run",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "mode=755", "size=65536k"],
    ));
    // systemd mounts /run/lock itself and gives up when it cannot, which it cannot without
    // CAP_SYS_ADMIN: it gets it mounted (Debian's /var/lock points there anyway).
    out.push(mount(
        "/run/lock",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "noexec", "mode=1777", "size=5120k"],
    ));
    for m in &cfg.mounts {
        let mut options = m.options.clone();
        if m.typ == "bind" && !options.iter().any(|o| o == "bind" || o == "rbind") {
            options.insert(0, "rbind".into());
        }
        out.push(Mount {
            destination: m.destination.clone(),
            typ: Some(m.typ.clone()),
            source: Some(m.source.clone()),
            options,
            ..Default::default()
        });
    }
    out
}

/// True when the server gets a network namespace of its own.
pub fn has_own_netns(cfg: &ServerConfig) -> bool {
    matches!(cfg.network.effective_mode(), NetMode::Veth | NetMode::None)
}

fn linux(cfg: &ServerConfig, caps: &[String]) -> Result<Linux, SpecError> {
    let mut ns = vec!["pid", "ipc", "uts", "mount", "cgroup"];
    if has_own_netns(cfg) {
        ns.push("network");
    }
    let (mut uid_mappings, mut gid_mappings) = (Vec::new(), Vec::new());
    if !cfg.security.privileged {
        ns.push("user");
        let map = IdMapping {
            container_id: 0,
            host_id: idmap::host_base(cfg),
            size: RANGE,
        };
        uid_mappings.push(map);
        gid_mappings.push(map);
    }
    Ok(Linux {
        namespaces: ns
            .into_iter()
            .map(|t| Namespace {
                typ: t.into(),
                path: None,
            })
            .collect(),
        uid_mappings,
        gid_mappings,
        resources: resources(cfg),
        seccomp: seccomp(cfg, caps)?,
        masked_paths: jaula_runtime::MASKED_PATHS.iter().map(Into::into).collect(),
        readonly_paths: jaula_runtime::READONLY_PATHS
            .iter()
            .map(Into::into)
            .collect(),
        ..Default::default()
    })
}

fn resources(cfg: &ServerConfig) -> Option<Resources> {
    let l = &cfg.limits;
    if l.memory.is_none() && l.cpus.is_none() && l.pids.is_none() {
        return None;
    }
    Some(Resources {
        memory: l.memory.map(|m| Memory {
            limit: Some(m.0 as i64),
            ..Default::default()
        }),
        cpu: l.cpus.map(|c| Cpu {
            quota: Some(c.quota_us()),
            period: Some(CPU_PERIOD_US),
            ..Default::default()
        }),
        pids: l.pids.map(|p| Pids { limit: p as i64 }),
        ..Default::default()
    })
}

fn seccomp(cfg: &ServerConfig, caps: &[String]) -> Result<Option<Seccomp>, SpecError> {
    match &cfg.security.seccomp {
        SeccompChoice::Default => Ok(Some(jaula_seccomp::default_profile_for(caps))),
        SeccompChoice::Unconfined => Ok(None),
        SeccompChoice::Profile(path) => {
            let text = std::fs::read(path).map_err(|source| SpecError::ReadProfile {
                path: path.clone(),
                source,
            })?;
            serde_json::from_slice(&text)
                .map(Some)
                .map_err(|source| SpecError::ParseProfile {
                    path: path.clone(),
                    source,
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;

    fn server(cfg: ServerConfig) -> Server {
        Server {
            name: "web".into(),
            dir: "/var/lib/jaula/web".into(),
            config: cfg,
        }
    }

    fn ns(spec: &Spec) -> Vec<String> {
        spec.linux
            .as_ref()
            .unwrap()
            .namespaces
            .iter()
            .map(|n| n.typ.clone())
            .collect()
    }

    #[test]
    fn default_server_is_user_namespaced_without_dangerous_caps() {
        let spec = server_spec(&server(ServerConfig::new(40000))).unwrap();
        let linux = spec.linux.as_ref().unwrap();
        assert_eq!(
            ns(&spec),
            ["pid", "ipc", "uts", "mount", "cgroup", "network", "user"]
        );
        assert_eq!(linux.uid_mappings[0].host_id, 40000 << 16);
        assert_eq!(linux.uid_mappings[0].size, 65536);
        let caps = spec
            .process
            .as_ref()
            .unwrap()
            .capabilities
            .as_ref()
            .unwrap();
        let bounding = caps.bounding.as_ref().unwrap();
        for bad in [
            "CAP_SYS_ADMIN",
            "CAP_NET_ADMIN",
            "CAP_SYS_MODULE",
            "CAP_SYS_RAWIO",
            "CAP_SYS_TIME",
            "CAP_SYS_BOOT",
            "CAP_MAC_ADMIN",
            "CAP_BPF",
            "CAP_PERFMON",
        ] {
            assert!(!bounding.iter().any(|c| c == bad), "{bad}");
        }
        assert_eq!(caps.inheritable.as_deref(), Some(&[][..]));
        assert!(linux.seccomp.is_some());
        assert!(linux
            .masked_paths
            .iter()
            .any(|p| p == Path::new("/proc/kcore")));
        assert_eq!(spec.hostname.as_deref(), Some("web"));
        assert_eq!(
            spec.root.as_ref().unwrap().path,
            Path::new("/var/lib/jaula/web/rootfs")
        );
        assert_eq!(spec.annotations[ANNOTATION_CONTEXT], "40000");
    }

    #[test]
    fn privileged_and_host_network_drop_their_namespaces() {
        let mut cfg = ServerConfig::new(40000);
        cfg.security.privileged = true;
        cfg.network.mode = Some(NetMode::Host);
        let spec = server_spec(&server(cfg)).unwrap();
        assert_eq!(ns(&spec), ["pid", "ipc", "uts", "mount", "cgroup"]);
        assert!(spec.linux.unwrap().uid_mappings.is_empty());
    }

    #[test]
    fn shared_stack_with_user_namespace_binds_sys() {
        let mut cfg = ServerConfig::new(40000);
        cfg.network.addresses = vec!["127.0.1.1".parse().unwrap()];
        let spec = server_spec(&server(cfg)).unwrap();
        let sys = spec
            .mounts
            .iter()
            .find(|m| m.destination == Path::new("/sys"))
            .unwrap();
        assert_eq!(sys.typ.as_deref(), Some("bind"));
        assert!(sys.options.iter().any(|o| o == "ro"));
    }

    #[test]
    fn limits_become_resources() {
        let mut cfg = ServerConfig::new(40000);
        cfg.limits.memory = Some("512M".parse().unwrap());
        cfg.limits.cpus = Some("1.5".parse().unwrap());
        cfg.limits.pids = Some(64);
        let r = resources(&cfg).unwrap();
        assert_eq!(r.memory.unwrap().limit, Some(512 << 20));
        let cpu = r.cpu.unwrap();
        assert_eq!((cpu.quota, cpu.period), (Some(150_000), Some(100_000)));
        assert_eq!(r.pids.unwrap().limit, 64);
        assert!(resources(&ServerConfig::new(40000)).is_none());
    }

    #[test]
    fn init_styles_choose_pid1_and_args() {
        let mut cfg = ServerConfig::new(40000);
        assert_eq!(pid1(&cfg), Pid1::Reaper);
        cfg.init.services = vec!["httpd -f".into()];
        let a = args(&cfg);
        assert_eq!(a[0], "/bin/sh");
        assert_eq!(a.last().unwrap(), "httpd -f");
        cfg.init.services.clear();
        cfg.init.style = InitStyle::Init;
        assert_eq!(args(&cfg), ["/sbin/init"]);
        assert_eq!(pid1(&cfg), Pid1::Program);
        let spec = server_spec(&server(cfg.clone())).unwrap();
        assert!(spec
            .process
            .unwrap()
            .env
            .iter()
            .any(|e| e == "container=jaula"));
        cfg.init.style = InitStyle::Command;
        cfg.init.command = vec!["/bin/sleep".into(), "99".into()];
        assert_eq!(args(&cfg), ["/bin/sleep", "99"]);
    }

    #[test]
    fn configured_bind_mounts_are_recursive() {
        let mut cfg = ServerConfig::new(40000);
        cfg.mounts = crate::build::host_mounts();
        let spec = server_spec(&server(cfg)).unwrap();
        let usr = spec
            .mounts
            .iter()
            .find(|m| m.destination == Path::new("/usr"))
            .unwrap();
        assert_eq!(usr.options, ["rbind", "ro"]);
    }

    #[test]
    fn custom_capabilities_and_unconfined_seccomp() {
        let mut cfg = ServerConfig::new(40000);
        cfg.security.capabilities = Some(vec!["kill".into(), "CAP_KILL".into(), "net_raw".into()]);
        cfg.security.seccomp = SeccompChoice::Unconfined;
        assert_eq!(capabilities(&cfg), ["CAP_KILL", "CAP_NET_RAW"]);
        let spec = server_spec(&server(cfg)).unwrap();
        assert!(spec.linux.unwrap().seccomp.is_none());
    }
}
