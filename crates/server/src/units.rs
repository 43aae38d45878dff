//! Human units: parsing `512M` and `1.5` from the command line and `server.toml`, and
//! printing sizes and durations the way vserver-stat did (`163M`, `1.2G`, `2d03h14`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a size or CPU count was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("invalid size {0:?}: expected a number with an optional K, M, G or T suffix (512M)")]
    Size(String),
    #[error("invalid CPU count {0:?}: expected a positive number such as 1 or 1.5")]
    Cpus(String),
}

/// A byte count written with a binary suffix (`512M` = 512 MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || UnitError::Size(s.into());
        let t = s.trim();
        let t = t
            .strip_suffix("iB")
            .or_else(|| t.strip_suffix('B'))
            .unwrap_or(t);
        let (digits, shift) = match t.chars().last() {
            Some(c) if c.is_ascii_digit() => (t, 0),
            Some('k' | 'K') => (&t[..t.len() - 1], 10),
            Some('m' | 'M') => (&t[..t.len() - 1], 20),
            Some('g' | 'G') => (&t[..t.len() - 1], 30),
            Some('t' | 'T') => (&t[..t.len() - 1], 40),
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let v = n.checked_mul(1u64 << shift).ok_or_else(bad)?;
        if v == 0 {
            return Err(bad());
        }
        Ok(ByteSize(v))
    }
}

impl fmt::Display for ByteSize {
    /// The shortest exact spelling, so `server.toml` round-trips what the user typed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, suffix) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
            let unit = 1u64 << shift;
            if self.0.is_multiple_of(unit) {
                return write!(f, "{}{suffix}", self.0 / unit);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(0) => Err(serde::de::Error::custom("a size must be positive")),
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Str(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A CPU allowance in thousandths of a CPU (`1.5` = 1500), turned into a CFS quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpus(pub u32);

/// The CFS period every server uses: 100 ms, the kernel's default.
pub const CPU_PERIOD_US: u64 = 100_000;

impl Cpus {
    /// The CFS quota (µs per [`CPU_PERIOD_US`]) that grants this many CPUs.
    pub fn quota_us(self) -> i64 {
        i64::from(self.0) * CPU_PERIOD_US as i64 / 1000
    }
}

impl FromStr for Cpus {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || UnitError::Cpus(s.into());
        let (int, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
        if int.is_empty() && frac.is_empty() || frac.len() > 3 {
            return Err(bad());
        }
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || !all_digits(frac) {
            return Err(bad());
        }
        let whole: u32 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let milli: u32 = format!("{frac:0<3}").parse().map_err(|_| bad())?;
        let v = whole
            .checked_mul(1000)
            .and_then(|w| w.checked_add(milli))
            .ok_or_else(bad)?;
        // Below 1 ms per 100 ms period the kernel refuses the quota.
        if v < 10 {
            return Err(bad());
        }
        Ok(Cpus(v))
    }
}

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, m) = (self.0 / 1000, self.0 % 1000);
        if m == 0 {
            write!(f, "{w}")
        } else {
            let frac = format!("{m:03}");
            write!(f, "{w}.{}", frac.trim_end_matches('0'))
        }
    }
}

impl Serialize for Cpus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(f64::from(self.0) / 1000.0)
    }
}

impl<'de> Deserialize<'de> for Cpus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u32),
            Float(f64),
            Str(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Int(n) => n.to_string(),
            // Rounding to thousandths first makes 1.5 and "1.5" the same value.
            Raw::Float(f) => format!("{:.3}", f),
            Raw::Str(s) => s,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A size for a table cell: `0`, `512`, `12K`, `163M`, `1.2G` (one decimal below 10).
pub fn format_bytes(n: u64) -> String {
    if n < 1024 {
        return n.to_string();
    }
    let mut v = n as f64;
    let mut unit = "";
    for u in ["K", "M", "G", "T", "P"] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    // 9.96 would print as "10.0": switch to the integer form exactly where the decimal form
    // would gain a digit.
    if v < 9.95 {
        format!("{v:.1}{unit}")
    } else {
        format!("{}{unit}", v.round() as u64)
    }
}

/// A duration for a table cell, as vserver-stat printed them: `2d03h14` (days), `3h14m05`
/// (hours), `14m05s` (below an hour).
pub fn format_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h{m:02}")
    } else if h > 0 {
        format!("{h}h{m:02}m{s:02}")
    } else {
        format!("{m}m{s:02}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!("512M".parse(), Ok(ByteSize(512 << 20)));
        assert_eq!("1G".parse(), Ok(ByteSize(1 << 30)));
        assert_eq!("64k".parse(), Ok(ByteSize(64 << 10)));
        assert_eq!("2GiB".parse(), Ok(ByteSize(2 << 30)));
        assert_eq!("4096".parse(), Ok(ByteSize(4096)));
        for bad in ["", "M", "1.5G", "-1M", "0", "12X", "99999999999T"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_print_back_exactly() {
        assert_eq!(ByteSize(512 << 20).to_string(), "512M");
        assert_eq!(ByteSize(1536 << 20).to_string(), "1536M");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }

    #[test]
    fn cpus_parse_to_thousandths() {
        assert_eq!("1.5".parse(), Ok(Cpus(1500)));
        assert_eq!("2".parse(), Ok(Cpus(2000)));
        assert_eq!(".25".parse(), Ok(Cpus(250)));
        assert_eq!(Cpus(1500).quota_us(), 150_000);
        for bad in ["", ".", "0", "abc", "1.2345", "-1", "0.001"] {
            assert!(bad.parse::<Cpus>().is_err(), "{bad:?}");
        }
        assert_eq!(Cpus(1500).to_string(), "1.5");
        assert_eq!(Cpus(250).to_string(), "0.25");
    }

    #[test]
    fn cpus_deserialize_from_toml_numbers_and_strings() {
        #[derive(Deserialize)]
        struct T {
            c: Cpus,
        }
        assert_eq!(toml::from_str::<T>("c = 1.5").unwrap().c, Cpus(1500));
        assert_eq!(toml::from_str::<T>("c = 2").unwrap().c, Cpus(2000));
        assert_eq!(toml::from_str::<T>("c = \"0.5\"").unwrap().c, Cpus(500));
        assert!(toml::from_str::<T>("c = -1").is_err());
    }

    #[test]
    fn bytes_format_like_vserver_stat() {
        assert_eq!(format_bytes(0), "0");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(format_bytes(12 << 10), "12K");
        assert_eq!(format_bytes(163 << 20), "163M");
        assert_eq!(format_bytes((12 << 30) / 10), "1.2G");
        assert_eq!(format_bytes(1023 << 10), "1023K");
        assert_eq!(format_bytes((10 << 20) - 1), "10M");
    }

    #[test]
    fn durations_format_like_vserver_stat() {
        assert_eq!(format_duration(5), "0m05s");
        assert_eq!(format_duration(14 * 60 + 5), "14m05s");
        assert_eq!(format_duration(3 * 3600 + 14 * 60 + 5), "3h14m05");
        assert_eq!(
            format_duration(2 * 86400 + 3 * 3600 + 14 * 60 + 59),
            "2d03h14"
        );
    }
}
