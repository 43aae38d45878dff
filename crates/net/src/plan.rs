//! What a server's network should look like: the modes, their settings, published ports.
//!
//! These types are plain serde data, so a server definition (TOML) can embed them. They
//! are checked against the host by [`crate::setup`] before anything is created.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cidr::IpCidr;

/// A server's network mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode")]
pub enum NetMode {
    /// The host's network, unrestricted.
    Host,
    /// A new network namespace with only `lo`.
    None,
    /// chbind: the host's network stack, restricted to the server's own addresses.
    Isolated(IsolatedConfig),
    /// A network namespace of its own, on a host bridge through a veth pair.
    Veth(VethConfig),
}

/// Settings of isolated mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolatedConfig {
    /// The server's addresses; the first of each family is its default. A prefix length
    /// is used when the address is added to the host device (default: a single host).
    pub addresses: Vec<IpCidr>,
    /// The host device to add the addresses to. Default: the device the kernel routes each
    /// address through (`lo` for 127.0.0.0/8).
    #[serde(default)]
    pub device: Option<String>,
}

/// How a veth-mode server gets an address of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Assign {
    /// No address of this family.
    Off,
    /// The lowest free address of the bridge subnet.
    #[default]
    Pool,
    /// This address, which must lie in the bridge subnet.
    Static(IpAddr),
}

/// The host bridge veth-mode servers share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeConfig {
    pub name: String,
    /// Gateway address and subnet of IPv4 (the bridge's own address).
    pub ipv4: Option<IpCidr>,
    /// Gateway address and subnet of IPv6.
    pub ipv6: Option<IpCidr>,
}

impl Default for BridgeConfig {
    fn default() -> BridgeConfig {
        BridgeConfig {
            name: "jaula0".to_owned(),
            ipv4: Some(IpCidr::new(IpAddr::from([10, 88, 0, 1]), 16).expect("valid prefix")),
            ipv6: Some(
                IpCidr::new(IpAddr::from([0xfd88, 0, 0, 0, 0, 0, 0, 1]), 64).expect("valid prefix"),
            ),
        }
    }
}

/// Whether traffic from the server to the outside is masqueraded behind the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Masquerade {
    #[default]
    Off,
    On,
}

/// NAT and published ports of a veth-mode server (nftables).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatConfig {
    #[serde(default)]
    pub masquerade: Masquerade,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// The nftables table (family `inet`) that holds jaula's rules.
    #[serde(default = "default_table")]
    pub table: String,
}

fn default_table() -> String {
    "jaula".to_owned()
}

impl Default for NatConfig {
    fn default() -> NatConfig {
        NatConfig {
            masquerade: Masquerade::Off,
            ports: Vec::new(),
            table: default_table(),
        }
    }
}

/// Settings of veth mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VethConfig {
    #[serde(default)]
    pub bridge: BridgeConfig,
    #[serde(default)]
    pub ipv4: Assign,
    #[serde(default)]
    pub ipv6: Assign,
    /// Name of the host end; default `jv<context id>`.
    #[serde(default)]
    pub host_link: Option<String>,
    #[serde(default)]
    pub nat: NatConfig,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// `HOSTPORT:PORT[/tcp|udp]`: traffic to the host's `HOSTPORT` goes to the server's `PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortMapping {
    pub host_port: u16,
    pub port: u16,
    pub proto: Proto,
}

/// A published-port text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("published port {0:?} is not HOSTPORT:PORT[/tcp|udp] with ports from 1 to 65535")]
pub struct PortMappingError(pub String);

impl FromStr for PortMapping {
    type Err = PortMappingError;

    fn from_str(text: &str) -> Result<PortMapping, PortMappingError> {
        let bad = || PortMappingError(text.to_owned());
        let (ports, proto) = match text.split_once('/') {
            Some((p, "tcp")) => (p, Proto::Tcp),
            Some((p, "udp")) => (p, Proto::Udp),
            Some(_) => return Err(bad()),
            None => (text, Proto::Tcp),
        };
        let (host, port) = ports.split_once(':').ok_or_else(bad)?;
        let parse = |s: &str| s.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad);
        Ok(PortMapping {
            host_port: parse(host)?,
            port: parse(port)?,
            proto,
        })
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.host_port, self.port, self.proto)
    }
}

impl TryFrom<String> for PortMapping {
    type Error = PortMappingError;
    fn try_from(s: String) -> Result<PortMapping, PortMappingError> {
        s.parse()
    }
}

impl From<PortMapping> for String {
    fn from(p: PortMapping) -> String {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_mappings_parse() {
        let p: PortMapping = "8080:80".parse().unwrap();
        assert_eq!((p.host_port, p.port, p.proto), (8080, 80, Proto::Tcp));
        let p: PortMapping = "5353:53/udp".parse().unwrap();
        assert_eq!(p.proto, Proto::Udp);
        assert_eq!(p.to_string(), "5353:53/udp");
        for bad in ["80", "0:80", "80:70000", "80:80/sctp", "a:b", ":80"] {
            let e = bad.parse::<PortMapping>().unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn modes_round_trip_through_json() {
        let modes = [
            NetMode::Host,
            NetMode::None,
            NetMode::Isolated(IsolatedConfig {
                addresses: vec!["127.0.77.1".parse().unwrap()],
                device: None,
            }),
            NetMode::Veth(VethConfig {
                ipv4: Assign::Static("10.88.0.9".parse().unwrap()),
                nat: NatConfig {
                    masquerade: Masquerade::On,
                    ports: vec!["8080:80".parse().unwrap()],
                    ..Default::default()
                },
                ..Default::default()
            }),
        ];
        for m in modes {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<NetMode>(&json).unwrap(), m, "{json}");
        }
    }

    #[test]
    fn veth_defaults_are_the_documented_ones() {
        let v: VethConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(v.bridge.name, "jaula0");
        assert_eq!(v.bridge.ipv4.unwrap().to_string(), "10.88.0.1/16");
        assert_eq!(v.bridge.ipv6.unwrap().to_string(), "fd88::1/64");
        assert_eq!(v.nat.table, "jaula");
        assert_eq!(v.ipv4, Assign::Pool);
    }
}
