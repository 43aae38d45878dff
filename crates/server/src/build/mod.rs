//! `jaula build`: turning a method (host, busybox, debootstrap, dir, tar, clone) into a
//! server directory, all or nothing.
//!
//! A build happens in `$JAULA_HOME/.build-NAME-PID-RAND/` and is renamed into place only
//! when it is complete. The staging directory carries `server.toml` from the start, so its
//! context id and addresses are reserved while it builds. A failed or cancelled build removes
//! its staging directory; one whose builder was killed outright is removed by the next build.

mod archive;
mod busybox;
mod cleanup;
mod copy;
mod debootstrap;
mod host;
mod skeleton;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::config::{Cidr, InitStyle, NetMode, Publish, ServerConfig, FILE_NAME};
use crate::home::{Home, HomeError, HomeLock, Server, STAGING_PREFIX};
use crate::idmap::IdShift;
use crate::name::{self, NameError};
use crate::units::{ByteSize, Cpus};

pub use cleanup::{detach_mounts_below, remove_tree, RemoveError};
pub use debootstrap::{default_mirror, DebootstrapOptions};
pub use host::mounts as host_mounts;

/// Why a build failed. Nothing of the build is left on disk when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error("server {name:?} already exists")]
    Exists { name: String },
    #[error("server {name:?} is being built by process {pid}")]
    InProgress { name: String, pid: i32 },
    #[error("context id {context} is already used by server {server:?}")]
    ContextInUse { context: u32, server: String },
    #[error("address {addr} is already used by server {server:?}")]
    AddressInUse {
        addr: std::net::IpAddr,
        server: String,
    },
    #[error("invalid option for {key}: {message}")]
    Invalid { key: String, message: String },
    #[error("source {path} does not exist")]
    SourceMissing { path: PathBuf },
    #[error("source {path} is not a directory")]
    SourceNotDir { path: PathBuf },
    #[error("source {path} is not a regular file")]
    SourceNotFile { path: PathBuf },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot unpack {path}")]
    Archive {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} is not installed (looked for {path})")]
    MissingTool {
        program: &'static str,
        path: PathBuf,
    },
    #[error("debootstrap failed ({status}): {message}")]
    Debootstrap { status: String, message: String },
    #[error("{program} --list failed ({status})")]
    Busybox { program: PathBuf, status: String },
    #[error("build interrupted")]
    Interrupted,
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl BuildError {
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.to_path_buf();
        move |source| BuildError::Io { op, path, source }
    }
}

/// How the root filesystem is made.
#[derive(Debug, Clone)]
pub enum Method {
    /// A skeleton sharing the host's `/usr` read-only.
    Host,
    /// A static busybox and its applet links; `binary` is the host's static busybox.
    Busybox { binary: PathBuf },
    /// A Debian system from a mirror.
    Debootstrap(DebootstrapOptions),
    /// A copy of a directory.
    Dir { source: PathBuf },
    /// An archive (`.tar`, gzip, xz or zstd, detected from its content).
    Tar { source: PathBuf },
    /// A copy of another server: its rootfs and its settings, with a new context id.
    Clone { source: String },
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Method::Host => "host",
            Method::Busybox { .. } => "busybox",
            Method::Debootstrap(_) => "debootstrap",
            Method::Dir { .. } => "dir",
            Method::Tar { .. } => "tar",
            Method::Clone { .. } => "clone",
        }
    }
}

/// The options every method takes; `None`/empty keeps the default (or the clone source's).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub context: Option<u32>,
    pub hostname: Option<String>,
    pub addresses: Vec<Cidr>,
    pub net_mode: Option<NetMode>,
    pub memory: Option<ByteSize>,
    pub cpus: Option<Cpus>,
    pub pids: Option<u64>,
    pub init: Option<InitStyle>,
    pub command: Vec<String>,
    /// `minimal`: service command lines.
    pub services: Vec<String>,
    /// `veth`: published ports.
    pub publish: Vec<Publish>,
    pub marks: Vec<String>,
    pub privileged: Option<bool>,
}

/// One build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub name: String,
    pub method: Method,
    pub options: BuildOptions,
}

/// What a build reports while it runs; the front end decides how to show it.
pub trait Progress {
    /// A new phase ("retrieving", "unpacking", ...).
    fn phase(&mut self, phase: &str);
    /// One step of the current phase: `done` steps so far, `total` when known.
    fn step(&mut self, done: u64, total: Option<u64>, detail: &str);
}

/// A progress sink that shows nothing.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&mut self, _: &str) {}
    fn step(&mut self, _: u64, _: Option<u64>, _: &str) {}
}

/// Set from a signal handler thread (SIGINT, SIGTERM) to stop a build cleanly.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `Err(Interrupted)` once cancelled: the long loops call this between steps.
    pub fn check(&self) -> Result<(), BuildError> {
        if self.is_cancelled() {
            Err(BuildError::Interrupted)
        } else {
            Ok(())
        }
    }
}

/// Builds server `req.name`. On any error, nothing of it remains.
pub fn build(
    home: &Home,
    req: &BuildRequest,
    progress: &mut dyn Progress,
    cancel: &Cancel,
) -> Result<Server, BuildError> {
    name::validate(&req.name)?;
    check_source(home, &req.method)?;
    remove_stale_staging(home);
    let staging = prepare(home, req)?;
    let result = populate(home, req, &staging, progress, cancel)
        .and_then(|()| commit(home, &staging, &req.name));
    if let Err(e) = result {
        // The rootfs may hold files whose removal fails; the error that matters is the
        // build's own, and the next build retries the removal of a dead builder's staging.
        let _ = remove_tree(&staging.dir);
        return Err(e);
    }
    Ok(home.open(&req.name)?)
}

/// A staging directory and the definition written into it.
struct Staging {
    dir: PathBuf,
    config: ServerConfig,
}

impl Staging {
    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

/// Refuses a source that is missing or of the wrong kind before anything is created.
fn check_source(home: &Home, method: &Method) -> Result<(), BuildError> {
    match method {
        Method::Dir { source } => match std::fs::metadata(source) {
            Err(_) => Err(BuildError::SourceMissing {
                path: source.clone(),
            }),
            Ok(m) if !m.is_dir() => Err(BuildError::SourceNotDir {
                path: source.clone(),
            }),
            Ok(_) => Ok(()),
        },
        Method::Tar { source } => match std::fs::metadata(source) {
            Err(_) => Err(BuildError::SourceMissing {
                path: source.clone(),
            }),
            Ok(m) if !m.is_file() => Err(BuildError::SourceNotFile {
                path: source.clone(),
            }),
            Ok(_) => Ok(()),
        },
        Method::Clone { source } => {
            let src = home.open(source)?;
            match std::fs::metadata(src.rootfs()) {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => Err(BuildError::SourceNotDir { path: src.rootfs() }),
                Err(_) => Err(BuildError::SourceMissing { path: src.rootfs() }),
            }
        }
        Method::Busybox { binary } => match std::fs::metadata(binary) {
            Ok(m) if m.is_file() => Ok(()),
            _ => Err(BuildError::MissingTool {
                program: "busybox",
                path: binary.clone(),
            }),
        },
        Method::Debootstrap(_) => debootstrap::check_installed(),
        Method::Host => Ok(()),
    }
}

/// Under the home lock: checks uniqueness, writes the definition into a new staging dir.
fn prepare(home: &Home, req: &BuildRequest) -> Result<Staging, BuildError> {
    let lock = home.lock()?;
    check_name_free(home, &req.name)?;
    let config = make_config(home, &lock, req)?;
    check_conflicts(home, &config)?;
    let dir = home.dir().join(format!(
        "{STAGING_PREFIX}{}-{}-{}",
        req.name,
        std::process::id(),
        random_suffix()
    ));
    let staging = Staging { dir, config };
    let made = std::fs::create_dir(&staging.dir)
        .map_err(BuildError::io("cannot create", &staging.dir))
        // Others may pass through (the server's root, an unprivileged host uid, must reach
        // its rootfs) but not list the server's files, nor read its console log.
        // Only root may walk into a server: its rootfs holds files owned by uid 0
        // (set-uid ones too) that must not be reachable by host users.
        .and_then(|()| skeleton::set_mode(&staging.dir, 0o700))
        .and_then(|()| skeleton::make_rootfs_dir(&staging.rootfs()))
        .and_then(|()| Ok(staging.config.save(&staging.dir.join(FILE_NAME))?));
    if let Err(e) = made {
        let _ = remove_tree(&staging.dir);
        return Err(e);
    }
    Ok(staging)
}

fn check_name_free(home: &Home, name: &str) -> Result<(), BuildError> {
    if home.server_dir(name).symlink_metadata().is_ok() {
        return Err(BuildError::Exists { name: name.into() });
    }
    let busy = home
        .staging_dirs()
        .into_iter()
        .find(|s| s.alive && s.name == name);
    match busy {
        Some(s) => Err(BuildError::InProgress {
            name: name.into(),
            pid: s.pid,
        }),
        None => Ok(()),
    }
}

/// The new server's definition: the clone source's (or defaults), then the options.
fn make_config(
    home: &Home,
    lock: &HomeLock,
    req: &BuildRequest,
) -> Result<ServerConfig, BuildError> {
    let o = &req.options;
    let mut cfg = match &req.method {
        Method::Clone { source } => clone_base(&home.open(source)?.config),
        _ => ServerConfig::new(0),
    };
    cfg.context = match o.context {
        Some(c) => c,
        None => home.allocate_context(lock)?,
    };
    if o.hostname.is_some() {
        cfg.hostname = o.hostname.clone();
    }
    cfg.network.addresses = o.addresses.clone();
    if o.net_mode.is_some() {
        cfg.network.mode = o.net_mode;
    }
    cfg.limits.memory = o.memory.or(cfg.limits.memory);
    cfg.limits.cpus = o.cpus.or(cfg.limits.cpus);
    cfg.limits.pids = o.pids.or(cfg.limits.pids);
    if let Some(style) = o.init {
        cfg.init.style = style;
        cfg.init.command.clear();
        if style != InitStyle::Minimal {
            cfg.init.services.clear();
        }
    }
    if !o.command.is_empty() {
        cfg.init.command = o.command.clone();
    }
    if !o.services.is_empty() {
        cfg.init.services = o.services.clone();
    }
    cfg.network.publish = o.publish.clone();
    for m in &o.marks {
        if !cfg.has_mark(m) {
            cfg.marks.push(m.clone());
        }
    }
    if let Some(p) = o.privileged {
        cfg.security.privileged = p;
    }
    if let Method::Host = req.method {
        cfg.mounts.extend(host::mounts());
    }
    cfg.validate()
        .map_err(|(key, message)| BuildError::Invalid { key, message })?;
    Ok(cfg)
}

/// What a clone keeps of its source: everything but identity and addresses.
fn clone_base(src: &ServerConfig) -> ServerConfig {
    let mut cfg = src.clone();
    cfg.hostname = None;
    cfg.network.addresses.clear();
    cfg.network.publish.clear();
    if cfg.network.mode == Some(NetMode::Isolated) {
        cfg.network.mode = None;
    }
    cfg
}

/// Context ids and addresses must be unique among servers and running builds.
fn check_conflicts(home: &Home, cfg: &ServerConfig) -> Result<(), BuildError> {
    let mut others: Vec<(String, ServerConfig)> = home
        .servers()?
        .into_iter()
        .map(|s| (s.name, s.config))
        .collect();
    others.extend(home.staging());
    for (name, other) in &others {
        if other.context == cfg.context {
            return Err(BuildError::ContextInUse {
                context: cfg.context,
                server: name.clone(),
            });
        }
        let clash = cfg
            .network
            .addresses
            .iter()
            .find(|a| other.network.addresses.iter().any(|b| b.addr == a.addr));
        if let Some(a) = clash {
            return Err(BuildError::AddressInUse {
                addr: a.addr,
                server: name.clone(),
            });
        }
    }
    Ok(())
}

/// Runs the method, then the steps every rootfs gets.
fn populate(
    home: &Home,
    req: &BuildRequest,
    staging: &Staging,
    progress: &mut dyn Progress,
    cancel: &Cancel,
) -> Result<(), BuildError> {
    let rootfs = staging.rootfs();
    let cfg = &staging.config;
    // Files keep the ids they have inside the server: a user-namespaced server sees
    // its rootfs through an idmapped mount, so nothing on disk is chowned.
    let unshifted = IdShift::from_root(0);
    progress.phase(req.method.name());
    match &req.method {
        Method::Host => host::populate(&rootfs, cfg)?,
        Method::Busybox { binary } => busybox::populate(&rootfs, binary)?,
        Method::Debootstrap(opts) => {
            let include = cfg.init.style == InitStyle::Init;
            debootstrap::run(&rootfs, opts, include, progress, cancel)?;
        }
        Method::Dir { source } => {
            copy::copy_tree(source, &rootfs, unshifted, progress, cancel)?;
        }
        Method::Tar { source } => archive::unpack(source, &rootfs, progress, cancel)?,
        Method::Clone { source } => {
            let src = home.open(source)?;
            copy::copy_tree(&src.rootfs(), &rootfs, unshifted, progress, cancel)?;
        }
    }
    cancel.check()?;
    skeleton::write_identity(&rootfs, cfg.hostname_or(&req.name))?;
    Ok(())
}

/// Under the home lock: renames the staging dir to the server's name, never over another.
fn commit(home: &Home, staging: &Staging, name: &str) -> Result<(), BuildError> {
    let _lock = home.lock()?;
    let target = home.server_dir(name);
    match nix::fcntl::renameat2(
        None,
        &staging.dir,
        None,
        &target,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    ) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EEXIST) => Err(BuildError::Exists { name: name.into() }),
        Err(e) => Err(BuildError::Io {
            op: "cannot rename into place",
            path: target,
            source: e.into(),
        }),
    }
}

/// Removes staging directories whose builder died (killed with SIGKILL, power loss).
fn remove_stale_staging(home: &Home) {
    let Ok(_lock) = home.lock() else { return };
    for s in home.staging_dirs().into_iter().filter(|s| !s.alive) {
        // Best effort: a leftover that cannot be removed now is retried by the next build.
        let _ = remove_tree(&s.path);
    }
}

/// Eight random hex digits for temporary names.
pub fn random_suffix() -> String {
    let mut b = [0u8; 4];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if read.is_err() {
        // No /dev/urandom: the time is unique enough for a name the pid also qualifies.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        b = t.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn req(name: &str, method: Method) -> BuildRequest {
        BuildRequest {
            name: name.into(),
            method,
            options: BuildOptions::default(),
        }
    }

    #[test]
    fn dir_build_refuses_missing_and_non_directory_sources() {
        let t = TempDir::new("build-src");
        let home = Home::new(t.path().join("home"));
        let r = req(
            "a",
            Method::Dir {
                source: t.path().join("nope"),
            },
        );
        let e = build(&home, &r, &mut NoProgress, &Cancel::default()).unwrap_err();
        assert!(matches!(e, BuildError::SourceMissing { .. }), "{e}");
        std::fs::write(t.path().join("file"), "x").unwrap();
        let r = req(
            "a",
            Method::Dir {
                source: t.path().join("file"),
            },
        );
        let e = build(&home, &r, &mut NoProgress, &Cancel::default()).unwrap_err();
        assert!(e.to_string().contains("is not a directory"), "{e}");
        assert!(home.names().unwrap().is_empty());
    }

    #[test]
    fn bad_names_and_options_create_nothing() {
        let t = TempDir::new("build-bad");
        let home = Home::new(t.path());
        let e = build(
            &home,
            &req("Bad", Method::Host),
            &mut NoProgress,
            &Cancel::default(),
        );
        assert!(matches!(e, Err(BuildError::Name(_))));
        let mut r = req("a", Method::Host);
        r.options.init = Some(InitStyle::Command);
        let e = build(&home, &r, &mut NoProgress, &Cancel::default()).unwrap_err();
        assert!(e.to_string().contains("init.command"), "{e}");
        let left: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name() != ".lock")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn cancelled_build_leaves_nothing() {
        let t = TempDir::new("build-cancel");
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("etc")).unwrap();
        let home = Home::new(t.path().join("home"));
        let cancel = Cancel::default();
        cancel.cancel();
        let mut r = req("a", Method::Dir { source: src });
        r.options.privileged = Some(true);
        let e = build(&home, &r, &mut NoProgress, &cancel).unwrap_err();
        assert!(matches!(e, BuildError::Interrupted), "{e}");
        assert!(home.staging_dirs().is_empty());
        assert!(!home.server_dir("a").exists());
    }

    #[test]
    fn clone_base_drops_identity() {
        let mut src = ServerConfig::new(40000);
        src.hostname = Some("x".into());
        src.network.addresses = vec!["10.0.0.1".parse().unwrap()];
        src.network.mode = Some(NetMode::Isolated);
        src.limits.pids = Some(5);
        let c = clone_base(&src);
        assert_eq!(c.hostname, None);
        assert!(c.network.addresses.is_empty());
        assert_eq!(c.network.effective_mode(), NetMode::None);
        assert_eq!(c.limits.pids, Some(5));
    }
}
