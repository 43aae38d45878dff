//! `pause` and `resume`: freeze and thaw every process of the container.

use crate::error::{Error, Result};
use crate::Runtime;
use jaula_spec::Status;

impl Runtime {
    pub fn pause(&self, id: &str) -> Result<()> {
        let (rec, status) = self.record_and_status(id)?;
        if status != Status::Running {
            return Err(Error::WrongState {
                id: id.to_owned(),
                op: "pause",
                status,
            });
        }
        Ok(jaula_cgroups::Cgroup::open(&rec.cgroup_path)?.freeze()?)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let (rec, status) = self.record_and_status(id)?;
        if status != Status::Paused {
            return Err(Error::WrongState {
                id: id.to_owned(),
                op: "resume",
                status,
            });
        }
        Ok(jaula_cgroups::Cgroup::open(&rec.cgroup_path)?.thaw()?)
    }

    /// Pids of every process in the container's cgroup.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let (rec, status) = self.record_and_status(id)?;
        if status == Status::Stopped {
            return Ok(Vec::new());
        }
        Ok(jaula_cgroups::Cgroup::open(&rec.cgroup_path)?.pids()?)
    }

    pub(crate) fn record_and_status(&self, id: &str) -> Result<(crate::store::Record, Status)> {
        let rec = self.record(id)?;
        let status = rec.status(&self.store().dir(id));
        Ok((rec, status))
    }
}
