//! [`Cgroup`]: one container's cgroup across every hierarchy of the host, and its lifecycle:
//! create, add a process, list processes, destroy.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::layout::{self, Hierarchies, Layout};
use crate::{fs, path, Error};

/// How long `destroy` keeps retrying a busy `rmdir`: after SIGKILL, exiting tasks can hold a
/// v1 cgroup for a moment (large address spaces take time to tear down).
const RMDIR_PATIENCE: Duration = Duration::from_secs(5);

/// One container's cgroup: the same relative path in every hierarchy.
///
/// Building it touches nothing; it can be rebuilt in another process from [`Cgroup::path`]
/// with [`Cgroup::open`].
#[derive(Debug, Clone)]
pub struct Cgroup {
    path: String,
    hier: Arc<Hierarchies>,
}

/// One hierarchy as [`Cgroup::hierarchy_dirs`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HierarchyDir {
    /// Where the hierarchy is mounted, e.g. /sys/fs/cgroup/memory.
    pub mount_point: PathBuf,
    /// The cgroup's directory in it.
    pub dir: PathBuf,
    pub v2: bool,
}

/// One directory of the cgroup, in a v1 hierarchy or in the v2 one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dir {
    V1(PathBuf),
    V2(PathBuf),
}

impl Dir {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Dir::V1(p) | Dir::V2(p) => p,
        }
    }
}

impl Cgroup {
    /// The cgroup of container `id` on this host: `cgroups_path` from the spec (see
    /// [`path::resolve`]), or `jaula/<id>` when the spec has none.
    pub fn for_container(cgroups_path: Option<&str>, id: &str) -> Result<Cgroup, Error> {
        let path = path::resolve(cgroups_path, id)?;
        Ok(Cgroup {
            path,
            hier: layout::hierarchies()?,
        })
    }

    /// The cgroup at a path persisted earlier from [`Cgroup::path`].
    pub fn open(path: &str) -> Result<Cgroup, Error> {
        Cgroup::with_hierarchies(layout::hierarchies()?, path)
    }

    /// The cgroup at `path` in explicitly given hierarchies (tests on a fake root, unusual hosts).
    pub fn with_hierarchies(hier: Arc<Hierarchies>, path: &str) -> Result<Cgroup, Error> {
        Ok(Cgroup {
            path: path::normalize(path)?,
            hier,
        })
    }

    /// The normalized path relative to the hierarchy roots, to persist in state.json.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The layout of the hierarchies this cgroup lives in.
    pub fn layout(&self) -> Layout {
        self.hier.layout
    }

    pub(crate) fn hierarchies(&self) -> &Hierarchies {
        &self.hier
    }

    /// Every directory of this cgroup: one per v1 hierarchy, then the v2 one.
    pub(crate) fn dirs(&self) -> impl Iterator<Item = Dir> + '_ {
        let v1 = self
            .hier
            .v1
            .iter()
            .map(|m| Dir::V1(m.mount_point.join(&self.path)));
        let v2 = self.unified_dir().map(Dir::V2);
        v1.chain(v2)
    }

    /// Every hierarchy's mount point with this cgroup's directory in it, for showing the
    /// container its own cgroups (the runtime's `cgroup` mount type).
    pub fn hierarchy_dirs(&self) -> Vec<HierarchyDir> {
        let v1 = self.hier.v1.iter().map(|m| HierarchyDir {
            mount_point: m.mount_point.clone(),
            dir: m.mount_point.join(&self.path),
            v2: false,
        });
        let v2 = self.hier.unified.iter().map(|u| HierarchyDir {
            mount_point: u.clone(),
            dir: u.join(&self.path),
            v2: true,
        });
        v1.chain(v2).collect()
    }

    /// This cgroup's directory in the v1 hierarchy of `controller`.
    pub(crate) fn v1_dir(&self, controller: &str) -> Option<PathBuf> {
        self.hier.v1_mount(controller).map(|m| m.join(&self.path))
    }

    /// The v2 directory (pure v2, or the hybrid `unified` hierarchy): attach eBPF programs here.
    pub fn unified_dir(&self) -> Option<PathBuf> {
        self.hier.unified.as_ref().map(|u| u.join(&self.path))
    }

    /// An fd on the v2 directory, for `clone3(CLONE_INTO_CGROUP)`. On hybrid this places the
    /// child only in the unified hierarchy; [`Cgroup::add_pid`] is still needed for v1.
    pub fn v2_dir_fd(&self) -> Result<Option<OwnedFd>, Error> {
        let Some(dir) = self.unified_dir() else {
            return Ok(None);
        };
        let f = File::open(&dir).map_err(|source| Error::Open { path: dir, source })?;
        Ok(Some(f.into()))
    }

    /// The directory whose `cgroup.procs` tree lists every process of the container: v2 where
    /// there is one (all processes join it, even on hybrid), else the v1 freezer.
    pub(crate) fn primary_dir(&self) -> Option<PathBuf> {
        self.unified_dir()
            .or_else(|| self.v1_dir("freezer"))
            .or_else(|| self.hier.v1.first().map(|m| m.mount_point.join(&self.path)))
    }

    /// Creates the cgroup in every hierarchy (parents too). A cgroup that already exists is
    /// accepted only if it is empty and not frozen: joining a live one would mix containers.
    /// On failure, the leaf directories this call made are removed again (parents stay: a
    /// concurrent `create` may be using them).
    pub fn create(&self) -> Result<(), Error> {
        let mut made = Vec::new();
        let result = self.create_dirs(&mut made);
        if result.is_err() {
            for dir in made.iter().rev() {
                // Best effort: the error worth reporting is the one that stopped `create`.
                let _ = std::fs::remove_dir(dir);
            }
        }
        result
    }

    fn create_dirs(&self, made: &mut Vec<PathBuf>) -> Result<(), Error> {
        let mut existed = false;
        for dir in self.dirs() {
            let root = self.root_of(&dir);
            let created = mkdir_p(dir.path(), &root)?;
            if created.last().map(PathBuf::as_path) == Some(dir.path()) {
                made.push(dir.path().to_path_buf());
            } else {
                existed = true;
            }
            if matches!(&dir, Dir::V1(p) if Some(p) == self.v1_dir("cpuset").as_ref()) {
                inherit_cpuset(dir.path(), &root)?;
            }
        }
        if existed {
            self.check_reusable()?;
        }
        if self.hier.layout == Layout::V2 {
            self.enable_all_v2_controllers();
        }
        Ok(())
    }

    /// On pure v2, a controller's files (and its accounting, which `stats` reads) exist in the
    /// leaf only if every ancestor enables it. Done here for all of them, like runc, but best
    /// effort: a host may forbid some (a parent with processes of its own, threaded
    /// subtrees). `apply` enables what a limit needs again and fails if it cannot.
    fn enable_all_v2_controllers(&self) {
        if self
            .enable_v2_controllers(&self.hier.v2_controllers)
            .is_ok()
        {
            return;
        }
        for c in &self.hier.v2_controllers {
            // Best effort by design, see above.
            let _ = self.enable_v2_controllers(std::slice::from_ref(c));
        }
    }

    fn root_of(&self, dir: &Dir) -> PathBuf {
        let mut root = dir.path().to_path_buf();
        for _ in self.path.split('/') {
            root.pop();
        }
        root
    }

    /// Every hierarchy is checked, not just the primary one: a stray process may sit in a
    /// single v1 hierarchy. Only reached when a directory already existed, so it costs the
    /// hot path nothing.
    fn check_reusable(&self) -> Result<(), Error> {
        for dir in self.dirs() {
            let mut pids = Vec::new();
            collect_pids(dir.path(), &mut pids)?;
            if !pids.is_empty() {
                return Err(Error::Populated {
                    path: dir.path().to_path_buf(),
                });
            }
        }
        if self.is_frozen()? {
            return Err(Error::Frozen {
                path: self.primary_dir().unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// Moves process `pid` (and its threads) into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        let value = pid.to_string();
        for dir in self.dirs() {
            fs::write(dir.path(), "cgroup.procs", &value)?;
        }
        Ok(())
    }

    /// Every process in the cgroup and its descendants.
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        let mut out = Vec::new();
        if let Some(dir) = self.primary_dir() {
            collect_pids(&dir, &mut out)?;
        }
        Ok(out)
    }

    /// Removes the cgroup (and any child cgroups, bottom-up) from every hierarchy. A cgroup that
    /// is already gone is fine, so a `delete --force` after a crash works. Parents such as
    /// `jaula/` stay: other containers may be creating siblings at the same moment.
    pub fn destroy(&self) -> Result<(), Error> {
        let deadline = Instant::now() + RMDIR_PATIENCE;
        for dir in self.dirs() {
            remove_tree(dir.path(), deadline)?;
        }
        Ok(())
    }
}

/// Creates `dir` and any missing parents below `root`; returns the directories it created,
/// top-down. Tries the leaf first: on the hot path the parent exists and one `mkdir` suffices.
fn mkdir_p(dir: &Path, root: &Path) -> Result<Vec<PathBuf>, Error> {
    let err = |source| Error::Mkdir {
        path: dir.to_path_buf(),
        source,
    };
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(vec![dir.to_path_buf()]),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Vec::new()),
        Err(e) if e.kind() == io::ErrorKind::NotFound && dir != root => {
            let parent = dir.parent().ok_or_else(|| err(e))?;
            let mut created = mkdir_p(parent, root)?;
            match std::fs::create_dir(dir) {
                Ok(()) => created.push(dir.to_path_buf()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(err(e)),
            }
            Ok(created)
        }
        Err(e) => Err(err(e)),
    }
}

/// A new v1 cpuset cgroup starts with empty `cpuset.cpus`/`cpuset.mems` (unless the parent has
/// `cgroup.clone_children`), and no task can join it until they are filled from the parent.
fn inherit_cpuset(dir: &Path, root: &Path) -> Result<(), Error> {
    for name in ["cpuset.cpus", "cpuset.mems"] {
        cpuset_value(dir, root, name)?;
    }
    Ok(())
}

/// The value of `name` in `dir`, filled in from the nearest ancestor first if empty. The
/// ancestors are checked too because a concurrent `create` may have made a shared parent
/// (`jaula/`) a moment ago and not filled it yet.
fn cpuset_value(dir: &Path, root: &Path, name: &str) -> Result<String, Error> {
    let value = fs::read(&dir.join(name))?.trim().to_string();
    match dir.parent() {
        Some(parent) if value.is_empty() && dir != root => {
            let inherited = cpuset_value(parent, root, name)?;
            fs::write(dir, name, &inherited)?;
            Ok(inherited)
        }
        _ => Ok(value),
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), Error> {
    let procs = dir.join("cgroup.procs");
    let text = match fs::read_opt(&procs)? {
        Some(t) => t,
        None => return Ok(()),
    };
    for line in text.lines().filter(|l| !l.is_empty()) {
        out.push(line.trim().parse().map_err(|_| Error::Parse {
            path: procs.clone(),
            reason: format!("not a pid: {line:?}"),
        })?);
    }
    for child in child_dirs(dir)? {
        collect_pids(&child, out)?;
    }
    Ok(())
}

/// The child cgroups of `dir` (an already-removed `dir` has none).
pub(crate) fn child_dirs(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let err = |source| Error::Read {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(err)?;
        if entry.file_type().map_err(err)?.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// `rmdir`s `dir` after its child cgroups, retrying while the kernel still reports it busy.
fn remove_tree(dir: &Path, deadline: Instant) -> Result<(), Error> {
    let mut pause = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                for child in child_dirs(dir)? {
                    remove_tree(&child, deadline)?;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(Error::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

fn is_busy(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::ENOTEMPTY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::V1Mount;

    fn fake_hybrid() -> Arc<Hierarchies> {
        Arc::new(Hierarchies::new(
            vec![
                V1Mount {
                    mount_point: "/cg/cpu,cpuacct".into(),
                    controllers: vec!["cpu".into(), "cpuacct".into()],
                },
                V1Mount {
                    mount_point: "/cg/freezer".into(),
                    controllers: vec!["freezer".into()],
                },
            ],
            Some(("/cg/unified".into(), vec![])),
        ))
    }

    #[test]
    fn dirs_cover_every_hierarchy() {
        let cg = Cgroup::with_hierarchies(fake_hybrid(), "/jaula/x").unwrap();
        let dirs: Vec<_> = cg.dirs().collect();
        assert_eq!(
            dirs,
            [
                Dir::V1("/cg/cpu,cpuacct/jaula/x".into()),
                Dir::V1("/cg/freezer/jaula/x".into()),
                Dir::V2("/cg/unified/jaula/x".into()),
            ]
        );
        assert_eq!(
            cg.v1_dir("cpuacct").unwrap(),
            PathBuf::from("/cg/cpu,cpuacct/jaula/x")
        );
        assert_eq!(
            cg.primary_dir().unwrap(),
            PathBuf::from("/cg/unified/jaula/x")
        );
        assert_eq!(cg.root_of(&dirs[0]), PathBuf::from("/cg/cpu,cpuacct"));
        assert_eq!(cg.path(), "jaula/x");
    }

    #[test]
    fn mkdir_p_reports_what_it_created() {
        let tmp = crate::testutil::TempDir::new("mkdir");
        let leaf = tmp.path().join("a/b/c");
        let made = mkdir_p(&leaf, tmp.path()).unwrap();
        assert_eq!(
            made,
            [tmp.path().join("a"), tmp.path().join("a/b"), leaf.clone()]
        );
        assert!(mkdir_p(&leaf, tmp.path()).unwrap().is_empty());
    }

    #[test]
    fn remove_tree_is_idempotent() {
        let tmp = crate::testutil::TempDir::new("rm");
        let leaf = tmp.path().join("x/y");
        std::fs::create_dir_all(&leaf).unwrap();
        let deadline = Instant::now() + Duration::from_millis(100);
        remove_tree(&tmp.path().join("x"), deadline).unwrap();
        assert!(!tmp.path().join("x").exists());
        remove_tree(&tmp.path().join("x"), deadline).unwrap();
    }
}
