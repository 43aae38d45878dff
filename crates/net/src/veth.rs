//! Veth mode: a host bridge, a veth pair into the server's namespace, addresses, routes, NAT.
//!
//! The bridge is shared by all servers and created on demand; teardown leaves it (another
//! server may be joining it at that moment). [`remove_bridge`] removes an unused one.
//! The server's end of the pair is created directly inside its namespace as `eth0`
//! (`IFLA_NET_NS_FD`), so no rename or move is needed and no name can clash on the host.

use std::net::IpAddr;
use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::cidr::IpCidr;
use crate::netlink::{LinkAddress, Netlink, NetlinkError, VethSpec};
use crate::nft::{self, NatHandle, NatTarget, NftError};
use crate::plan::{Assign, BridgeConfig, Masquerade, VethConfig};
use crate::ServerContext;

/// Name of the server's end inside its namespace.
const PEER_NAME: &str = "eth0";

/// Errors of veth mode.
#[derive(Debug, thiserror::Error)]
pub enum VethError {
    #[error("link name {0:?} must be 1 to 15 characters without '/', ':' or spaces")]
    LinkName(String),
    #[error("host link {0:?} already exists")]
    LinkExists(String),
    #[error("bridge {bridge:?} address {cidr} must be an {family} gateway with room for servers")]
    Gateway {
        bridge: String,
        cidr: IpCidr,
        family: &'static str,
    },
    #[error("bridge {bridge:?} has no {family} subnet to give the server an address from")]
    NoSubnet {
        bridge: String,
        family: &'static str,
    },
    #[error("address {addr} is not usable in the {family} subnet {subnet} of bridge {bridge:?}")]
    StaticAddress {
        addr: IpAddr,
        subnet: IpCidr,
        bridge: String,
        family: &'static str,
    },
    #[error("address {0} is already used by another server")]
    InUse(IpAddr),
    #[error("address {addr} is already configured on host device {device:?}")]
    OnHost { addr: IpAddr, device: String },
    #[error("no free address left in {0}")]
    PoolExhausted(IpCidr),
    #[error("in the host namespace")]
    Host(#[source] NetlinkError),
    #[error("in the server's namespace")]
    Server(#[source] NetlinkError),
    #[error(transparent)]
    Nat(#[from] NftError),
}

/// What veth mode created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VethHandle {
    /// The host end of the pair; deleting it deletes both ends.
    pub host_link: String,
    pub bridge: String,
    /// Whether this server's setup created the bridge (informational: it is shared).
    pub bridge_created: bool,
    /// The server's addresses inside its namespace.
    pub addresses: Vec<IpCidr>,
    pub nat: Option<NatHandle>,
}

fn valid_link_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
        && name != "."
        && name != ".."
}

fn family_name(v6: bool) -> &'static str {
    if v6 {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// Checks the bridge's gateway addresses: right family, and a subnet with host room.
fn check_gateways(bridge: &BridgeConfig) -> Result<(), VethError> {
    for (gw, v6) in [(bridge.ipv4, false), (bridge.ipv6, true)] {
        let Some(gw) = gw else { continue };
        let max = if v6 { 126 } else { 30 };
        if gw.addr().is_ipv6() != v6 || gw.prefix() > max || gw.addr().is_unspecified() {
            return Err(VethError::Gateway {
                bridge: bridge.name.clone(),
                cidr: gw,
                family: family_name(v6),
            });
        }
    }
    Ok(())
}

/// Picks the server's address of one family.
fn choose_address(
    assign: Assign,
    gateway: Option<IpCidr>,
    v6: bool,
    bridge: &str,
    taken: &[IpAddr],
) -> Result<Option<IpCidr>, VethError> {
    if assign == Assign::Off {
        return Ok(None);
    }
    let family = family_name(v6);
    let subnet = gateway.ok_or_else(|| VethError::NoSubnet {
        bridge: bridge.to_owned(),
        family,
    })?;
    let mut excluded = taken.to_vec();
    excluded.push(subnet.addr());
    let addr = match assign {
        Assign::Off => return Ok(None),
        Assign::Pool => subnet
            .lowest_free(&excluded)
            .ok_or(VethError::PoolExhausted(subnet))?,
        Assign::Static(addr) => {
            if taken.contains(&addr) {
                return Err(VethError::InUse(addr));
            }
            if addr == subnet.addr() || !subnet.is_host_address(addr) {
                return Err(VethError::StaticAddress {
                    addr,
                    subnet,
                    bridge: bridge.to_owned(),
                    family,
                });
            }
            addr
        }
    };
    Ok(Some(
        IpCidr::new(addr, subnet.prefix()).expect("prefix of the subnet fits"),
    ))
}

/// Everything decided before touching the system.
struct VethPlan {
    host_link: String,
    addresses: Vec<IpCidr>,
}

fn validate(
    cfg: &VethConfig,
    ctx: &ServerContext<'_>,
    nl: &mut Netlink,
) -> Result<VethPlan, VethError> {
    let host_link = cfg
        .host_link
        .clone()
        .unwrap_or_else(|| format!("jv{}", ctx.ctx_id));
    for name in [&host_link, &cfg.bridge.name] {
        if !valid_link_name(name) {
            return Err(VethError::LinkName(name.clone()));
        }
    }
    if nl
        .link_index(&host_link)
        .map_err(VethError::Host)?
        .is_some()
    {
        return Err(VethError::LinkExists(host_link));
    }
    check_gateways(&cfg.bridge)?;
    if !nft::valid_table(&cfg.nat.table) {
        return Err(NftError::TableName(cfg.nat.table.clone()).into());
    }
    let host_addrs = nl.addresses().map_err(VethError::Host)?;
    let mut taken: Vec<IpAddr> = ctx.in_use.to_vec();
    taken.extend(host_addrs.iter().map(|a| a.cidr.addr()));
    let mut addresses = Vec::new();
    for (assign, gw, v6) in [
        (cfg.ipv4, cfg.bridge.ipv4, false),
        (cfg.ipv6, cfg.bridge.ipv6, true),
    ] {
        if let Assign::Static(addr) = assign {
            if let Some(a) = host_addrs.iter().find(|a| a.cidr.addr() == addr) {
                return Err(VethError::OnHost {
                    addr,
                    device: nl.link_name(a.index).map_err(VethError::Host)?,
                });
            }
        }
        if let Some(cidr) = choose_address(assign, gw, v6, &cfg.bridge.name, &taken)? {
            addresses.push(cidr);
        }
    }
    Ok(VethPlan {
        host_link,
        addresses,
    })
}

/// Finds or creates the bridge, with its gateway addresses, up. Returns its index and
/// whether it was created; a bridge created here is deleted again if configuring it fails.
fn ensure_bridge(nl: &mut Netlink, bridge: &BridgeConfig) -> Result<(u32, bool), NetlinkError> {
    match nl.link_index(&bridge.name)? {
        Some(index) => {
            configure_bridge(nl, index, bridge)?;
            Ok((index, false))
        }
        None => {
            let index = nl.create_bridge(&bridge.name)?;
            if let Err(e) = configure_bridge(nl, index, bridge) {
                let _ = nl.del_link(index);
                return Err(e);
            }
            Ok((index, true))
        }
    }
}

/// Adds the gateway addresses the bridge lacks and brings it up.
fn configure_bridge(
    nl: &mut Netlink,
    index: u32,
    bridge: &BridgeConfig,
) -> Result<(), NetlinkError> {
    let present = nl.addresses()?;
    for gw in [bridge.ipv4, bridge.ipv6].into_iter().flatten() {
        let has = |a: &LinkAddress| a.index == index && a.cidr.addr() == gw.addr();
        if !present.iter().any(has) {
            nl.add_address(index, gw)?;
        }
    }
    nl.set_up(index)
}

/// Validates, then builds the network; on failure removes what it created.
pub(crate) fn setup(
    cfg: &VethConfig,
    ctx: &ServerContext<'_>,
    netns: BorrowedFd<'_>,
) -> Result<VethHandle, VethError> {
    let mut nl = Netlink::open().map_err(VethError::Host)?;
    let plan = validate(cfg, ctx, &mut nl)?;
    let (bridge_index, bridge_created) =
        ensure_bridge(&mut nl, &cfg.bridge).map_err(VethError::Host)?;
    let mut handle = VethHandle {
        host_link: String::new(),
        bridge: cfg.bridge.name.clone(),
        bridge_created,
        addresses: Vec::new(),
        nat: None,
    };
    match build(cfg, ctx, netns, &mut nl, &plan, bridge_index, &mut handle) {
        Ok(()) => Ok(handle),
        Err(e) => {
            // Best effort: the original error matters more than a failed undo. A bridge
            // this call created goes too, unless another server joined it meanwhile.
            let _ = teardown(&handle);
            if bridge_created {
                let _ = remove_bridge(&cfg.bridge.name);
            }
            Err(e)
        }
    }
}

fn build(
    cfg: &VethConfig,
    ctx: &ServerContext<'_>,
    netns: BorrowedFd<'_>,
    nl: &mut Netlink,
    plan: &VethPlan,
    bridge_index: u32,
    handle: &mut VethHandle,
) -> Result<(), VethError> {
    let host_index = nl
        .create_veth(&VethSpec {
            host: &plan.host_link,
            peer: PEER_NAME,
            master: bridge_index,
            peer_netns: netns,
        })
        .map_err(VethError::Host)?;
    handle.host_link = plan.host_link.clone();
    nl.set_up(host_index).map_err(VethError::Host)?;
    configure_inside(netns, &plan.addresses, &cfg.bridge).map_err(VethError::Server)?;
    handle.addresses = plan.addresses.clone();
    if cfg.nat.masquerade == Masquerade::On || !cfg.nat.ports.is_empty() {
        let target = NatTarget {
            server: ctx.name,
            bridge: &cfg.bridge.name,
            addresses: &plan.addresses,
        };
        // Recorded first: a partly applied script must be cleaned up too.
        handle.nat = Some(NatHandle {
            table: cfg.nat.table.clone(),
            tag: format!("jaula:{}", ctx.name),
        });
        handle.nat = Some(nft::apply(&target, &cfg.nat)?);
    }
    Ok(())
}

/// Inside the server's namespace: `lo` and `eth0` up, addresses, default routes.
fn configure_inside(
    netns: BorrowedFd<'_>,
    addresses: &[IpCidr],
    bridge: &BridgeConfig,
) -> Result<(), NetlinkError> {
    let mut nl = Netlink::open_in(netns)?;
    let lo = nl.require_link("lo")?;
    nl.set_up(lo)?;
    let eth = nl.require_link(PEER_NAME)?;
    // Up before addresses: IPv6 adds its prefix route, and gateways become reachable,
    // only on an up link.
    nl.set_up(eth)?;
    for cidr in addresses {
        nl.add_address(eth, *cidr)?;
    }
    for cidr in addresses {
        let gateway = if cidr.addr().is_ipv4() {
            bridge.ipv4
        } else {
            bridge.ipv6
        };
        if let Some(gw) = gateway {
            nl.add_default_route(gw.addr())?;
        }
    }
    Ok(())
}

/// Brings `lo` up in `netns` (mode `none`).
pub(crate) fn loopback_up(netns: BorrowedFd<'_>) -> Result<(), NetlinkError> {
    let mut nl = Netlink::open_in(netns)?;
    let lo = nl.require_link("lo")?;
    nl.set_up(lo)
}

/// Removes the NAT rules and the veth pair; returns every failure.
pub(crate) fn teardown(handle: &VethHandle) -> Vec<VethError> {
    let mut errors = Vec::new();
    if let Some(nat) = &handle.nat {
        if let Err(e) = nft::remove(nat) {
            errors.push(e.into());
        }
    }
    if !handle.host_link.is_empty() {
        if let Err(e) = delete_link(&handle.host_link) {
            errors.push(VethError::Host(e));
        }
    }
    errors
}

fn delete_link(name: &str) -> Result<(), NetlinkError> {
    let mut nl = Netlink::open()?;
    // Gone already when the server's namespace died before us.
    let Some(index) = nl.link_index(name)? else {
        return Ok(());
    };
    match nl.del_link(index) {
        Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(()),
        other => other,
    }
}

/// Deletes bridge `name` if it exists and no link is attached to it.
/// Returns whether it was deleted.
pub fn remove_bridge(name: &str) -> Result<bool, NetlinkError> {
    let mut nl = Netlink::open()?;
    let Some(index) = nl.link_index(name)? else {
        return Ok(false);
    };
    if nl.port_count(index)? > 0 {
        return Ok(false);
    }
    nl.del_link(index)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn gw4() -> Option<IpCidr> {
        Some("10.88.0.1/16".parse().unwrap())
    }

    #[test]
    fn pool_skips_gateway_and_taken() {
        let c = choose_address(Assign::Pool, gw4(), false, "jaula0", &[ip("10.88.0.2")]).unwrap();
        assert_eq!(c.unwrap().to_string(), "10.88.0.3/16");
        let gw6 = Some("fd88::1/64".parse().unwrap());
        let c = choose_address(Assign::Pool, gw6, true, "jaula0", &[]).unwrap();
        assert_eq!(c.unwrap().to_string(), "fd88::2/64");
        assert!(choose_address(Assign::Off, gw4(), false, "jaula0", &[])
            .unwrap()
            .is_none());
    }

    #[test]
    fn static_addresses_are_checked() {
        let ok = choose_address(Assign::Static(ip("10.88.3.4")), gw4(), false, "b", &[]).unwrap();
        assert_eq!(ok.unwrap().to_string(), "10.88.3.4/16");
        for bad in ["10.89.0.5", "10.88.0.1", "10.88.0.0", "10.88.255.255"] {
            let e = choose_address(Assign::Static(ip(bad)), gw4(), false, "b", &[]).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        let e = choose_address(
            Assign::Static(ip("10.88.0.9")),
            gw4(),
            false,
            "b",
            &[ip("10.88.0.9")],
        );
        assert!(matches!(e, Err(VethError::InUse(_))));
        let e = choose_address(Assign::Pool, None, true, "b", &[]);
        assert!(matches!(e, Err(VethError::NoSubnet { .. })));
    }

    #[test]
    fn gateways_must_match_their_family() {
        let mut b = BridgeConfig::default();
        assert!(check_gateways(&b).is_ok());
        b.ipv4 = Some("fd88::1/64".parse().unwrap());
        assert!(check_gateways(&b).is_err());
        b.ipv4 = Some("10.0.0.1/31".parse().unwrap());
        assert!(check_gateways(&b).is_err());
    }

    #[test]
    fn link_names_fit_the_kernel() {
        assert!(valid_link_name("jv4294967295"));
        assert!(!valid_link_name("a-very-long-name-x"));
        assert!(!valid_link_name("a/b"));
        assert!(!valid_link_name(""));
    }
}
