//! IP addresses with a prefix length (`10.88.0.2/16`), and the address pool of a subnet.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Errors of parsing or building an [`IpCidr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not an IP address")]
    Address(String),
    #[error("prefix length {prefix:?} of {text:?} is not a number from 0 to {max}")]
    Prefix {
        text: String,
        prefix: String,
        max: u8,
    },
}

/// An address and its prefix length. Without `/N` the prefix is the full width (a host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpCidr {
    addr: IpAddr,
    prefix: u8,
}

impl IpCidr {
    /// `addr/prefix`; fails if the prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<IpCidr, CidrError> {
        let max = max_prefix(addr);
        if prefix > max {
            return Err(CidrError::Prefix {
                text: format!("{addr}/{prefix}"),
                prefix: prefix.to_string(),
                max,
            });
        }
        Ok(IpCidr { addr, prefix })
    }

    /// A single host: `/32` or `/128`.
    pub fn host(addr: IpAddr) -> IpCidr {
        IpCidr {
            addr,
            prefix: max_prefix(addr),
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The same address with another prefix length (clamped to the address width).
    pub fn with_prefix(&self, prefix: u8) -> IpCidr {
        IpCidr {
            addr: self.addr,
            prefix: prefix.min(max_prefix(self.addr)),
        }
    }

    /// Whether `ip` lies in this subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = mask(self.prefix, 32) as u32;
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = mask(self.prefix, 128);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }

    /// Whether `ip` lies in this subnet and is neither its network address nor (IPv4)
    /// its broadcast address: an address a host in the subnet may have.
    pub fn is_host_address(&self, ip: IpAddr) -> bool {
        if !self.contains(ip) {
            return false;
        }
        match ip {
            IpAddr::V4(a) => {
                let host = u32::from(a) & !(mask(self.prefix, 32) as u32);
                host != 0 && host != !(mask(self.prefix, 32) as u32)
            }
            IpAddr::V6(a) => u128::from(a) & !mask(self.prefix, 128) != 0,
        }
    }

    /// The lowest address of the subnet that is neither the network address, the IPv4
    /// broadcast address, nor in `taken`. Searches at most 65536 candidates.
    pub fn lowest_free(&self, taken: &[IpAddr]) -> Option<IpAddr> {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = mask(self.prefix, 32) as u32;
                let network = u32::from(a) & mask;
                let broadcast = network | !mask;
                (network.checked_add(1)?..broadcast)
                    .take(1 << 16)
                    .map(|n| IpAddr::V4(Ipv4Addr::from(n)))
                    .find(|ip| !taken.contains(ip))
            }
            IpAddr::V6(a) => {
                let mask = mask(self.prefix, 128);
                let network = u128::from(a) & mask;
                let last = network | !mask;
                (network.checked_add(1)?..=last)
                    .take(1 << 16)
                    .map(|n| IpAddr::V6(Ipv6Addr::from(n)))
                    .find(|ip| !taken.contains(ip))
            }
        }
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// A mask of `prefix` leading one bits in a `width`-bit number.
fn mask(prefix: u8, width: u32) -> u128 {
    if prefix == 0 {
        0
    } else {
        (u128::MAX << (128 - u32::from(prefix))) >> (128 - width)
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpCidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<IpCidr, CidrError> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::Address(addr.to_owned()))?;
        let Some(prefix) = prefix else {
            return Ok(IpCidr::host(addr));
        };
        let max = max_prefix(addr);
        let bad = || CidrError::Prefix {
            text: text.to_owned(),
            prefix: prefix.to_owned(),
            max,
        };
        let n: u8 = prefix.parse().map_err(|_| bad())?;
        IpCidr::new(addr, n).map_err(|_| bad())
    }
}

impl TryFrom<String> for IpCidr {
    type Error = CidrError;
    fn try_from(s: String) -> Result<IpCidr, CidrError> {
        s.parse()
    }
}

impl From<IpCidr> for String {
    fn from(c: IpCidr) -> String {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_with_and_without_prefix() {
        let c: IpCidr = "10.88.0.1/16".parse().unwrap();
        assert_eq!((c.addr(), c.prefix()), (ip("10.88.0.1"), 16));
        assert_eq!("fd88::1".parse::<IpCidr>().unwrap().prefix(), 128);
        assert_eq!("127.0.77.1".parse::<IpCidr>().unwrap().prefix(), 32);
    }

    #[test]
    fn rejects_bad_text_naming_it() {
        let e = "10.0.0.1/33".parse::<IpCidr>().unwrap_err();
        assert!(e.to_string().contains("10.0.0.1/33"), "{e}");
        assert!(matches!(
            "10.0.0/8".parse::<IpCidr>(),
            Err(CidrError::Address(a)) if a == "10.0.0"
        ));
        assert!("fd00::/x".parse::<IpCidr>().is_err());
        assert!("fd00::/129".parse::<IpCidr>().is_err());
    }

    #[test]
    fn contains_respects_prefix_and_family() {
        let c: IpCidr = "10.88.0.1/16".parse().unwrap();
        assert!(c.contains(ip("10.88.255.254")));
        assert!(!c.contains(ip("10.89.0.1")));
        assert!(!c.contains(ip("fd88::1")));
        let all: IpCidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("1.2.3.4")));
        let v6: IpCidr = "fd88::1/64".parse().unwrap();
        assert!(v6.contains(ip("fd88::ffff")));
        assert!(!v6.contains(ip("fd88:0:0:1::1")));
    }

    #[test]
    fn host_addresses_exclude_network_and_broadcast() {
        let c: IpCidr = "10.88.0.1/16".parse().unwrap();
        assert!(c.is_host_address(ip("10.88.3.4")));
        assert!(!c.is_host_address(ip("10.88.0.0")));
        assert!(!c.is_host_address(ip("10.88.255.255")));
        assert!(!c.is_host_address(ip("10.89.0.1")));
        let v6: IpCidr = "fd88::1/64".parse().unwrap();
        assert!(!v6.is_host_address(ip("fd88::")));
        assert!(v6.is_host_address(ip("fd88::ffff:ffff:ffff:ffff")));
    }

    #[test]
    fn pool_skips_network_gateway_and_taken() {
        let c: IpCidr = "10.88.0.1/16".parse().unwrap();
        assert_eq!(c.lowest_free(&[ip("10.88.0.1")]), Some(ip("10.88.0.2")));
        assert_eq!(
            c.lowest_free(&[ip("10.88.0.1"), ip("10.88.0.2"), ip("10.88.0.4")]),
            Some(ip("10.88.0.3"))
        );
        let tiny: IpCidr = "192.168.5.1/30".parse().unwrap();
        assert_eq!(
            tiny.lowest_free(&[ip("192.168.5.1"), ip("192.168.5.2")]),
            None
        );
        let v6: IpCidr = "fd88::1/64".parse().unwrap();
        assert_eq!(v6.lowest_free(&[ip("fd88::1")]), Some(ip("fd88::2")));
    }

    #[test]
    fn serde_round_trips_as_text() {
        let c: IpCidr = "fd88::5/64".parse().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"fd88::5/64\"");
        assert_eq!(serde_json::from_str::<IpCidr>(&json).unwrap(), c);
        assert!(serde_json::from_str::<IpCidr>("\"nonsense\"").is_err());
    }
}
