//! Resource writers for cgroup v1 controller files.

use std::path::Path;

use jaula_spec::{BlockIo, Cpu, DeviceCgroup, Memory, Network};

use crate::{devices, fs, Cgroup, Error};

/// memory controller. The memory and memory+swap limits constrain each other
/// (memsw >= limit at all times), so the order of the two writes depends on whether the
/// limits grow or shrink; rather than read both first, try the common order and swap on EINVAL.
pub(crate) fn memory(dir: &Path, m: &Memory) -> Result<(), Error> {
    if m.check_before_update == Some(true) {
        check_usage(dir, m.limit, "memory.usage_in_bytes")?;
    }
    let limit = m.limit.map(|l| l.to_string());
    // An unlimited memory with no swap setting means unlimited memory+swap too, as in runc.
    let swap = match (m.swap, m.limit) {
        (Some(s), _) => Some(s.to_string()),
        (None, Some(-1)) if dir.join("memory.memsw.limit_in_bytes").exists() => Some("-1".into()),
        _ => None,
    };
    match (&limit, &swap) {
        (Some(l), Some(s)) => {
            let first = fs::write(dir, "memory.limit_in_bytes", l);
            match first {
                Err(e) if e.errno() == Some(libc::EINVAL) => {
                    fs::write(dir, "memory.memsw.limit_in_bytes", s)?;
                    fs::write(dir, "memory.limit_in_bytes", l)?;
                }
                Err(e) => return Err(e),
                Ok(()) => fs::write(dir, "memory.memsw.limit_in_bytes", s)?,
            }
        }
        (Some(l), None) => fs::write(dir, "memory.limit_in_bytes", l)?,
        (None, Some(s)) => fs::write(dir, "memory.memsw.limit_in_bytes", s)?,
        (None, None) => {}
    }
    write_opt(dir, "memory.soft_limit_in_bytes", m.reservation)?;
    write_opt(dir, "memory.kmem.limit_in_bytes", m.kernel)?;
    write_opt(dir, "memory.kmem.tcp.limit_in_bytes", m.kernel_tcp)?;
    if let Some(s) = m.swappiness {
        if s > 100 {
            return Err(Error::Invalid {
                resource: "linux.resources.memory.swappiness".into(),
                reason: format!("{s} is above 100"),
            });
        }
        fs::write(dir, "memory.swappiness", &s.to_string())?;
    }
    if let Some(d) = m.disable_oom_killer {
        fs::write(dir, "memory.oom_control", if d { "1" } else { "0" })?;
    }
    if let Some(h) = m.use_hierarchy {
        fs::write(dir, "memory.use_hierarchy", if h { "1" } else { "0" })?;
    }
    Ok(())
}

/// Refuses a new limit below what the cgroup already uses (`checkBeforeUpdate`).
pub(crate) fn check_usage(dir: &Path, limit: Option<i64>, usage_file: &str) -> Result<(), Error> {
    let Some(limit) = limit.filter(|l| *l > 0) else {
        return Ok(());
    };
    let usage = fs::read_u64(&dir.join(usage_file))?;
    if (limit as u64) < usage {
        return Err(Error::Invalid {
            resource: "linux.resources.memory.limit".into(),
            reason: format!("{limit} is below the current usage {usage}"),
        });
    }
    Ok(())
}

/// cpu controller. The CFS period and quota constrain each other like memory and swap.
pub(crate) fn cpu(dir: &Path, c: &Cpu) -> Result<(), Error> {
    write_opt(dir, "cpu.shares", c.shares)?;
    let period = c.period.filter(|p| *p != 0).map(|p| p.to_string());
    let quota = c.quota.filter(|q| *q != 0).map(|q| q.to_string());
    match (&period, &quota) {
        (Some(p), Some(q)) => match fs::write(dir, "cpu.cfs_period_us", p) {
            Err(e) if e.errno() == Some(libc::EINVAL) => {
                fs::write(dir, "cpu.cfs_quota_us", q)?;
                fs::write(dir, "cpu.cfs_period_us", p)?;
            }
            Err(e) => return Err(e),
            Ok(()) => fs::write(dir, "cpu.cfs_quota_us", q)?,
        },
        (Some(p), None) => fs::write(dir, "cpu.cfs_period_us", p)?,
        (None, Some(q)) => fs::write(dir, "cpu.cfs_quota_us", q)?,
        (None, None) => {}
    }
    write_opt(dir, "cpu.cfs_burst_us", c.burst)?;
    // The period must be in place before a runtime that only fits in it.
    write_opt(dir, "cpu.rt_period_us", c.realtime_period)?;
    write_opt(dir, "cpu.rt_runtime_us", c.realtime_runtime)?;
    write_opt(dir, "cpu.idle", c.idle)
}

/// blkio controller. The proportional weight lives in `blkio.weight` (CFQ) or
/// `blkio.bfq.weight` (BFQ), depending on the kernel.
pub(crate) fn block_io(dir: &Path, b: &BlockIo) -> Result<(), Error> {
    let bfq = !dir.join("blkio.weight").exists() && dir.join("blkio.bfq.weight").exists();
    let (weight, weight_device) = if bfq {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    } else {
        ("blkio.weight", "blkio.weight_device")
    };
    write_opt(dir, weight, b.weight)?;
    write_opt(dir, "blkio.leaf_weight", b.leaf_weight)?;
    for d in &b.weight_device {
        if let Some(w) = d.weight {
            fs::write(dir, weight_device, &format!("{}:{} {w}", d.major, d.minor))?;
        }
        if let Some(w) = d.leaf_weight {
            let line = format!("{}:{} {w}", d.major, d.minor);
            fs::write(dir, "blkio.leaf_weight_device", &line)?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            &b.throttle_read_bps_device,
        ),
        (
            "blkio.throttle.write_bps_device",
            &b.throttle_write_bps_device,
        ),
        (
            "blkio.throttle.read_iops_device",
            &b.throttle_read_iops_device,
        ),
        (
            "blkio.throttle.write_iops_device",
            &b.throttle_write_iops_device,
        ),
    ];
    for (file, devices) in throttles {
        for d in devices {
            fs::write(dir, file, &format!("{}:{} {}", d.major, d.minor, d.rate))?;
        }
    }
    Ok(())
}

/// net_cls and net_prio: v1 only, each needs its own controller.
pub(crate) fn network(cg: &Cgroup, n: &Network) -> Result<(), Error> {
    let missing = |controller: &str, resource: &str| Error::NoController {
        resource: resource.into(),
        controller: controller.into(),
    };
    if let Some(id) = n.class_id {
        let resource = "linux.resources.network.classID";
        let dir = cg
            .v1_dir("net_cls")
            .ok_or_else(|| missing("net_cls", resource))?;
        fs::write(&dir, "net_cls.classid", &id.to_string())?;
    }
    if !n.priorities.is_empty() {
        let resource = "linux.resources.network.priorities";
        let dir = cg
            .v1_dir("net_prio")
            .ok_or_else(|| missing("net_prio", resource))?;
        for p in &n.priorities {
            crate::apply::check_token(resource, &p.name)?;
            fs::write(
                &dir,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name, p.priority),
            )?;
        }
    }
    Ok(())
}

/// devices controller: each rule is one write to `devices.allow` or `devices.deny`, in spec
/// order, so that the usual "deny all, then allow a few" comes out as written.
pub(crate) fn devices(dir: &Path, rules: &[DeviceCgroup]) -> Result<(), Error> {
    for rule in rules {
        let line = devices::v1_rule(rule)?;
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        fs::write(dir, file, &line)?;
    }
    Ok(())
}

fn write_opt<T: ToString>(dir: &Path, name: &str, value: Option<T>) -> Result<(), Error> {
    match value {
        Some(v) => fs::write(dir, name, &v.to_string()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use jaula_spec::{ThrottleDevice, WeightDevice};

    #[test]
    fn memory_writes_limit_swap_and_knobs() {
        let t = TempDir::new("v1mem");
        for f in [
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
            "memory.kmem.tcp.limit_in_bytes",
        ] {
            t.file(f, "");
        }
        let m = Memory {
            limit: Some(1 << 25),
            swap: Some(1 << 26),
            reservation: Some(1 << 24),
            kernel_tcp: Some(1 << 20),
            swappiness: Some(10),
            disable_oom_killer: Some(true),
            ..Default::default()
        };
        memory(t.path(), &m).unwrap();
        assert_eq!(t.read("memory.limit_in_bytes"), "33554432");
        assert_eq!(t.read("memory.memsw.limit_in_bytes"), "67108864");
        assert_eq!(t.read("memory.soft_limit_in_bytes"), "16777216");
        assert_eq!(t.read("memory.kmem.tcp.limit_in_bytes"), "1048576");
        assert_eq!(t.read("memory.swappiness"), "10");
        assert_eq!(t.read("memory.oom_control"), "1");
    }

    #[test]
    fn swappiness_above_100_is_refused() {
        let t = TempDir::new("v1swp");
        t.file("memory.swappiness", "");
        let m = Memory {
            swappiness: Some(101),
            ..Default::default()
        };
        assert!(matches!(memory(t.path(), &m), Err(Error::Invalid { .. })));
    }

    #[test]
    fn swap_without_memsw_file_fails_closed() {
        let t = TempDir::new("v1nomemsw");
        t.file("memory.limit_in_bytes", "");
        let m = Memory {
            limit: Some(4096),
            swap: Some(8192),
            ..Default::default()
        };
        let e = memory(t.path(), &m).unwrap_err();
        assert!(e.to_string().contains("memory.memsw.limit_in_bytes"), "{e}");
    }

    #[test]
    fn cpu_writes_quota_period_and_rt() {
        let t = TempDir::new("v1cpu");
        for f in [
            "cpu.shares",
            "cpu.cfs_period_us",
            "cpu.cfs_quota_us",
            "cpu.rt_period_us",
            "cpu.rt_runtime_us",
        ] {
            t.file(f, "");
        }
        let c = Cpu {
            shares: Some(512),
            quota: Some(50_000),
            period: Some(100_000),
            realtime_period: Some(1_000_000),
            realtime_runtime: Some(0),
            ..Default::default()
        };
        cpu(t.path(), &c).unwrap();
        assert_eq!(t.read("cpu.shares"), "512");
        assert_eq!(t.read("cpu.cfs_quota_us"), "50000");
        assert_eq!(t.read("cpu.cfs_period_us"), "100000");
        assert_eq!(t.read("cpu.rt_runtime_us"), "0");
    }

    #[test]
    fn block_io_prefers_bfq_when_cfq_is_absent() {
        let t = TempDir::new("v1blk");
        for f in [
            "blkio.bfq.weight",
            "blkio.bfq.weight_device",
            "blkio.throttle.read_bps_device",
        ] {
            t.file(f, "");
        }
        let b = BlockIo {
            weight: Some(300),
            weight_device: vec![WeightDevice {
                major: 8,
                minor: 0,
                weight: Some(200),
                leaf_weight: None,
            }],
            throttle_read_bps_device: vec![ThrottleDevice {
                major: 8,
                minor: 0,
                rate: 1 << 20,
            }],
            ..Default::default()
        };
        block_io(t.path(), &b).unwrap();
        assert_eq!(t.read("blkio.bfq.weight"), "300");
        assert_eq!(t.read("blkio.bfq.weight_device"), "8:0 200");
        assert_eq!(t.read("blkio.throttle.read_bps_device"), "8:0 1048576");
    }
}
