//! Unit conversions between the OCI (cgroup v1 flavoured) values and cgroup v2 files, with
//! the same formulas as runc so that a spec means the same thing under either runtime.

use crate::Error;

/// `cpu.shares` (2..=262144) to `cpu.weight` (1..=10000). 0 means "not set".
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// `blkio.weight` (10..=1000) to `io.weight` (1..=10000). 0 means "not set".
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// The value for `memory.swap.max` from OCI `swap` (memory+swap, as in v1) and `limit`.
/// `None`: leave the file alone. `Some(-1)`: "max".
pub fn swap_to_v2(swap: Option<i64>, limit: Option<i64>) -> Result<Option<i64>, Error> {
    let invalid = |reason: &str| Error::Invalid {
        resource: "linux.resources.memory.swap".into(),
        reason: reason.into(),
    };
    let limit = limit.unwrap_or(0);
    let swap = swap.unwrap_or(0);
    // v1 compatibility: an unlimited memory with unset swap means "both unlimited".
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    match swap {
        0 => return Ok(None),
        -1 => return Ok(Some(-1)),
        s if s < 0 => return Err(invalid(&format!("{s} is negative"))),
        _ => {}
    }
    if limit == 0 || limit == -1 {
        return Err(invalid("a swap limit needs a memory limit"));
    }
    if limit < 0 {
        return Err(invalid(&format!("memory limit {limit} is negative")));
    }
    if swap < limit {
        return Err(invalid(&format!(
            "memory+swap {swap} is below the memory limit {limit}"
        )));
    }
    Ok(Some(swap - limit))
}

/// A byte limit as v2 writes it: -1 (or any negative) is "max".
pub fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// `cpu.max` from quota and period. `None` when neither is set.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    if quota.unwrap_or(0) == 0 && period.unwrap_or(0) == 0 {
        return None;
    }
    let quota = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".into(),
    };
    let period = period.filter(|p| *p != 0).unwrap_or(100_000);
    Some(format!("{quota} {period}"))
}

/// `pids.max` from the OCI limit. 0 is "not set" (as in runc); negative is "max".
pub fn pids_max(limit: i64) -> Option<String> {
    match limit {
        0 => None,
        l if l < 0 => Some("max".into()),
        l => Some(l.to_string()),
    }
}

/// A hugetlb directory size ("hugepages-2048kB") to the name cgroup files use ("2MB").
pub fn hugepage_size_name(kb: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    let mut size = kb;
    let mut unit = 0;
    // A whole number of the next unit: the low ten bits are clear.
    while size >= 1024 && size.trailing_zeros() >= 10 && unit + 1 < UNITS.len() {
        size /= 1024;
        unit += 1;
    }
    format!("{size}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_matches_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
    }

    #[test]
    fn blkio_weight_to_io_weight_matches_runc() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_is_memory_plus_swap_minus_memory() {
        let m = 64 << 20;
        assert_eq!(swap_to_v2(Some(2 * m), Some(m)).unwrap(), Some(m));
        assert_eq!(swap_to_v2(Some(m), Some(m)).unwrap(), Some(0));
        assert_eq!(swap_to_v2(Some(-1), Some(m)).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(None, Some(m)).unwrap(), None);
        assert_eq!(swap_to_v2(None, Some(-1)).unwrap(), Some(-1));
        assert!(swap_to_v2(Some(m), None).is_err());
        assert!(swap_to_v2(Some(m), Some(2 * m)).is_err());
        assert!(swap_to_v2(Some(-5), Some(m)).is_err());
    }

    #[test]
    fn cpu_max_defaults_period_and_unlimited_quota() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(cpu_max(Some(50_000), None).unwrap(), "50000 100000");
        assert_eq!(cpu_max(Some(-1), Some(200_000)).unwrap(), "max 200000");
        assert_eq!(cpu_max(Some(20_000), Some(50_000)).unwrap(), "20000 50000");
    }

    #[test]
    fn pids_and_limits() {
        assert_eq!(pids_max(0), None);
        assert_eq!(pids_max(-1).unwrap(), "max");
        assert_eq!(pids_max(32).unwrap(), "32");
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(4096), "4096");
    }

    #[test]
    fn hugepage_names() {
        assert_eq!(hugepage_size_name(2048), "2MB");
        assert_eq!(hugepage_size_name(1_048_576), "1GB");
        assert_eq!(hugepage_size_name(64), "64KB");
    }
}
