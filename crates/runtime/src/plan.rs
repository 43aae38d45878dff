//! Spec -> plan: every check that can be done before forking happens here.
//!
//! A [`Plan`] holds only validated, typed data (flags, numbers, C strings), so the
//! child that executes it never parses anything. Nothing here needs root.

use std::ffi::CString;
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use jaula_spec::{Hooks, IdMapping, Resources, Spec};

mod caps;
mod mounts;

pub use caps::{cap_number, CapSets, CAP_NAMES};
pub use mounts::{MountKind, MountPlan};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("root.path {path} is not a directory")]
    NoRootfs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("linux.seccomp")]
    Seccomp(#[source] jaula_seccomp::Error),
}

pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> PlanError {
    PlanError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

type R<T> = Result<T, PlanError>;

/// Annotation asking for an idmapped rootfs.
pub const IDMAP_ANNOTATION: &str = "org.jaula.rootfs.idmap";

/// Namespaces to create (`new`) and to join by path (`join`, in the order to join).
#[derive(Debug, Clone)]
pub struct NsPlan {
    pub new: CloneFlags,
    pub join: Vec<(CloneFlags, PathBuf)>,
}

/// nix has no constant for the time namespace.
pub const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

impl Default for NsPlan {
    fn default() -> Self {
        NsPlan {
            new: CloneFlags::empty(),
            join: Vec::new(),
        }
    }
}

impl NsPlan {
    pub fn has(&self, f: CloneFlags) -> bool {
        self.new.contains(f) || self.join.iter().any(|(k, _)| *k == f)
    }
}

/// A device node to create in the container's /dev.
#[derive(Debug, Clone)]
pub struct DevicePlan {
    pub path: PathBuf,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    pub kind: u32,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The container process, ready for execve.
#[derive(Debug, Clone, Default)]
pub struct ProcessPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub umask: u32,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub caps: CapSets,
    pub no_new_privs: bool,
    /// (resource, soft, hard)
    pub rlimits: Vec<(i32, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    pub apparmor: Option<String>,
    /// SELinux process label, only on hosts with SELinux enabled.
    pub selinux: Option<String>,
    pub personality: Option<u64>,
    /// Socket-activation fds passed in; the program gets LISTEN_FDS/LISTEN_PID.
    pub listen_fds: u32,
}

/// Everything `create` needs, validated.
#[derive(Debug)]
pub struct Plan {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub readonly_root: bool,
    /// Present the rootfs through an idmapped mount of the container's user
    /// namespace (annotation `org.jaula.rootfs.idmap=true`): files owned by 0 on
    /// disk are root inside, with no chown of the tree.
    pub idmap_rootfs: bool,
    pub ns: NsPlan,
    pub uid_map: Vec<IdMapping>,
    pub gid_map: Vec<IdMapping>,
    /// Lines for /proc/self/timens_offsets ("monotonic 5 0").
    pub time_offsets: Vec<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub mounts: Vec<MountPlan>,
    pub root_propagation: MsFlags,
    pub extra_propagation: Option<MsFlags>,
    pub devices: Vec<DevicePlan>,
    pub masked: Vec<PathBuf>,
    pub readonly: Vec<PathBuf>,
    /// (path below /proc/sys, value)
    pub sysctls: Vec<(PathBuf, String)>,
    pub process: ProcessPlan,
    pub seccomp: Option<jaula_seccomp::Filter>,
    pub cgroups_path: Option<String>,
    pub resources: Option<Resources>,
    pub hooks: Hooks,
    pub spec: Spec,
}

impl Plan {
    /// Loads `<bundle>/config.json` and validates it.
    pub fn from_bundle(id: &str, bundle: &Path) -> crate::Result<Plan> {
        let bundle = std::fs::canonicalize(bundle).map_err(|e| crate::Error::io(bundle, e))?;
        let spec = Spec::load(&bundle.join("config.json"))?;
        Ok(Plan::new(id, &bundle, spec)?)
    }

    /// Validates `spec` for a container `id` whose bundle is `bundle` (absolute).
    pub fn new(id: &str, bundle: &Path, spec: Spec) -> R<Plan> {
        if !spec.oci_version.starts_with("1.") {
            return Err(invalid(
                "ociVersion",
                format!("unsupported version {:?}", spec.oci_version),
            ));
        }
        let root = spec
            .root
            .as_ref()
            .ok_or_else(|| invalid("root", "missing"))?;
        let rootfs = bundle.join(&root.path);
        let meta = std::fs::metadata(&rootfs).map_err(|source| PlanError::NoRootfs {
            path: rootfs.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(PlanError::NoRootfs {
                path: rootfs,
                source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
            });
        }
        let rootfs = std::fs::canonicalize(&rootfs).map_err(|source| PlanError::NoRootfs {
            path: rootfs.clone(),
            source,
        })?;
        let default_linux = jaula_spec::Linux::default();
        let linux = spec.linux.as_ref().unwrap_or(&default_linux);
        reject_unsupported(linux)?;
        let ns = namespaces(linux)?;
        check_id_maps(linux, &ns)?;
        let process = process(spec.process.as_ref())?;
        let seccomp = match &linux.seccomp {
            Some(s) => Some(jaula_seccomp::compile(s).map_err(PlanError::Seccomp)?),
            None => None,
        };
        if (spec.hostname.as_deref().is_some_and(|h| !h.is_empty()) || spec.domainname.is_some())
            && !ns.has(CloneFlags::CLONE_NEWUTS)
        {
            return Err(invalid("hostname", "setting it needs a uts namespace"));
        }
        let (root_propagation, extra_propagation) =
            rootfs_propagation(linux.rootfs_propagation.as_deref())?;
        let idmap_rootfs = match spec.annotations.get(IDMAP_ANNOTATION).map(String::as_str) {
            None | Some("false") => false,
            Some("true") if ns.new.contains(CloneFlags::CLONE_NEWUSER) => true,
            Some("true") => return Err(invalid(IDMAP_ANNOTATION, "needs a new user namespace")),
            Some(other) => {
                return Err(invalid(
                    IDMAP_ANNOTATION,
                    format!("expected true or false, got {other:?}"),
                ))
            }
        };
        Ok(Plan {
            id: id.to_owned(),
            bundle: bundle.to_owned(),
            rootfs,
            readonly_root: root.readonly,
            idmap_rootfs,
            uid_map: linux.uid_mappings.clone(),
            gid_map: linux.gid_mappings.clone(),
            time_offsets: time_offsets(linux, &ns)?,
            hostname: spec.hostname.clone().filter(|h| !h.is_empty()),
            domainname: spec.domainname.clone(),
            mounts: mounts::plan_mounts(&spec.mounts, bundle)?,
            root_propagation,
            extra_propagation,
            devices: devices(&linux.devices)?,
            masked: absolute_paths("linux.maskedPaths", &linux.masked_paths)?,
            readonly: absolute_paths("linux.readonlyPaths", &linux.readonly_paths)?,
            sysctls: sysctls(linux, &ns)?,
            process,
            seccomp,
            cgroups_path: linux.cgroups_path.clone(),
            resources: Some(device_rules(linux)),
            hooks: spec.hooks.clone().unwrap_or_default(),
            ns,
            spec,
        })
    }

    /// Whether the child must go through an intermediate process: joining
    /// namespaces or creating a time namespace cannot be done by one clone3.
    pub fn needs_intermediate(&self) -> bool {
        !self.ns.join.is_empty() || self.ns.new.contains(CLONE_NEWTIME)
    }

    /// In a new user namespace the init may not be able to walk the host path to
    /// its rootfs (a 0700 server directory, say), and only the host can make an
    /// idmapped mount: the runtime mounts the root in the init's mount namespace.
    pub fn root_by_runtime(&self) -> bool {
        self.ns.new.contains(CloneFlags::CLONE_NEWUSER)
    }

    pub fn has_hooks_before_pivot(&self) -> bool {
        !self.hooks.prestart.is_empty()
            || !self.hooks.create_runtime.is_empty()
            || !self.hooks.create_container.is_empty()
    }
}

/// Spec features we do not implement are refused, never skipped.
fn reject_unsupported(linux: &jaula_spec::Linux) -> R<()> {
    if linux.intel_rdt.is_some() {
        return Err(invalid("linux.intelRdt", "not supported by jaula"));
    }
    Ok(())
}

fn ns_flag(typ: &str) -> R<CloneFlags> {
    Ok(match typ {
        "pid" => CloneFlags::CLONE_NEWPID,
        "network" => CloneFlags::CLONE_NEWNET,
        "mount" => CloneFlags::CLONE_NEWNS,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "user" => CloneFlags::CLONE_NEWUSER,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        "time" => CLONE_NEWTIME,
        other => {
            return Err(invalid(
                "linux.namespaces",
                format!("unknown namespace type {other:?}"),
            ))
        }
    })
}

fn namespaces(linux: &jaula_spec::Linux) -> R<NsPlan> {
    let mut plan = NsPlan::default();
    let mut seen = CloneFlags::empty();
    for ns in &linux.namespaces {
        let flag = ns_flag(&ns.typ)?;
        if seen.contains(flag) {
            return Err(invalid(
                "linux.namespaces",
                format!("{} listed twice", ns.typ),
            ));
        }
        seen |= flag;
        match &ns.path {
            Some(p) if !p.as_os_str().is_empty() => {
                if !p.is_absolute() {
                    return Err(invalid(
                        "linux.namespaces",
                        format!("{} path {} is not absolute", ns.typ, p.display()),
                    ));
                }
                if let Err(e) = std::fs::metadata(p) {
                    return Err(invalid(
                        "linux.namespaces",
                        format!("{} path {}: {e}", ns.typ, p.display()),
                    ));
                }
                plan.join.push((flag, p.clone()));
            }
            _ => plan.new |= flag,
        }
    }
    // Join the user namespace first: it decides what the others may do.
    plan.join.sort_by_key(|(f, _)| {
        if *f == CloneFlags::CLONE_NEWUSER {
            0
        } else {
            1
        }
    });
    Ok(plan)
}

fn check_id_maps(linux: &jaula_spec::Linux, ns: &NsPlan) -> R<()> {
    let has_maps = !linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty();
    if ns.new.contains(CloneFlags::CLONE_NEWUSER) {
        if linux.uid_mappings.is_empty() || linux.gid_mappings.is_empty() {
            return Err(invalid(
                "linux.uidMappings",
                "a new user namespace needs uid and gid mappings",
            ));
        }
    } else if has_maps {
        return Err(invalid(
            "linux.uidMappings",
            "mappings given without a new user namespace",
        ));
    }
    for (key, maps) in [
        ("linux.uidMappings", &linux.uid_mappings),
        ("linux.gidMappings", &linux.gid_mappings),
    ] {
        if maps.iter().any(|m| m.size == 0) {
            return Err(invalid(key, "a mapping has size 0"));
        }
    }
    Ok(())
}

fn time_offsets(linux: &jaula_spec::Linux, ns: &NsPlan) -> R<Vec<String>> {
    let Some(offsets) = &linux.time_offsets else {
        return Ok(Vec::new());
    };
    if !ns.new.contains(CLONE_NEWTIME) {
        return Err(invalid("linux.timeOffsets", "needs a new time namespace"));
    }
    offsets
        .iter()
        .map(|(clock, o)| match clock.as_str() {
            "monotonic" | "boottime" => Ok(format!("{clock} {} {}", o.secs, o.nanosecs)),
            _ => Err(invalid(
                "linux.timeOffsets",
                format!("unknown clock {clock:?}"),
            )),
        })
        .collect()
}

fn process(p: Option<&jaula_spec::Process>) -> R<ProcessPlan> {
    let p = p.ok_or_else(|| invalid("process", "missing"))?;
    if p.args.is_empty() {
        return Err(invalid("process.args", "empty"));
    }
    if !p.cwd.is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{} is not absolute", p.cwd.display()),
        ));
    }
    if p.io_priority.is_some() {
        return Err(invalid("process.ioPriority", "not supported by jaula"));
    }
    if p.scheduler.is_some() {
        return Err(invalid("process.scheduler", "not supported by jaula"));
    }
    if !p.exec_cpu_affinity.is_empty() {
        return Err(invalid("process.execCPUAffinity", "not supported by jaula"));
    }
    Ok(ProcessPlan {
        args: cstrings("process.args", &p.args)?,
        env: cstrings("process.env", &p.env)?,
        cwd: p.cwd.clone(),
        uid: p.user.uid,
        gid: p.user.gid,
        groups: p.user.additional_gids.clone(),
        umask: p.user.umask.unwrap_or(0o022),
        terminal: p.terminal,
        console_size: p.console_size.map(|c| (c.height as u16, c.width as u16)),
        caps: CapSets::from_spec(p.capabilities.as_ref())?,
        no_new_privs: p.no_new_privileges,
        rlimits: rlimits(&p.rlimits)?,
        oom_score_adj: p.oom_score_adj,
        apparmor: apparmor(p.apparmor_profile.as_deref())?,
        selinux: selinux(p.selinux_label.as_deref())?,
        personality: None,
        listen_fds: 0,
    })
}

/// AppArmor, as runc does it: a profile on a host without AppArmor is an error.
fn apparmor(profile: Option<&str>) -> R<Option<String>> {
    match profile {
        None | Some("") => Ok(None),
        Some(p) => {
            let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
                .map(|s| s.trim() == "Y")
                .unwrap_or(false);
            if !enabled {
                return Err(invalid(
                    "process.apparmorProfile",
                    format!("profile {p:?} requested but AppArmor is not enabled on this host"),
                ));
            }
            Ok(Some(p.to_owned()))
        }
    }
}

/// SELinux, as runc does it: a label on a host without SELinux is an error.
fn selinux(label: Option<&str>) -> R<Option<String>> {
    match label {
        None | Some("") => Ok(None),
        Some(l) if std::path::Path::new("/sys/fs/selinux/enforce").exists() => {
            Ok(Some(l.to_owned()))
        }
        Some(l) => Err(invalid(
            "process.selinuxLabel",
            format!("label {l:?} requested but SELinux is not enabled on this host"),
        )),
    }
}

pub(crate) fn cstrings(key: &str, items: &[String]) -> R<Vec<CString>> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .map_err(|_| invalid(key, format!("{s:?} contains a NUL byte")))
        })
        .collect()
}

fn rlimit_number(name: &str) -> Option<i32> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    } as i32)
}

fn rlimits(list: &[jaula_spec::Rlimit]) -> R<Vec<(i32, u64, u64)>> {
    let mut out: Vec<(i32, u64, u64)> = Vec::new();
    for r in list {
        let n = rlimit_number(&r.typ)
            .ok_or_else(|| invalid("process.rlimits", format!("unknown type {:?}", r.typ)))?;
        if r.soft > r.hard {
            return Err(invalid(
                "process.rlimits",
                format!("{}: soft {} above hard {}", r.typ, r.soft, r.hard),
            ));
        }
        if out.iter().any(|(m, _, _)| *m == n) {
            return Err(invalid("process.rlimits", format!("{} given twice", r.typ)));
        }
        out.push((n, r.soft, r.hard));
    }
    Ok(out)
}

fn rootfs_propagation(p: Option<&str>) -> R<(MsFlags, Option<MsFlags>)> {
    // Default: everything below / becomes a slave, so container mounts never reach
    // the host while host unmounts still reach the container.
    let rec_slave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
    Ok(match p {
        None | Some("") => (rec_slave, None),
        Some("shared") => (rec_slave, Some(MsFlags::MS_SHARED)),
        Some("rshared") => (rec_slave, Some(MsFlags::MS_SHARED | MsFlags::MS_REC)),
        Some("slave") => (rec_slave, Some(MsFlags::MS_SLAVE)),
        Some("rslave") => (rec_slave, Some(rec_slave)),
        Some("private") => (
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            Some(MsFlags::MS_PRIVATE),
        ),
        Some("rprivate") => (
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
        ),
        Some("unbindable") => (rec_slave, Some(MsFlags::MS_UNBINDABLE)),
        Some("runbindable") => (rec_slave, Some(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC)),
        Some(other) => {
            return Err(invalid(
                "linux.rootfsPropagation",
                format!("unknown value {other:?}"),
            ))
        }
    })
}

/// Rejects relative paths and `..` components.
pub(crate) fn clean_abs(key: &str, p: &Path) -> R<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                return Err(invalid(key, format!("{} contains '..'", p.display())))
            }
            Component::Prefix(_) => {
                return Err(invalid(key, format!("{} is not a Linux path", p.display())))
            }
        }
    }
    Ok(out)
}

fn absolute_paths(key: &str, paths: &[PathBuf]) -> R<Vec<PathBuf>> {
    paths
        .iter()
        .map(|p| {
            if !p.is_absolute() {
                return Err(invalid(key, format!("{} is not absolute", p.display())));
            }
            clean_abs(key, p)
        })
        .collect()
}

fn devices(list: &[jaula_spec::Device]) -> R<Vec<DevicePlan>> {
    list.iter()
        .map(|d| {
            let kind = match d.typ.as_str() {
                "c" | "u" => libc::S_IFCHR,
                "b" => libc::S_IFBLK,
                "p" => libc::S_IFIFO,
                other => {
                    return Err(invalid(
                        "linux.devices",
                        format!("{}: unknown type {other:?}", d.path.display()),
                    ))
                }
            };
            if !d.path.is_absolute() {
                return Err(invalid(
                    "linux.devices",
                    format!("{} is not absolute", d.path.display()),
                ));
            }
            Ok(DevicePlan {
                path: clean_abs("linux.devices", &d.path)?,
                kind,
                major: d.major as u64,
                minor: d.minor as u64,
                mode: d.file_mode.unwrap_or(0o666) & 0o7777,
                uid: d.uid.unwrap_or(0),
                gid: d.gid.unwrap_or(0),
            })
        })
        .collect()
}

/// Device cgroup rules: deny everything, then the spec's own rules, then the
/// devices every container needs and those in `linux.devices`, as runc does. A
/// container may mknod nodes (it has the right /dev to fill) but open only these.
fn device_rules(linux: &jaula_spec::Linux) -> Resources {
    use jaula_spec::DeviceCgroup;
    let rule = |allow: bool, typ: &str, major: Option<i64>, minor: Option<i64>, access: &str| {
        DeviceCgroup {
            allow,
            typ: Some(typ.to_owned()),
            major,
            minor,
            access: Some(access.to_owned()),
        }
    };
    let mut r = linux.resources.clone().unwrap_or_default();
    let mut rules = vec![rule(false, "a", None, None, "rwm")];
    rules.append(&mut r.devices);
    rules.push(rule(true, "c", None, None, "m"));
    rules.push(rule(true, "b", None, None, "m"));
    for (major, minor) in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(1)),
        (5, Some(2)),
        (136, None),
    ] {
        rules.push(rule(true, "c", Some(major), minor, "rwm"));
    }
    for d in &linux.devices {
        let typ = match d.typ.as_str() {
            "b" => "b",
            "p" => continue,
            _ => "c",
        };
        rules.push(rule(true, typ, Some(d.major), Some(d.minor), "rwm"));
    }
    r.devices = rules;
    r
}

/// Only namespaced sysctls are allowed, and only when the matching namespace is
/// private: a container must never change the host's kernel settings.
fn sysctls(linux: &jaula_spec::Linux, ns: &NsPlan) -> R<Vec<(PathBuf, String)>> {
    linux
        .sysctl
        .iter()
        .map(|(key, value)| {
            let name = key.replace('/', ".");
            if name.split('.').any(|p| p.is_empty() || p == "..") {
                return Err(invalid("linux.sysctl", format!("bad key {key:?}")));
            }
            let ipc = [
                "kernel.msgmax",
                "kernel.msgmnb",
                "kernel.msgmni",
                "kernel.sem",
                "kernel.shmall",
                "kernel.shmmax",
                "kernel.shmmni",
                "kernel.shm_rmid_forced",
            ];
            let needed = if ipc.contains(&name.as_str()) || name.starts_with("fs.mqueue.") {
                CloneFlags::CLONE_NEWIPC
            } else if name.starts_with("net.") {
                CloneFlags::CLONE_NEWNET
            } else if name == "kernel.hostname" || name == "kernel.domainname" {
                CloneFlags::CLONE_NEWUTS
            } else {
                return Err(invalid(
                    "linux.sysctl",
                    format!("{key} is not namespaced; refusing to change the host"),
                ));
            };
            if !ns.new.contains(needed) && !ns.join.iter().any(|(f, _)| *f == needed) {
                return Err(invalid(
                    "linux.sysctl",
                    format!("{key} needs a private namespace for it"),
                ));
            }
            Ok((PathBuf::from(name.replace('.', "/")), value.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
