//! Resource usage of a cgroup, in the JSON shape of runc's `events --stats` data, read from
//! v1 or v2 files. Controllers that are not available are left at their defaults: stats
//! are an observation, not a guarantee.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::apply::Target;
use crate::{convert, fs, Cgroup, Error};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Everything `events --stats` reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuStats {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Bytes. On v1, `swap` is memory+swap (memsw), and on v2 it is made to mean the same.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PidsStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlkioStats {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlkioEntry {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HugetlbStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

impl Cgroup {
    /// Reads the usage counters of every available controller.
    pub fn stats(&self) -> Result<Stats, Error> {
        let mut s = Stats::default();
        match self.controller("cpuacct", "cpu") {
            Some(Target::V1(d)) => s.cpu.usage = cpu_usage_v1(&d)?,
            Some(Target::V2(d)) => s.cpu = cpu_v2(&d)?,
            None => {
                // cpu.stat is a core v2 file: usage is there even without the cpu controller.
                if let Some(d) = self.unified_dir() {
                    s.cpu = cpu_v2(&d)?;
                }
            }
        }
        if let Some(d) = self.v1_dir("cpu") {
            s.cpu.throttling = throttling_v1(&d)?;
        }
        match self.controller("memory", "memory") {
            Some(Target::V1(d)) => s.memory = memory_v1(&d)?,
            Some(Target::V2(d)) => s.memory = memory_v2(&d)?,
            None => {}
        }
        if let Some(Target::V1(d) | Target::V2(d)) = self.controller("pids", "pids") {
            s.pids = pids(&d)?;
        }
        match self.controller("blkio", "io") {
            Some(Target::V1(d)) => s.blkio = blkio_v1(&d)?,
            Some(Target::V2(d)) => s.blkio = blkio_v2(&d)?,
            None => {}
        }
        if let Some(t) = self.controller("hugetlb", "hugetlb") {
            s.hugetlb = hugetlb(&t, hugepage_sizes())?;
        }
        Ok(s)
    }
}

/// Page sizes the kernel supports, as cgroup files name them ("2MB", "1GB").
pub fn hugepage_sizes() -> &'static [String] {
    static SIZES: OnceLock<Vec<String>> = OnceLock::new();
    SIZES.get_or_init(|| {
        let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
            return Vec::new();
        };
        let mut sizes: Vec<u64> = entries
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("hugepages-")?
                    .strip_suffix("kB")?
                    .parse()
                    .ok()
            })
            .collect();
        sizes.sort_unstable();
        sizes.into_iter().map(convert::hugepage_size_name).collect()
    })
}

/// Every "key value" line of a flat keyed file.
pub fn parse_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn parse_list(path: &Path, text: &str) -> Result<Vec<u64>, Error> {
    text.split_whitespace()
        .map(|w| fs::parse_u64(path, w))
        .collect()
}

fn read_list_opt(path: PathBuf) -> Result<Vec<u64>, Error> {
    match fs::read_opt(&path)? {
        Some(t) => parse_list(&path, &t),
        None => Ok(Vec::new()),
    }
}

fn cpu_usage_v1(dir: &Path) -> Result<CpuUsage, Error> {
    let mut u = CpuUsage {
        total: fs::read_u64(&dir.join("cpuacct.usage"))?,
        percpu: read_list_opt(dir.join("cpuacct.usage_percpu"))?,
        percpu_kernel: read_list_opt(dir.join("cpuacct.usage_percpu_sys"))?,
        percpu_user: read_list_opt(dir.join("cpuacct.usage_percpu_user"))?,
        ..Default::default()
    };
    match (
        fs::read_u64_opt(&dir.join("cpuacct.usage_sys"))?,
        fs::read_u64_opt(&dir.join("cpuacct.usage_user"))?,
    ) {
        (Some(k), Some(user)) => (u.kernel, u.user) = (k, user),
        // Older kernels: only cpuacct.stat, in clock ticks.
        _ => {
            let stat = parse_keyed(&fs::read(&dir.join("cpuacct.stat"))?);
            let ns_per_tick = 1_000_000_000 / clock_ticks();
            u.kernel = stat.get("system").copied().unwrap_or(0) * ns_per_tick;
            u.user = stat.get("user").copied().unwrap_or(0) * ns_per_tick;
        }
    }
    Ok(u)
}

fn clock_ticks() -> u64 {
    use nix::unistd::{sysconf, SysconfVar};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

fn throttling_v1(dir: &Path) -> Result<Throttling, Error> {
    let stat = parse_keyed(&fs::read_opt(&dir.join("cpu.stat"))?.unwrap_or_default());
    Ok(Throttling {
        periods: stat.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: stat.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: stat.get("throttled_time").copied().unwrap_or(0),
    })
}

/// v2 `cpu.stat`, microseconds converted to nanoseconds.
pub fn parse_cpu_stat_v2(text: &str) -> CpuStats {
    let stat = parse_keyed(text);
    let us = |k: &str| stat.get(k).copied().unwrap_or(0) * 1000;
    CpuStats {
        usage: CpuUsage {
            total: us("usage_usec"),
            kernel: us("system_usec"),
            user: us("user_usec"),
            ..Default::default()
        },
        throttling: Throttling {
            periods: stat.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: stat.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: us("throttled_usec"),
        },
    }
}

fn cpu_v2(dir: &Path) -> Result<CpuStats, Error> {
    Ok(parse_cpu_stat_v2(&fs::read(&dir.join("cpu.stat"))?))
}

/// One v1 memory counter group (`memory.`, `memory.memsw.`, `memory.kmem.`, ...);
/// the default when the kernel lacks it.
fn memory_entry_v1(dir: &Path, prefix: &str) -> Result<MemoryEntry, Error> {
    let file = |name: &str| dir.join(format!("{prefix}{name}"));
    let Some(usage) = fs::read_u64_opt(&file("usage_in_bytes"))? else {
        return Ok(MemoryEntry::default());
    };
    Ok(MemoryEntry {
        usage,
        limit: fs::read_u64(&file("limit_in_bytes"))?,
        max: fs::read_u64(&file("max_usage_in_bytes"))?,
        failcnt: fs::read_u64(&file("failcnt"))?,
    })
}

fn memory_v1(dir: &Path) -> Result<MemoryStats, Error> {
    let raw = parse_keyed(&fs::read(&dir.join("memory.stat"))?);
    Ok(MemoryStats {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: memory_entry_v1(dir, "memory.")?,
        swap: memory_entry_v1(dir, "memory.memsw.")?,
        kernel: memory_entry_v1(dir, "memory.kmem.")?,
        kernel_tcp: memory_entry_v1(dir, "memory.kmem.tcp.")?,
        raw,
    })
}

fn memory_v2(dir: &Path) -> Result<MemoryStats, Error> {
    // Without the controller enabled in the parent, the leaf has no memory files.
    let Some(current) = fs::read_u64_opt(&dir.join("memory.current"))? else {
        return Ok(MemoryStats::default());
    };
    let raw = parse_keyed(&fs::read(&dir.join("memory.stat"))?);
    let events = parse_keyed(&fs::read(&dir.join("memory.events"))?);
    let usage = MemoryEntry {
        usage: current,
        limit: fs::read_u64(&dir.join("memory.max"))?,
        max: fs::read_u64_opt(&dir.join("memory.peak"))?.unwrap_or(0),
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    // v2 accounts swap alone; report memory+swap like v1 so consumers see one meaning.
    let swap = match fs::read_u64_opt(&dir.join("memory.swap.current"))? {
        Some(current) => MemoryEntry {
            usage: current.saturating_add(usage.usage),
            limit: fs::read_u64(&dir.join("memory.swap.max"))?.saturating_add(usage.limit),
            ..Default::default()
        },
        None => MemoryEntry::default(),
    };
    Ok(MemoryStats {
        cache: raw.get("file").copied().unwrap_or(0),
        usage,
        swap,
        raw,
        ..Default::default()
    })
}

fn pids(dir: &Path) -> Result<PidsStats, Error> {
    // v2 without the controller enabled in the parent: no files.
    let Some(current) = fs::read_u64_opt(&dir.join("pids.current"))? else {
        return Ok(PidsStats::default());
    };
    let limit = fs::read_u64(&dir.join("pids.max"))?;
    Ok(PidsStats {
        current,
        limit: if limit == u64::MAX { 0 } else { limit },
    })
}

/// A v1 blkio list file: "MAJ:MIN Op value" lines (plus a "Total value" line, skipped).
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// The CFQ files count when that scheduler is in use, then BFQ's, then the throttle layer's,
/// which sees all I/O.
fn blkio_v1(dir: &Path) -> Result<BlkioStats, Error> {
    for prefix in ["blkio.", "blkio.bfq.", "blkio.throttle."] {
        let bytes = fs::read_opt(&dir.join(format!("{prefix}io_service_bytes_recursive")))?;
        let ios = fs::read_opt(&dir.join(format!("{prefix}io_serviced_recursive")))?;
        let (Some(bytes), Some(ios)) = (bytes, ios) else {
            continue;
        };
        let stats = BlkioStats {
            io_service_bytes_recursive: parse_blkio_v1(&bytes),
            io_serviced_recursive: parse_blkio_v1(&ios),
        };
        if !stats.io_service_bytes_recursive.is_empty() || prefix == "blkio.throttle." {
            return Ok(stats);
        }
    }
    Ok(BlkioStats::default())
}

/// v2 `io.stat`: "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. ..." per device.
pub fn parse_io_stat(text: &str) -> BlkioStats {
    let mut s = BlkioStats::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut s.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.io_service_bytes_recursive, "Write"),
                "rios" => (&mut s.io_serviced_recursive, "Read"),
                "wios" => (&mut s.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    s
}

fn blkio_v2(dir: &Path) -> Result<BlkioStats, Error> {
    Ok(parse_io_stat(
        &fs::read_opt(&dir.join("io.stat"))?.unwrap_or_default(),
    ))
}

fn hugetlb(target: &Target, sizes: &[String]) -> Result<BTreeMap<String, HugetlbStats>, Error> {
    let mut out = BTreeMap::new();
    for size in sizes {
        let stats = match target {
            Target::V1(d) => {
                let f = |n: &str| d.join(format!("hugetlb.{size}.{n}"));
                let Some(usage) = fs::read_u64_opt(&f("usage_in_bytes"))? else {
                    continue;
                };
                HugetlbStats {
                    usage,
                    max: fs::read_u64(&f("max_usage_in_bytes"))?,
                    failcnt: fs::read_u64(&f("failcnt"))?,
                }
            }
            Target::V2(d) => {
                let f = |n: &str| d.join(format!("hugetlb.{size}.{n}"));
                let Some(usage) = fs::read_u64_opt(&f("current"))? else {
                    continue;
                };
                let events = parse_keyed(&fs::read_opt(&f("events"))?.unwrap_or_default());
                HugetlbStats {
                    usage,
                    max: 0,
                    failcnt: events.get("max").copied().unwrap_or(0),
                }
            }
        };
        out.insert(size.clone(), stats);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn blkio_v1_lines() {
        let text = "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\nTotal 12288\n";
        let e = parse_blkio_v1(text);
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[1],
            BlkioEntry {
                major: 254,
                minor: 0,
                op: "Write".into(),
                value: 8192
            }
        );
    }

    #[test]
    fn io_stat_lines() {
        let s = parse_io_stat("254:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(s.io_service_bytes_recursive.len(), 2);
        assert_eq!(s.io_service_bytes_recursive[0].value, 100);
        assert_eq!(s.io_serviced_recursive[1].op, "Write");
        assert_eq!(s.io_serviced_recursive[1].value, 2);
    }

    #[test]
    fn cpu_stat_v2_is_in_nanoseconds() {
        let c = parse_cpu_stat_v2("usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 3\nnr_throttled 1\nthrottled_usec 7\n");
        assert_eq!(c.usage.total, 10_000);
        assert_eq!(c.usage.user, 6_000);
        assert_eq!(c.usage.kernel, 4_000);
        assert_eq!(c.throttling.throttled_time, 7_000);
        assert_eq!(c.throttling.throttled_periods, 1);
    }

    #[test]
    fn memory_v2_reports_swap_like_v1() {
        let t = TempDir::new("statmem");
        t.file("memory.stat", "anon 100\nfile 200\n");
        t.file("memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n");
        t.file("memory.current", "300\n");
        t.file("memory.max", "1000\n");
        t.file("memory.swap.current", "50\n");
        t.file("memory.swap.max", "max\n");
        let m = memory_v2(t.path()).unwrap();
        assert_eq!(m.cache, 200);
        assert_eq!(
            m.usage,
            MemoryEntry {
                limit: 1000,
                usage: 300,
                max: 0,
                failcnt: 5
            }
        );
        assert_eq!(m.swap.usage, 350);
        assert_eq!(m.swap.limit, u64::MAX);
        assert_eq!(m.raw["anon"], 100);
    }

    #[test]
    fn memory_v1_reads_every_group() {
        let t = TempDir::new("statmemv1");
        t.file("memory.stat", "cache 4096\nrss 8192\n");
        for (p, base) in [("memory.", 10), ("memory.memsw.", 20)] {
            t.file(&format!("{p}usage_in_bytes"), &format!("{base}\n"));
            t.file(&format!("{p}limit_in_bytes"), &format!("{}\n", base + 1));
            t.file(
                &format!("{p}max_usage_in_bytes"),
                &format!("{}\n", base + 2),
            );
            t.file(&format!("{p}failcnt"), &format!("{}\n", base + 3));
        }
        let m = memory_v1(t.path()).unwrap();
        assert_eq!(m.cache, 4096);
        assert_eq!(
            m.usage,
            MemoryEntry {
                usage: 10,
                limit: 11,
                max: 12,
                failcnt: 13
            }
        );
        assert_eq!(m.swap.failcnt, 23);
        assert_eq!(m.kernel, MemoryEntry::default());
    }

    #[test]
    fn json_has_runc_field_names() {
        let mut s = Stats::default();
        s.cpu.usage.total = 5;
        s.memory.kernel_tcp.limit = 1;
        s.pids.current = 2;
        s.blkio.io_service_bytes_recursive.push(BlkioEntry {
            major: 8,
            minor: 0,
            op: "Read".into(),
            value: 1,
        });
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["cpu"]["usage"]["total"], 5);
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
        assert!(v["cpu"]["throttling"].is_object());
        assert_eq!(v["memory"]["kernelTCP"]["limit"], 1);
        assert_eq!(v["memory"]["usage"]["failcnt"], 0);
        assert_eq!(v["pids"]["current"], 2);
        assert!(v["pids"].get("limit").is_none());
        assert_eq!(v["blkio"]["ioServiceBytesRecursive"][0]["op"], "Read");
        assert!(v["hugetlb"].is_object());
    }

    #[test]
    fn hugetlb_v1_and_v2_files() {
        let t = TempDir::new("stathuge");
        t.file("hugetlb.2MB.usage_in_bytes", "4194304\n");
        t.file("hugetlb.2MB.max_usage_in_bytes", "6291456\n");
        t.file("hugetlb.2MB.failcnt", "2\n");
        t.file("hugetlb.2MB.current", "2097152\n");
        t.file("hugetlb.2MB.events", "max 3\n");
        let sizes = ["2MB".to_string(), "1GB".to_string()];
        let v1 = hugetlb(&Target::V1(t.path().into()), &sizes).unwrap();
        assert_eq!(v1.len(), 1, "1GB has no files and is left out");
        assert_eq!(
            v1["2MB"],
            HugetlbStats {
                usage: 4 << 20,
                max: 6 << 20,
                failcnt: 2
            }
        );
        let v2 = hugetlb(&Target::V2(t.path().into()), &sizes).unwrap();
        assert_eq!(
            v2["2MB"],
            HugetlbStats {
                usage: 2 << 20,
                max: 0,
                failcnt: 3
            }
        );
    }

    #[test]
    fn pids_unlimited_is_zero() {
        let t = TempDir::new("statpids");
        t.file("pids.max", "max\n");
        t.file("pids.current", "3\n");
        assert_eq!(
            pids(t.path()).unwrap(),
            PidsStats {
                current: 3,
                limit: 0
            }
        );
    }
}
