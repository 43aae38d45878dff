//! `mounts` entries -> typed mount plans (flags, propagation, data string).

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::{clean_abs, invalid, R};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    Bind {
        recursive: bool,
    },
    Proc,
    Sysfs,
    /// cgroup or cgroup2: the container's own cgroup, shown whatever the host layout.
    Cgroup,
    /// Any other filesystem type, mounted with `mount(2)`.
    Fs(String),
}

#[derive(Debug, Clone)]
pub struct MountPlan {
    /// Absolute, `..`-free path inside the container.
    pub dest: PathBuf,
    pub source: PathBuf,
    pub kind: MountKind,
    pub flags: MsFlags,
    /// Flags to clear on a bind remount (e.g. `rw`, `suid` given explicitly).
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: String,
}

impl MountPlan {
    /// A bind mount needs a second, remount step to apply ro/nosuid/... flags.
    pub fn needs_remount(&self) -> bool {
        matches!(self.kind, MountKind::Bind { .. })
            && self.flags.intersects(
                MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC
                    | MsFlags::MS_NOATIME
                    | MsFlags::MS_NODIRATIME
                    | MsFlags::MS_RELATIME
                    | MsFlags::MS_STRICTATIME,
            )
    }
}

/// One mount option: a flag to set, a flag to clear, a propagation change, or data.
enum Opt {
    Set(MsFlags),
    Clear(MsFlags),
    Propagation(MsFlags),
    Bind(bool),
    Ignore,
}

fn option(o: &str) -> Option<Opt> {
    use MsFlags as F;
    Some(match o {
        "ro" => Opt::Set(F::MS_RDONLY),
        "rw" => Opt::Clear(F::MS_RDONLY),
        "nosuid" => Opt::Set(F::MS_NOSUID),
        "suid" => Opt::Clear(F::MS_NOSUID),
        "nodev" => Opt::Set(F::MS_NODEV),
        "dev" => Opt::Clear(F::MS_NODEV),
        "noexec" => Opt::Set(F::MS_NOEXEC),
        "exec" => Opt::Clear(F::MS_NOEXEC),
        "sync" => Opt::Set(F::MS_SYNCHRONOUS),
        "async" => Opt::Clear(F::MS_SYNCHRONOUS),
        "dirsync" => Opt::Set(F::MS_DIRSYNC),
        "mand" => Opt::Set(F::MS_MANDLOCK),
        "nomand" => Opt::Clear(F::MS_MANDLOCK),
        "atime" => Opt::Clear(F::MS_NOATIME),
        "noatime" => Opt::Set(F::MS_NOATIME),
        "diratime" => Opt::Clear(F::MS_NODIRATIME),
        "nodiratime" => Opt::Set(F::MS_NODIRATIME),
        "relatime" => Opt::Set(F::MS_RELATIME),
        "norelatime" => Opt::Clear(F::MS_RELATIME),
        "strictatime" => Opt::Set(F::MS_STRICTATIME),
        "nostrictatime" => Opt::Clear(F::MS_STRICTATIME),
        "lazytime" => Opt::Set(F::MS_LAZYTIME),
        "nolazytime" => Opt::Clear(F::MS_LAZYTIME),
        "silent" => Opt::Set(F::MS_SILENT),
        "loud" => Opt::Clear(F::MS_SILENT),
        "defaults" => Opt::Ignore,
        "bind" => Opt::Bind(false),
        "rbind" => Opt::Bind(true),
        "private" => Opt::Propagation(F::MS_PRIVATE),
        "rprivate" => Opt::Propagation(F::MS_PRIVATE | F::MS_REC),
        "shared" => Opt::Propagation(F::MS_SHARED),
        "rshared" => Opt::Propagation(F::MS_SHARED | F::MS_REC),
        "slave" => Opt::Propagation(F::MS_SLAVE),
        "rslave" => Opt::Propagation(F::MS_SLAVE | F::MS_REC),
        "unbindable" => Opt::Propagation(F::MS_UNBINDABLE),
        "runbindable" => Opt::Propagation(F::MS_UNBINDABLE | F::MS_REC),
        _ => return None,
    })
}

/// Options that need kernel features jaula does not drive; refusing them beats
/// silently mounting something different from what was asked.
const REFUSED: &[&str] = &["idmap", "ridmap", "tmpcopyup", "remount", "recursive"];

pub(super) fn plan_mounts(mounts: &[jaula_spec::Mount], bundle: &Path) -> R<Vec<MountPlan>> {
    mounts
        .iter()
        .enumerate()
        .map(|(i, m)| plan_mount(i, m, bundle))
        .collect()
}

fn plan_mount(i: usize, m: &jaula_spec::Mount, bundle: &Path) -> R<MountPlan> {
    let key = format!("mounts[{i}]");
    let dest = clean_abs(&key, &m.destination)?;
    if dest == Path::new("/") {
        return Err(invalid(&key, "cannot mount over /"));
    }
    let mut flags = MsFlags::empty();
    let mut cleared = MsFlags::empty();
    let mut propagation = Vec::new();
    let mut bind = None;
    let mut data = Vec::new();
    for o in &m.options {
        if REFUSED.contains(&o.as_str()) || o.starts_with('r') && REFUSED.contains(&&o[1..]) {
            return Err(invalid(
                &key,
                format!("mount option {o:?} is not supported"),
            ));
        }
        match option(o) {
            Some(Opt::Set(f)) => {
                flags |= f;
                cleared -= f;
            }
            Some(Opt::Clear(f)) => {
                flags -= f;
                cleared |= f;
            }
            Some(Opt::Propagation(f)) => propagation.push(f),
            Some(Opt::Bind(r)) => bind = Some(r),
            Some(Opt::Ignore) => {}
            None => data.push(o.as_str()),
        }
    }
    let typ = m.typ.as_deref().unwrap_or("");
    let kind = match (bind, typ) {
        (Some(recursive), _) => MountKind::Bind { recursive },
        (None, "bind") => MountKind::Bind { recursive: false },
        (None, "proc") => MountKind::Proc,
        (None, "sysfs") => MountKind::Sysfs,
        (None, "cgroup" | "cgroup2") => MountKind::Cgroup,
        (None, "") => return Err(invalid(&key, "no type and no bind option")),
        (None, t) => MountKind::Fs(t.to_owned()),
    };
    let source = match (&kind, &m.source) {
        (MountKind::Bind { .. }, None) => return Err(invalid(&key, "bind mount without source")),
        (MountKind::Bind { .. }, Some(s)) if s.is_relative() => bundle.join(s),
        (_, Some(s)) => s.clone(),
        (_, None) => PathBuf::from(typ),
    };
    if matches!(kind, MountKind::Bind { .. }) && !data.is_empty() {
        return Err(invalid(&key, format!("unknown mount options {data:?}")));
    }
    Ok(MountPlan {
        dest,
        source,
        kind,
        flags,
        cleared,
        propagation,
        data: data.join(","),
    })
}
