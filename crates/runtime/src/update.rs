//! `update`: change resource limits of a live container, and `stats` for `events`.

use crate::error::{Error, Result};
use crate::Runtime;
use jaula_spec::{Resources, Status};

impl Runtime {
    /// Applies `r` to the container's cgroup and records it in the state.
    pub fn update(&self, id: &str, r: &Resources) -> Result<()> {
        let h = self.store().open(id)?;
        let mut rec = h
            .read()?
            .ok_or_else(|| Error::NotFound { id: id.to_owned() })?;
        let status = rec.status(&h.dir);
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(Error::NotRunning { id: id.to_owned() });
        }
        jaula_cgroups::Cgroup::open(&rec.cgroup_path)?.apply(r)?;
        let linux = rec.config.linux.get_or_insert_with(Default::default);
        linux.resources = Some(merge(linux.resources.take().unwrap_or_default(), r));
        h.write(&rec)
    }

    pub fn stats(&self, id: &str) -> Result<jaula_cgroups::Stats> {
        let (rec, status) = self.record_and_status(id)?;
        if status == Status::Stopped {
            return Err(Error::NotRunning { id: id.to_owned() });
        }
        Ok(jaula_cgroups::Cgroup::open(&rec.cgroup_path)?.stats()?)
    }
}

/// Overlays the sections `new` sets on `old`.
fn merge(mut old: Resources, new: &Resources) -> Resources {
    if new.memory.is_some() {
        old.memory = new.memory.clone();
    }
    if new.cpu.is_some() {
        old.cpu = new.cpu.clone();
    }
    if new.pids.is_some() {
        old.pids = new.pids.clone();
    }
    if new.block_io.is_some() {
        old.block_io = new.block_io.clone();
    }
    if !new.hugepage_limits.is_empty() {
        old.hugepage_limits = new.hugepage_limits.clone();
    }
    if new.unified.is_some() {
        old.unified = new.unified.clone();
    }
    if !new.devices.is_empty() {
        old.devices = new.devices.clone();
    }
    old
}
