//! `jaula-oci update`: new limits from a resources JSON file or from flags.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use jaula_spec::Resources;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A linux.resources JSON document; `-` reads stdin.
    #[arg(long, short = 'r')]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes (suffixes k, m, g accepted).
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

/// "512m" -> bytes; "-1" stays -1 (unlimited).
pub fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches('b');
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: i64 = num.parse().with_context(|| format!("invalid size {s:?}"))?;
    Ok(if n < 0 { n } else { n * mul })
}

fn from_flags(a: &Args, mut r: Resources) -> Result<Resources> {
    let mem = |v: &Option<String>| v.as_deref().map(parse_bytes).transpose();
    if a.memory.is_some() || a.memory_reservation.is_some() || a.memory_swap.is_some() {
        let m = r.memory.get_or_insert_with(Default::default);
        m.limit = mem(&a.memory)?.or(m.limit);
        m.reservation = mem(&a.memory_reservation)?.or(m.reservation);
        m.swap = mem(&a.memory_swap)?.or(m.swap);
    }
    if a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || a.cpu_share.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some()
    {
        let c = r.cpu.get_or_insert_with(Default::default);
        c.quota = a.cpu_quota.or(c.quota);
        c.period = a.cpu_period.or(c.period);
        c.shares = a.cpu_share.or(c.shares);
        c.cpus = a.cpuset_cpus.clone().or(c.cpus.take());
        c.mems = a.cpuset_mems.clone().or(c.mems.take());
    }
    if let Some(l) = a.pids_limit {
        r.pids = Some(jaula_spec::Pids { limit: l });
    }
    if let Some(w) = a.blkio_weight {
        r.block_io.get_or_insert_with(Default::default).weight = Some(w);
    }
    Ok(r)
}

pub fn run(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    let base = match &a.resources {
        None => Resources::default(),
        Some(p) => {
            let mut data = Vec::new();
            if p.as_os_str() == "-" {
                std::io::stdin().read_to_end(&mut data)?;
            } else {
                data = std::fs::read(p).with_context(|| format!("read {}", p.display()))?;
            }
            serde_json::from_slice(&data)
                .with_context(|| format!("parse resources from {}", p.display()))?
        }
    };
    let r = from_flags(&a, base)?;
    rt.update(&a.id, &r)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("lots").is_err());
    }
}
