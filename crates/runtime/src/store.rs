//! The state store: one directory per container under `--root`.
//!
//! `<root>/<id>/state.json` is written atomically (tmp + rename). The directory
//! itself is the lock (flock on its fd), and its creation (mkdir) is what makes an
//! ID taken, so two racing creates cannot both win. The recorded status is only a
//! hint: [`Record::status`] derives the real one from the kernel.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg, OFlag};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use jaula_spec::Status;

pub const STATE_FILE: &str = "state.json";
/// Listening socket of a created container's init; it exists until `start`.
pub const START_SOCKET: &str = "start.sock";

/// What we persist about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// Host pid of the container's init; None while creating.
    pub pid: Option<i32>,
    /// Start time (clock ticks since boot) of `pid`, to detect pid reuse.
    pub pid_start: u64,
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    pub cgroup_path: String,
    pub owner: String,
    /// The spec the container was created from (hooks, process defaults for exec).
    pub config: jaula_spec::Spec,
    /// True once `create` finished its work (the init waits for `start`).
    #[serde(default)]
    pub created_done: bool,
}

/// A locked container directory.
pub struct Handle {
    pub dir: PathBuf,
    lock: Flock<OwnedFd>,
}

/// The `--root` directory.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Claims `id`: creates its directory (failing if it exists) and locks it.
    pub fn claim(&self, id: &str) -> Result<Handle> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .map_err(|e| Error::io(&self.root, e))?;
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists { id: id.to_owned() })
            }
            Err(e) => return Err(Error::io(&dir, e)),
        }
        lock_dir(dir, FlockArg::LockExclusive)
    }

    /// Opens and locks the directory of an existing container.
    pub fn open(&self, id: &str) -> Result<Handle> {
        crate::id::validate(id)?;
        lock_dir(self.dir(id), FlockArg::LockExclusive).map_err(|e| match e {
            Error::Sys {
                source: nix::errno::Errno::ENOENT,
                ..
            } => Error::NotFound { id: id.to_owned() },
            other => other,
        })
    }

    /// IDs of every container directory.
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.root, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| crate::id::validate(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Reads a record without taking the lock (for `state`/`list`, which must not
    /// block behind a long create).
    pub fn read(&self, id: &str) -> Result<Option<Record>> {
        read_record(&self.dir(id))
    }
}

fn lock_dir(dir: PathBuf, arg: FlockArg) -> Result<Handle> {
    let fd = jaula_sys::fs::open(&dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)
        .map_err(|e| Error::sys(format!("open {}", dir.display()), e))?;
    let lock =
        Flock::lock(fd, arg).map_err(|(_, e)| Error::sys(format!("lock {}", dir.display()), e))?;
    Ok(Handle { dir, lock })
}

/// Reads `<dir>/state.json`; None if it was never written.
pub fn read_record(dir: &Path) -> Result<Option<Record>> {
    let path = dir.join(STATE_FILE);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|source| Error::CorruptState { path, source })
}

impl Handle {
    /// Writes the record atomically: a reader sees the old or the new file, never half.
    pub fn write(&self, rec: &Record) -> Result<()> {
        let tmp = self.dir.join(".state.json.tmp");
        let data = serde_json::to_vec(rec).map_err(|source| Error::CorruptState {
            path: tmp.clone(),
            source,
        })?;
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&data).map_err(|e| Error::io(&tmp, e))?;
        let dst = self.dir.join(STATE_FILE);
        fs::rename(&tmp, &dst).map_err(|e| Error::io(dst, e))
    }

    pub fn read(&self) -> Result<Option<Record>> {
        read_record(&self.dir)
    }

    /// Removes the container directory and everything in it; the lock goes with it.
    pub fn remove(self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&self.dir, e)),
        }
    }

    pub fn lock_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.lock.as_fd()
    }
}

/// Whether `pid` is still the process we started: alive, not a zombie, and with
/// the start time we recorded (a recycled pid has a different one).
pub fn is_alive(pid: i32, start: u64) -> bool {
    matches!(jaula_sys::process::proc_start_time(pid), Some((s, state)) if s == start && state != 'Z' && state != 'X')
}

impl Record {
    /// The container's status, derived from the kernel rather than trusted from disk.
    pub fn status(&self, dir: &Path) -> Status {
        let Some(pid) = self.pid else {
            return if self.created_done {
                Status::Stopped
            } else {
                Status::Creating
            };
        };
        if !is_alive(pid, self.pid_start) {
            return Status::Stopped;
        }
        if !self.created_done {
            return Status::Creating;
        }
        if dir.join(START_SOCKET).exists() {
            return Status::Created;
        }
        let frozen = jaula_cgroups::Cgroup::open(&self.cgroup_path)
            .and_then(|cg| cg.is_frozen())
            .unwrap_or(false);
        if frozen {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// The spec's state document.
    pub fn to_state(&self, status: Status) -> jaula_spec::State {
        jaula_spec::State {
            oci_version: jaula_spec::OCI_VERSION.to_owned(),
            id: self.id.clone(),
            status,
            pid: match status {
                Status::Stopped => None,
                _ => self.pid,
            },
            bundle: self.bundle.clone(),
            annotations: self.annotations.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
        }
    }
}

/// Now as RFC 3339 UTC with nanoseconds, without a date-time dependency.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's well-known algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn rfc3339_shape() {
        let s = rfc3339_now();
        assert_eq!(s.len(), 30, "{s}");
        assert!(s.ends_with('Z') && s.as_bytes()[10] == b'T');
    }

    #[test]
    fn claim_is_exclusive() {
        let tmp = std::env::temp_dir().join(format!("jaula-store-{}", std::process::id()));
        let store = Store::new(&tmp);
        let h = store.claim("x").unwrap();
        assert!(matches!(store.claim("x"), Err(Error::AlreadyExists { .. })));
        h.remove().unwrap();
        assert!(matches!(store.open("x"), Err(Error::NotFound { .. })));
        fs::remove_dir_all(tmp).unwrap();
    }
}
