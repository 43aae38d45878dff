//! `JAULA_HOME`: the directory of server directories, its lock, and context-id allocation.
//!
//! Everything that must be unique across servers (names, context ids, addresses) is decided
//! while holding the home lock, and in-progress builds (`.build-NAME-PID-RAND`) count as
//! servers, so two concurrent builds cannot pick the same id or address.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::config::{ConfigError, ServerConfig, FILE_NAME, FIRST_AUTO_CONTEXT, MAX_CONTEXT};
use crate::name::{self, NameError};

/// The default `JAULA_HOME`.
pub const DEFAULT_HOME: &str = "/var/lib/jaula";
/// Prefix of a build's staging directory inside the home.
pub const STAGING_PREFIX: &str = ".build-";

/// Why the home or a server in it could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("no server named {name:?} in {home}")]
    Unknown { name: String, home: PathBuf },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read the server directory {path}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no free context id left between {FIRST_AUTO_CONTEXT} and {MAX_CONTEXT}")]
    ContextsExhausted,
}

/// The server home directory.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

/// One defined server: its name, directory and parsed definition.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub dir: PathBuf,
    pub config: ServerConfig,
}

impl Server {
    /// The server's root filesystem.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The path of `server.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Per-run files (bundle, exit status, network teardown record).
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// The console log the supervisor writes.
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    /// Takes the server's own lock, which serializes start, stop and destroy.
    pub fn lock(&self) -> Result<Flock<File>, HomeError> {
        lock_file(&self.dir.join(".lock"))
    }
}

/// An exclusive lock on the home, released on drop.
#[derive(Debug)]
pub struct HomeLock {
    _lock: Flock<File>,
}

impl Home {
    pub fn new(dir: impl Into<PathBuf>) -> Home {
        Home { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where server `name` lives (whether or not it exists).
    pub fn server_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Loads server `name`, checking the name first.
    pub fn open(&self, name: &str) -> Result<Server, HomeError> {
        name::validate(name)?;
        let dir = self.server_dir(name);
        let cfg_path = dir.join(FILE_NAME);
        if !cfg_path.is_file() {
            return Err(HomeError::Unknown {
                name: name.into(),
                home: self.dir.clone(),
            });
        }
        let config = ServerConfig::load(&cfg_path)?;
        Ok(Server {
            name: name.into(),
            dir,
            config,
        })
    }

    /// The names of all servers, sorted. Hidden entries (staging, lock) are skipped.
    pub fn names(&self) -> Result<Vec<String>, HomeError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(HomeError::ReadDir {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| name::validate(n).is_ok() && self.dir.join(n).join(FILE_NAME).is_file())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every server, in context-id order.
    pub fn servers(&self) -> Result<Vec<Server>, HomeError> {
        let mut out = self
            .names()?
            .iter()
            .map(|n| self.open(n))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|s| (s.config.context, s.name.clone()));
        Ok(out)
    }

    /// Takes the home lock (creating the home if needed).
    pub fn lock(&self) -> Result<HomeLock, HomeError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| HomeError::Lock {
            path: self.dir.clone(),
            source,
        })?;
        Ok(HomeLock {
            _lock: lock_file(&self.dir.join(".lock"))?,
        })
    }

    /// Definitions of in-progress builds whose builder is still alive, as (name, config).
    pub fn staging(&self) -> Vec<(String, ServerConfig)> {
        self.staging_dirs()
            .into_iter()
            .filter(|s| s.alive)
            .filter_map(|s| {
                let cfg = ServerConfig::load(&s.path.join(FILE_NAME)).ok()?;
                Some((s.name, cfg))
            })
            .collect()
    }

    /// Every staging directory, parsed from its name.
    pub fn staging_dirs(&self) -> Vec<StagingDir> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| StagingDir::parse(e.path()))
            .collect()
    }

    /// The lowest free context id from [`FIRST_AUTO_CONTEXT`] up. Call with the lock held.
    pub fn allocate_context(&self, _lock: &HomeLock) -> Result<u32, HomeError> {
        let used = self.used_contexts()?;
        (FIRST_AUTO_CONTEXT..=MAX_CONTEXT)
            .find(|c| !used.contains(c))
            .ok_or(HomeError::ContextsExhausted)
    }

    /// Context ids of all servers and in-progress builds.
    pub fn used_contexts(&self) -> Result<Vec<u32>, HomeError> {
        let mut used: Vec<u32> = self.servers()?.iter().map(|s| s.config.context).collect();
        used.extend(self.staging().iter().map(|(_, c)| c.context));
        Ok(used)
    }
}

/// A `.build-NAME-PID-RAND` directory.
#[derive(Debug, Clone)]
pub struct StagingDir {
    pub path: PathBuf,
    pub name: String,
    pub pid: i32,
    /// The builder process still exists.
    pub alive: bool,
}

impl StagingDir {
    fn parse(path: PathBuf) -> Option<StagingDir> {
        let file = path.file_name()?.to_str()?.to_string();
        let rest = file.strip_prefix(STAGING_PREFIX)?;
        let mut parts = rest.rsplitn(3, '-');
        let _rand = parts.next()?;
        let pid: i32 = parts.next()?.parse().ok()?;
        let name = parts.next()?.to_string();
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        Some(StagingDir {
            path,
            name,
            pid,
            alive,
        })
    }
}

fn lock_file(path: &Path) -> Result<Flock<File>, HomeError> {
    let lock_err = |source| HomeError::Lock {
        path: path.into(),
        source,
    };
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(lock_err)?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| lock_err(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn add(home: &Home, name: &str, ctx: u32) {
        let dir = home.server_dir(name);
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        ServerConfig::new(ctx).save(&dir.join(FILE_NAME)).unwrap();
    }

    #[test]
    fn allocation_starts_at_40000_and_fills_gaps() {
        let t = TempDir::new("home-alloc");
        let home = Home::new(t.path());
        let lock = home.lock().unwrap();
        assert_eq!(home.allocate_context(&lock).unwrap(), 40000);
        add(&home, "a", 40000);
        add(&home, "b", 40002);
        add(&home, "c", 7);
        assert_eq!(home.allocate_context(&lock).unwrap(), 40001);
    }

    #[test]
    fn live_staging_builds_reserve_their_context() {
        let t = TempDir::new("home-staging");
        let home = Home::new(t.path());
        let me = std::process::id();
        let dir = t.path().join(format!(".build-web-{me}-abc"));
        std::fs::create_dir_all(&dir).unwrap();
        ServerConfig::new(40000).save(&dir.join(FILE_NAME)).unwrap();
        let lock = home.lock().unwrap();
        assert_eq!(home.allocate_context(&lock).unwrap(), 40001);
        let st = home.staging_dirs();
        assert_eq!((st[0].name.as_str(), st[0].alive), ("web", true));
        // Staging and lock files are not servers.
        assert!(home.names().unwrap().is_empty());
    }

    #[test]
    fn servers_come_in_context_order() {
        let t = TempDir::new("home-order");
        let home = Home::new(t.path());
        add(&home, "z", 40000);
        add(&home, "a", 40005);
        let names: Vec<_> = home
            .servers()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["z", "a"]);
    }

    #[test]
    fn unknown_and_bad_names() {
        let t = TempDir::new("home-unknown");
        let home = Home::new(t.path());
        assert!(matches!(home.open("nope"), Err(HomeError::Unknown { .. })));
        assert!(matches!(home.open("../etc"), Err(HomeError::Name(_))));
    }
}
