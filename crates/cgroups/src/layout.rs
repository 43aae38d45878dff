//! Finding the cgroup hierarchies of the host: pure v2, v1, or hybrid (v1 controllers plus a
//! controller-less or nearly controller-less cgroup2 mount, usually `/sys/fs/cgroup/unified`).
//!
//! Detection costs one `statfs` and one read of `/proc/self/mountinfo`, and is cached for the
//! life of the process because every runtime start needs it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};

use crate::fs;

/// The default mount point of the cgroup file systems.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The three shapes a host's cgroup mounts can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Only v1 hierarchies, one per controller (or per co-mounted group of controllers).
    V1,
    /// One unified v2 hierarchy at `/sys/fs/cgroup`.
    V2,
    /// v1 controllers plus a v2 hierarchy (for eBPF programs and any controller v1 lacks).
    Hybrid,
}

/// Errors from detecting the layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot statfs {path}")]
    Statfs {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot read /proc/self/mountinfo")]
    Mountinfo(#[source] Box<crate::Error>),
    #[error("{path} is neither cgroup2 nor a tmpfs holding cgroup v1 mounts")]
    Unknown { path: PathBuf },
    #[error("malformed mountinfo line {line:?}")]
    Malformed { line: String },
}

/// One mounted v1 hierarchy and the controllers it carries (`name=systemd` counts as one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Mount {
    pub mount_point: PathBuf,
    pub controllers: Vec<String>,
}

/// Where each hierarchy lives. Build it with [`hierarchies`] on a real host, or with
/// [`Hierarchies::v2`] / [`Hierarchies::new`] on a fake root directory in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchies {
    pub layout: Layout,
    /// The v1 hierarchies, in mountinfo order, one entry per distinct hierarchy.
    pub v1: Vec<V1Mount>,
    /// The v2 mount point: `/sys/fs/cgroup` on pure v2, the `unified` mount on hybrid.
    pub unified: Option<PathBuf>,
    /// Controllers the v2 root offers (`cgroup.controllers` of the v2 mount).
    pub v2_controllers: Vec<String>,
}

impl Hierarchies {
    /// A pure v2 host whose cgroup2 file system is mounted at `root`; reads
    /// `root/cgroup.controllers`.
    pub fn v2(root: &Path) -> Result<Hierarchies, crate::Error> {
        let controllers = fs::read(&root.join("cgroup.controllers"))?;
        Ok(Hierarchies {
            layout: Layout::V2,
            v1: Vec::new(),
            unified: Some(root.to_path_buf()),
            v2_controllers: split_words(&controllers),
        })
    }

    /// Any layout from explicit parts (tests, or hosts with unusual mount points).
    pub fn new(v1: Vec<V1Mount>, unified: Option<(PathBuf, Vec<String>)>) -> Hierarchies {
        let layout = match (v1.is_empty(), unified.is_some()) {
            (true, _) => Layout::V2,
            (false, true) => Layout::Hybrid,
            (false, false) => Layout::V1,
        };
        let (unified, v2_controllers) = match unified {
            Some((p, c)) => (Some(p), c),
            None => (None, Vec::new()),
        };
        Hierarchies {
            layout,
            v1,
            unified,
            v2_controllers,
        }
    }

    /// The v1 hierarchy that carries `controller`, if any.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller))
            .map(|m| m.mount_point.as_path())
    }

    /// Whether the v2 hierarchy offers `controller`.
    pub fn v2_has(&self, controller: &str) -> bool {
        self.unified.is_some() && self.v2_controllers.iter().any(|c| c == controller)
    }
}

/// The host's layout, detected once per process.
pub fn detect() -> Result<Layout, crate::Error> {
    Ok(hierarchies()?.layout)
}

/// The host's hierarchies, detected once per process.
pub fn hierarchies() -> Result<Arc<Hierarchies>, crate::Error> {
    static CACHE: OnceLock<Arc<Hierarchies>> = OnceLock::new();
    if let Some(h) = CACHE.get() {
        return Ok(h.clone());
    }
    let h = Arc::new(detect_uncached(Path::new(CGROUP_ROOT))?);
    Ok(CACHE.get_or_init(|| h).clone())
}

fn detect_uncached(root: &Path) -> Result<Hierarchies, crate::Error> {
    let st = statfs(root).map_err(|source| LayoutError::Statfs {
        path: root.to_path_buf(),
        source,
    })?;
    if st.filesystem_type() == CGROUP2_SUPER_MAGIC {
        return Hierarchies::v2(root);
    }
    if st.filesystem_type() != TMPFS_MAGIC {
        return Err(LayoutError::Unknown {
            path: root.to_path_buf(),
        }
        .into());
    }
    let text = fs::read(Path::new("/proc/self/mountinfo"))
        .map_err(|e| LayoutError::Mountinfo(Box::new(e)))?;
    let mounts = parse_mountinfo(&text)?;
    let unified = match mounts.unified {
        Some(p) => {
            let c = fs::read(&p.join("cgroup.controllers"))?;
            Some((p, split_words(&c)))
        }
        None => None,
    };
    if mounts.v1.is_empty() {
        return Err(LayoutError::Unknown {
            path: root.to_path_buf(),
        }
        .into());
    }
    Ok(Hierarchies::new(mounts.v1, unified))
}

/// The cgroup mounts found in a mountinfo text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mounts {
    pub v1: Vec<V1Mount>,
    pub unified: Option<PathBuf>,
}

/// Mount options of a v1 cgroup mount that are not controllers.
const NOT_CONTROLLERS: &[&str] = &[
    "rw",
    "ro",
    "xattr",
    "noprefix",
    "clone_children",
    "cpuset_v2_mode",
    "favordynmods",
    "none",
];

/// Parses `/proc/self/mountinfo` for cgroup (v1) and cgroup2 mounts. A hierarchy mounted twice
/// (same device number) is kept once, at its first mount point.
pub fn parse_mountinfo(text: &str) -> Result<Mounts, LayoutError> {
    let mut out = Mounts::default();
    let mut seen_devs: Vec<&str> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-");
        let (Some(sep), true) = (sep, fields.len() >= 6) else {
            return Err(LayoutError::Malformed { line: line.into() });
        };
        let (Some(fstype), Some(super_opts)) = (fields.get(sep + 1), fields.get(sep + 3)) else {
            return Err(LayoutError::Malformed { line: line.into() });
        };
        let dev = fields[2];
        let mount_point = PathBuf::from(unescape(fields[4]));
        match *fstype {
            "cgroup2" if out.unified.is_none() => out.unified = Some(mount_point),
            "cgroup" if !seen_devs.contains(&dev) => {
                seen_devs.push(dev);
                let controllers = super_opts
                    .split(',')
                    .filter(|o| !NOT_CONTROLLERS.contains(o) && !o.starts_with("release_agent="))
                    .map(str::to_string)
                    .collect();
                out.v1.push(V1Mount {
                    mount_point,
                    controllers,
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn split_words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:32 / /mnt/again\\040here rw - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_mountinfo_finds_every_hierarchy_once() {
        let m = parse_mountinfo(HYBRID).unwrap();
        assert_eq!(m.unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let names: Vec<_> = m.v1.iter().map(|m| m.controllers.join(",")).collect();
        assert_eq!(names, ["cpu", "cpuacct", "memory", "name=systemd"]);
        assert_eq!(m.v1[2].mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn comounted_controllers_share_a_hierarchy() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct,release_agent=/x\n";
        let m = parse_mountinfo(text).unwrap();
        let h = Hierarchies::new(m.v1, None);
        assert_eq!(h.layout, Layout::V1);
        assert_eq!(
            h.v1_mount("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(h.v1_mount("cpu"), h.v1_mount("cpuacct"));
        assert_eq!(h.v1[0].controllers, ["cpu", "cpuacct"]);
    }

    #[test]
    fn escaped_mount_points_are_decoded() {
        assert_eq!(unescape("/a\\040b\\011c"), "/a b\tc");
        assert_eq!(unescape("/plain\\"), "/plain\\");
    }

    #[test]
    fn malformed_line_is_an_error() {
        assert!(parse_mountinfo("garbage line\n").is_err());
    }

    #[test]
    fn layout_follows_the_parts() {
        let v1 = vec![V1Mount {
            mount_point: "/x".into(),
            controllers: vec!["memory".into()],
        }];
        assert_eq!(Hierarchies::new(v1.clone(), None).layout, Layout::V1);
        let h = Hierarchies::new(v1, Some(("/u".into(), vec!["hugetlb".into()])));
        assert_eq!(h.layout, Layout::Hybrid);
        assert!(h.v2_has("hugetlb"));
        assert!(!h.v2_has("memory"));
        assert_eq!(
            Hierarchies::new(Vec::new(), Some(("/u".into(), vec![]))).layout,
            Layout::V2
        );
    }
}
