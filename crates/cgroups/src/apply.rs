//! Applying `linux.resources` to a cgroup, at create time and on `update`.
//!
//! Each resource group goes to whichever hierarchy carries its controller: a v1 hierarchy if
//! one is mounted for it, else the v2 hierarchy (on hybrid hosts v2 may carry controllers that
//! v1 lacks, such as hugetlb). A requested resource with no controller is an error: a limit
//! that silently does nothing is worse than a container that does not start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jaula_spec::{Cpu, DeviceCgroup, HugepageLimit, Rdma, Resources};

use crate::{convert, fs, v1, v2, Cgroup, Error};

/// Where one controller of a cgroup lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    V1(PathBuf),
    V2(PathBuf),
}

impl Cgroup {
    /// Writes every resource in `r` and fails on the first one the kernel refuses.
    pub fn apply(&self, r: &Resources) -> Result<(), Error> {
        self.enable_v2_controllers(&self.v2_controllers_for(r))?;
        if let Some(m) = &r.memory {
            match self.target("memory", "memory", "linux.resources.memory")? {
                Target::V1(d) => v1::memory(&d, m)?,
                Target::V2(d) => v2::memory(&d, m)?,
            }
        }
        if let Some(c) = &r.cpu {
            self.apply_cpu(c)?;
        }
        if let Some(p) = &r.pids {
            let d = match self.target("pids", "pids", "linux.resources.pids")? {
                Target::V1(d) | Target::V2(d) => d,
            };
            pids(&d, p.limit)?;
        }
        if let Some(b) = &r.block_io {
            match self.target("blkio", "io", "linux.resources.blockIO")? {
                Target::V1(d) => v1::block_io(&d, b)?,
                Target::V2(d) => v2::block_io(&d, b)?,
            }
        }
        for h in &r.hugepage_limits {
            self.apply_hugepage_limit(h)?;
        }
        if let Some(n) = &r.network {
            v1::network(self, n)?;
        }
        if let Some(devices) = &r.rdma {
            let d = match self.target("rdma", "rdma", "linux.resources.rdma")? {
                Target::V1(d) | Target::V2(d) => d,
            };
            rdma(&d, devices)?;
        }
        if !r.devices.is_empty() {
            self.apply_devices(&r.devices)?;
        }
        if let Some(u) = &r.unified {
            self.apply_unified(u)?;
        }
        Ok(())
    }

    /// The page size becomes part of a file name, so it must look like one ("2MB").
    fn apply_hugepage_limit(&self, h: &HugepageLimit) -> Result<(), Error> {
        let resource = "linux.resources.hugepageLimits";
        check_token(resource, &h.page_size)?;
        let limit = h.limit.to_string();
        match self.target("hugetlb", "hugetlb", resource)? {
            Target::V1(d) => {
                let file = format!("hugetlb.{}.limit_in_bytes", h.page_size);
                fs::write(&d, &file, &limit)
            }
            Target::V2(d) => fs::write(&d, &format!("hugetlb.{}.max", h.page_size), &limit),
        }
    }

    fn apply_cpu(&self, c: &Cpu) -> Result<(), Error> {
        let needs_cpu = c.shares.is_some()
            || c.quota.is_some()
            || c.period.is_some()
            || c.burst.is_some()
            || c.realtime_runtime.is_some()
            || c.realtime_period.is_some()
            || c.idle.is_some();
        if needs_cpu {
            match self.target("cpu", "cpu", "linux.resources.cpu")? {
                Target::V1(d) => v1::cpu(&d, c)?,
                Target::V2(d) => v2::cpu(&d, c)?,
            }
        }
        if c.cpus.is_some() || c.mems.is_some() {
            let d = match self.target("cpuset", "cpuset", "linux.resources.cpu.cpus/mems")? {
                Target::V1(d) | Target::V2(d) => d,
            };
            cpuset(&d, c)?;
        }
        Ok(())
    }

    /// The v1 devices controller where mounted (its rules are what v1 tools inspect).
    fn apply_devices(&self, rules: &[DeviceCgroup]) -> Result<(), Error> {
        if let Some(d) = self.v1_dir("devices") {
            return v1::devices(&d, rules);
        }
        // No v1 devices controller: the eBPF filter, which needs no controller and works on
        // any v2 cgroup, including a hybrid host's unified one.
        match self.unified_dir() {
            Some(d) => crate::devices::install_v2(&d, rules),
            None => Err(Error::NoController {
                resource: "linux.resources.devices".into(),
                controller: "devices".into(),
            }),
        }
    }

    fn apply_unified(&self, map: &BTreeMap<String, String>) -> Result<(), Error> {
        let Some(dir) = self.unified_dir() else {
            return Err(Error::Unsupported {
                resource: "linux.resources.unified".into(),
                version: "v1",
            });
        };
        for (key, value) in map {
            check_unified_key(key, self)?;
            fs::write(&dir, key, value)?;
        }
        Ok(())
    }

    /// Resolves the directory of a controller: `v1` in a v1 hierarchy, else `v2` in the v2 one.
    pub(crate) fn controller(&self, v1: &str, v2: &str) -> Option<Target> {
        if let Some(d) = self.v1_dir(v1) {
            return Some(Target::V1(d));
        }
        self.unified_dir()
            .filter(|_| self.hierarchies().v2_has(v2))
            .map(Target::V2)
    }

    /// Like [`Cgroup::controller`], but a missing controller is an error naming `resource`.
    pub(crate) fn target(&self, v1: &str, v2: &str, resource: &str) -> Result<Target, Error> {
        self.controller(v1, v2).ok_or_else(|| Error::NoController {
            resource: resource.into(),
            controller: v1.into(),
        })
    }

    /// The v2 controllers that `r` will write through, so that they can be enabled first.
    fn v2_controllers_for(&self, r: &Resources) -> Vec<String> {
        let mut wanted: Vec<(&str, &str)> = Vec::new();
        if r.memory.is_some() {
            wanted.push(("memory", "memory"));
        }
        if let Some(c) = &r.cpu {
            if c.cpus.is_some() || c.mems.is_some() {
                wanted.push(("cpuset", "cpuset"));
            }
            if c.shares.is_some()
                || c.quota.is_some()
                || c.period.is_some()
                || c.burst.is_some()
                || c.idle.is_some()
            {
                wanted.push(("cpu", "cpu"));
            }
        }
        if r.pids.is_some() {
            wanted.push(("pids", "pids"));
        }
        if r.block_io.is_some() {
            wanted.push(("blkio", "io"));
        }
        if !r.hugepage_limits.is_empty() {
            wanted.push(("hugetlb", "hugetlb"));
        }
        if r.rdma.is_some() {
            wanted.push(("rdma", "rdma"));
        }
        let mut out: Vec<String> = Vec::new();
        for (v1, v2) in wanted {
            if self.v1_dir(v1).is_none() && self.hierarchies().v2_has(v2) {
                out.push(v2.into());
            }
        }
        for key in r.unified.iter().flat_map(|u| u.keys()) {
            let ctrl = key.split('.').next().unwrap_or_default();
            if self.hierarchies().v2_has(ctrl) && !out.iter().any(|c| c == ctrl) {
                out.push(ctrl.into());
            }
        }
        out
    }

    /// Enables `controllers` in `cgroup.subtree_control` of every v2 ancestor, top-down, so that
    /// the leaf gets their files. Idempotent; the leaf's own subtree_control is left alone
    /// (enabling it there would forbid processes in the leaf).
    pub(crate) fn enable_v2_controllers(&self, controllers: &[String]) -> Result<(), Error> {
        let (Some(root), false) = (&self.hierarchies().unified, controllers.is_empty()) else {
            return Ok(());
        };
        let value = controllers
            .iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut dir = root.clone();
        let parts: Vec<&str> = self.path().split('/').collect();
        for part in &parts[..parts.len() - 1] {
            fs::write(&dir, "cgroup.subtree_control", &value)?;
            dir.push(part);
        }
        fs::write(&dir, "cgroup.subtree_control", &value)
    }
}

/// A value that becomes part of a file name or of a one-line cgroup command (a page size, an
/// interface or RDMA device name): no separators, no whitespace that could smuggle in a
/// second setting.
pub(crate) fn check_token(resource: &str, value: &str) -> Result<(), Error> {
    let bad = value.is_empty()
        || value == "."
        || value == ".."
        || value
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(Error::Invalid {
            resource: resource.into(),
            reason: format!("{value:?} is not a single name"),
        });
    }
    Ok(())
}

/// A `unified` key names one file in the cgroup directory: no path separators, and a
/// controller that the v2 hierarchy actually offers (or a core `cgroup.` file).
fn check_unified_key(key: &str, cg: &Cgroup) -> Result<(), Error> {
    let resource = format!("linux.resources.unified[{key:?}]");
    if key.contains('/') || key.starts_with('.') || !key.contains('.') {
        return Err(Error::Invalid {
            resource,
            reason: "not a cgroup file name".into(),
        });
    }
    let ctrl = key.split('.').next().unwrap_or_default();
    if ctrl != "cgroup" && !cg.hierarchies().v2_has(ctrl) {
        return Err(Error::NoController {
            resource,
            controller: ctrl.into(),
        });
    }
    Ok(())
}

/// `pids.max`, the same file in v1 and v2.
fn pids(dir: &Path, limit: i64) -> Result<(), Error> {
    match convert::pids_max(limit) {
        Some(v) => fs::write(dir, "pids.max", &v),
        None => Ok(()),
    }
}

/// `cpuset.cpus`/`cpuset.mems`, the same files in v1 and v2.
fn cpuset(dir: &Path, c: &Cpu) -> Result<(), Error> {
    if let Some(cpus) = &c.cpus {
        fs::write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = &c.mems {
        fs::write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// `rdma.max`, one line per device, the same format in v1 and v2.
fn rdma(dir: &Path, devices: &BTreeMap<String, Rdma>) -> Result<(), Error> {
    for (name, r) in devices {
        check_token("linux.resources.rdma", name)?;
        let mut line = name.clone();
        if let Some(h) = r.hca_handles {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = r.hca_objects {
            line.push_str(&format!(" hca_object={o}"));
        }
        if line.len() > name.len() {
            fs::write(dir, "rdma.max", &line)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use jaula_spec::{HugepageLimit, Memory, Network, Pids};

    use super::*;
    use crate::testutil::TempDir;
    use crate::Hierarchies;

    /// A fake pure-v2 mount with a cgroup "jaula/x" whose control files exist.
    fn fake_v2(t: &TempDir, files: &[&str]) -> Cgroup {
        t.file("cgroup.controllers", "cpuset cpu io memory hugetlb pids\n");
        t.file("cgroup.subtree_control", "");
        let h = Arc::new(Hierarchies::v2(t.path()).unwrap());
        let cg = Cgroup::with_hierarchies(h, "/jaula/x").unwrap();
        t.file("jaula/cgroup.subtree_control", "");
        cg.create().unwrap();
        // create enabled every controller in both ancestors (a real cgroupfs would list them).
        let all = "+cpuset +cpu +io +memory +hugetlb +pids";
        assert_eq!(t.read("cgroup.subtree_control"), all);
        assert_eq!(t.read("jaula/cgroup.subtree_control"), all);
        // Start over, so that what apply enables can be seen on its own.
        t.file("cgroup.subtree_control", "");
        t.file("jaula/cgroup.subtree_control", "");
        for f in files {
            t.file(&format!("jaula/x/{f}"), "");
        }
        cg
    }

    #[test]
    fn v2_enables_controllers_in_every_ancestor_and_writes_converted_values() {
        let t = TempDir::new("applyv2");
        let cg = fake_v2(
            &t,
            &[
                "memory.max",
                "memory.swap.max",
                "pids.max",
                "hugetlb.2MB.max",
                "cpu.weight",
                "memory.high",
            ],
        );
        let r = Resources {
            memory: Some(Memory {
                limit: Some(1 << 30),
                swap: Some(3 << 29),
                ..Default::default()
            }),
            cpu: Some(Cpu {
                shares: Some(2048),
                ..Default::default()
            }),
            pids: Some(Pids { limit: -1 }),
            hugepage_limits: vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 4 << 20,
            }],
            unified: Some([("memory.high".to_string(), "900000".to_string())].into()),
            ..Default::default()
        };
        cg.apply(&r).unwrap();
        let enabled = "+memory +cpu +pids +hugetlb";
        assert_eq!(t.read("cgroup.subtree_control"), enabled);
        assert_eq!(t.read("jaula/cgroup.subtree_control"), enabled);
        assert_eq!(t.read("jaula/x/memory.max"), (1u64 << 30).to_string());
        assert_eq!(t.read("jaula/x/memory.swap.max"), (1u64 << 29).to_string());
        assert_eq!(t.read("jaula/x/pids.max"), "max");
        assert_eq!(t.read("jaula/x/hugetlb.2MB.max"), (4u64 << 20).to_string());
        assert_eq!(t.read("jaula/x/cpu.weight"), "79");
        assert_eq!(t.read("jaula/x/memory.high"), "900000");
    }

    #[test]
    fn v2_refuses_v1_only_resources() {
        let t = TempDir::new("applyv2no");
        let cg = fake_v2(&t, &[]);
        let net = Resources {
            network: Some(Network {
                class_id: Some(1),
                priorities: Vec::new(),
            }),
            ..Default::default()
        };
        assert!(matches!(cg.apply(&net), Err(Error::NoController { .. })));
        let bad_size = Resources {
            hugepage_limits: vec![HugepageLimit {
                page_size: "../2MB".into(),
                limit: 1,
            }],
            ..Default::default()
        };
        assert!(matches!(cg.apply(&bad_size), Err(Error::Invalid { .. })));
        let bad_key = Resources {
            unified: Some([("../escape.max".to_string(), "1".to_string())].into()),
            ..Default::default()
        };
        assert!(matches!(cg.apply(&bad_key), Err(Error::Invalid { .. })));
        let no_ctrl = Resources {
            unified: Some([("rdma.max".to_string(), "1".to_string())].into()),
            ..Default::default()
        };
        assert!(matches!(
            cg.apply(&no_ctrl),
            Err(Error::NoController { .. })
        ));
    }

    #[test]
    fn rdma_lines_name_the_device_and_only_set_limits() {
        let t = TempDir::new("rdma");
        t.file("rdma.max", "");
        let devices: BTreeMap<String, Rdma> = [(
            "mlx4_0".to_string(),
            Rdma {
                hca_handles: Some(2),
                hca_objects: None,
            },
        )]
        .into();
        rdma(t.path(), &devices).unwrap();
        assert_eq!(t.read("rdma.max"), "mlx4_0 hca_handle=2");
        let smuggled: BTreeMap<String, Rdma> = [("a b".to_string(), Rdma::default())].into();
        assert!(matches!(
            rdma(t.path(), &smuggled),
            Err(Error::Invalid { .. })
        ));
    }

    #[test]
    fn unified_on_v1_is_refused() {
        let h = Arc::new(Hierarchies::new(
            vec![crate::V1Mount {
                mount_point: "/nonexistent/memory".into(),
                controllers: vec!["memory".into()],
            }],
            None,
        ));
        let cg = Cgroup::with_hierarchies(h, "a").unwrap();
        let r = Resources {
            unified: Some([("memory.high".to_string(), "1".to_string())].into()),
            ..Default::default()
        };
        assert!(matches!(cg.apply(&r), Err(Error::Unsupported { .. })));
        let hp = Resources {
            hugepage_limits: vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 0,
            }],
            ..Default::default()
        };
        assert!(matches!(cg.apply(&hp), Err(Error::NoController { .. })));
    }
}
