//! Resource writers for cgroup v2 files, converting OCI's v1-flavoured values like runc does.

use std::path::Path;

use jaula_spec::{BlockIo, Cpu, Memory};

use crate::convert::{self, v2_limit};
use crate::{fs, v1, Error};

fn unsupported(resource: &str) -> Error {
    Error::Unsupported {
        resource: resource.into(),
        version: "v2",
    }
}

/// memory controller: `memory.max`, `memory.low`, `memory.swap.max` (which on v2 counts swap
/// alone, while OCI's `swap` is memory+swap).
pub(crate) fn memory(dir: &Path, m: &Memory) -> Result<(), Error> {
    if m.kernel.is_some() {
        return Err(unsupported("linux.resources.memory.kernel"));
    }
    if m.kernel_tcp.is_some() {
        return Err(unsupported("linux.resources.memory.kernelTCP"));
    }
    if m.swappiness.is_some() {
        return Err(unsupported("linux.resources.memory.swappiness"));
    }
    if m.disable_oom_killer == Some(true) {
        return Err(unsupported("linux.resources.memory.disableOOMKiller"));
    }
    if m.check_before_update == Some(true) {
        v1::check_usage(dir, m.limit, "memory.current")?;
    }
    if let Some(swap) = convert::swap_to_v2(m.swap, m.limit)? {
        fs::write(dir, "memory.swap.max", &v2_limit(swap))?;
    }
    if let Some(l) = m.limit {
        fs::write(dir, "memory.max", &v2_limit(l))?;
    }
    if let Some(r) = m.reservation {
        fs::write(dir, "memory.low", &v2_limit(r))?;
    }
    Ok(())
}

/// cpu controller: `cpu.weight` from shares, `cpu.max` from quota and period.
pub(crate) fn cpu(dir: &Path, c: &Cpu) -> Result<(), Error> {
    if c.realtime_runtime.is_some() || c.realtime_period.is_some() {
        return Err(unsupported(
            "linux.resources.cpu.realtimeRuntime/realtimePeriod",
        ));
    }
    if let Some(shares) = c.shares.filter(|s| *s != 0) {
        let weight = convert::shares_to_weight(shares).to_string();
        fs::write(dir, "cpu.weight", &weight)?;
    }
    if let Some(max) = convert::cpu_max(c.quota, c.period) {
        fs::write(dir, "cpu.max", &max)?;
    }
    if let Some(b) = c.burst {
        fs::write(dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle {
        fs::write(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

/// io controller. With BFQ, `io.bfq.weight` takes the v1 scale unchanged; otherwise the
/// weight is converted to `io.weight`'s 1..10000 scale. Throttles go to `io.max`.
pub(crate) fn block_io(dir: &Path, b: &BlockIo) -> Result<(), Error> {
    if b.leaf_weight.is_some() || b.weight_device.iter().any(|d| d.leaf_weight.is_some()) {
        return Err(unsupported("linux.resources.blockIO.leafWeight"));
    }
    let bfq = dir.join("io.bfq.weight").exists();
    let (file, scale): (&str, fn(u16) -> u64) = if bfq {
        ("io.bfq.weight", u64::from)
    } else {
        ("io.weight", convert::blkio_weight_to_io_weight)
    };
    if let Some(w) = b.weight.filter(|w| *w != 0) {
        fs::write(dir, file, &scale(w).to_string())?;
    }
    for d in &b.weight_device {
        if let Some(w) = d.weight {
            fs::write(dir, file, &format!("{}:{} {}", d.major, d.minor, scale(w)))?;
        }
    }
    let throttles = [
        ("rbps", &b.throttle_read_bps_device),
        ("wbps", &b.throttle_write_bps_device),
        ("riops", &b.throttle_read_iops_device),
        ("wiops", &b.throttle_write_iops_device),
    ];
    for (key, devices) in throttles {
        for d in devices {
            // v1 removes a throttle with rate 0; v2 spells that "max".
            let rate = if d.rate == 0 {
                "max".to_string()
            } else {
                d.rate.to_string()
            };
            fs::write(
                dir,
                "io.max",
                &format!("{}:{} {key}={rate}", d.major, d.minor),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use jaula_spec::ThrottleDevice;

    #[test]
    fn memory_converts_swap() {
        let t = TempDir::new("v2mem");
        for f in ["memory.max", "memory.low", "memory.swap.max"] {
            t.file(f, "");
        }
        let m = Memory {
            limit: Some(32 << 20),
            swap: Some(48 << 20),
            reservation: Some(-1),
            ..Default::default()
        };
        memory(t.path(), &m).unwrap();
        assert_eq!(t.read("memory.max"), (32u64 << 20).to_string());
        assert_eq!(t.read("memory.swap.max"), (16u64 << 20).to_string());
        assert_eq!(t.read("memory.low"), "max");
    }

    #[test]
    fn v1_only_memory_knobs_fail_closed() {
        let t = TempDir::new("v2memv1");
        let m = Memory {
            kernel_tcp: Some(1 << 20),
            ..Default::default()
        };
        assert!(matches!(
            memory(t.path(), &m),
            Err(Error::Unsupported { .. })
        ));
        let m = Memory {
            swappiness: Some(0),
            ..Default::default()
        };
        assert!(matches!(
            memory(t.path(), &m),
            Err(Error::Unsupported { .. })
        ));
    }

    #[test]
    fn cpu_converts_shares_and_quota() {
        let t = TempDir::new("v2cpu");
        for f in ["cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle"] {
            t.file(f, "");
        }
        let c = Cpu {
            shares: Some(1024),
            quota: Some(25_000),
            period: Some(50_000),
            burst: Some(1000),
            ..Default::default()
        };
        cpu(t.path(), &c).unwrap();
        assert_eq!(t.read("cpu.weight"), "39");
        assert_eq!(t.read("cpu.max"), "25000 50000");
        assert_eq!(t.read("cpu.max.burst"), "1000");
        let rt = Cpu {
            realtime_runtime: Some(1),
            ..Default::default()
        };
        assert!(matches!(cpu(t.path(), &rt), Err(Error::Unsupported { .. })));
    }

    #[test]
    fn io_converts_weight_and_throttles() {
        let t = TempDir::new("v2io");
        t.file("io.weight", "");
        t.file("io.max", "");
        let b = BlockIo {
            weight: Some(500),
            throttle_write_iops_device: vec![ThrottleDevice {
                major: 254,
                minor: 0,
                rate: 0,
            }],
            ..Default::default()
        };
        block_io(t.path(), &b).unwrap();
        assert_eq!(t.read("io.weight"), "4950");
        assert_eq!(t.read("io.max"), "254:0 wiops=max");
    }
}
