//! Networking of virtual servers: chbind-style isolation, veth networks, NAT.
//!
//! The server crate calls [`setup`] when a server starts and persists the returned
//! [`NetHandle`] (serde) in the server's state; a later, separate `jaula stop` process
//! passes it to [`teardown`]. No daemon is involved: everything set up here lives in the
//! kernel (addresses, links, attached eBPF programs, nftables rules) until torn down.
//!
//! Modes ([`NetMode`]):
//! - `host`: nothing to do.
//! - `none`: the runtime made a network namespace; only `lo` is brought up.
//! - `isolated`: the host's stack, restricted by eBPF `cgroup/sock_addr` programs attached
//!   to the server's cgroup v2 directory (see [`progs`] for the policy). These programs run
//!   at bind/connect/unconnected-sendmsg time only, never per packet of a connection.
//! - `veth`: a host bridge, a veth pair into the server's namespace, addresses from a pool,
//!   default routes, and optional NAT/published ports through the `nft` binary.
//!
//! Every setup first validates the plan against the host (addresses in use, devices,
//! CIDRs), then records each created object in the handle as it goes; if a step fails,
//! the objects recorded so far are removed before the error is returned.

mod asm;
pub mod cidr;
mod isolated;
pub mod netlink;
mod nft;
pub mod plan;
pub mod progs;
mod veth;

use std::net::IpAddr;
use std::os::fd::BorrowedFd;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::asm::AsmError;
pub use crate::cidr::{CidrError, IpCidr};
pub use crate::isolated::{AddedAddress, AttachedProg, Hook, IsolatedError, IsolatedHandle};
pub use crate::netlink::NetlinkError;
pub use crate::nft::{delete_table, NatHandle, NftError};
pub use crate::plan::{
    Assign, BridgeConfig, IsolatedConfig, Masquerade, NatConfig, NetMode, PortMapping, Proto,
    VethConfig,
};
pub use crate::veth::{remove_bridge, VethError, VethHandle};

/// Errors of [`setup`] and [`teardown`].
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("server name {0:?} must be 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    ServerName(String),
    #[error("network mode {mode} of server {server:?} needs {what}")]
    MissingContext {
        server: String,
        mode: &'static str,
        what: &'static str,
    },
    #[error("network namespace of server {server:?}")]
    Netns {
        server: String,
        #[source]
        source: NetlinkError,
    },
    #[error("isolated network of server {server:?}")]
    Isolated {
        server: String,
        #[source]
        source: IsolatedError,
    },
    #[error("veth network of server {server:?}")]
    Veth {
        server: String,
        #[source]
        source: VethError,
    },
    /// Teardown continued past failures; this is the first of `count`.
    #[error("tearing down the network of server {server:?} failed {count} time(s); first failure")]
    Teardown {
        server: String,
        count: usize,
        #[source]
        first: Box<NetError>,
    },
}

/// What the runtime knows about the server when its network is set up.
#[derive(Debug, Clone, Copy)]
pub struct ServerContext<'a> {
    /// Server name; tags nftables rules, so it is restricted to `[A-Za-z0-9._-]{1,64}`.
    pub name: &'a str,
    /// Numeric context id; names the veth host end (`jv<id>`).
    pub ctx_id: u32,
    /// The server's cgroup v2 directory (isolated mode).
    pub cgroup_dir: Option<&'a Path>,
    /// The server's network namespace (veth and none modes).
    pub netns: Option<BorrowedFd<'a>>,
    /// Addresses other servers use (from their persisted handles): never reused.
    pub in_use: &'a [IpAddr],
}

/// Everything [`setup`] created, for [`teardown`]. Persist it as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetHandle {
    pub server: String,
    pub state: HandleState,
}

/// The per-mode part of a [`NetHandle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode")]
pub enum HandleState {
    Host,
    None,
    Isolated(IsolatedHandle),
    Veth(VethHandle),
}

impl NetHandle {
    /// The addresses this server holds; other servers must not be given them.
    pub fn addresses(&self) -> Vec<IpAddr> {
        match &self.state {
            HandleState::Host | HandleState::None => Vec::new(),
            HandleState::Isolated(h) => h.addresses.iter().map(|c| c.addr()).collect(),
            HandleState::Veth(h) => h.addresses.iter().map(|c| c.addr()).collect(),
        }
    }
}

fn valid_server_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Sets up the network of one server. On failure nothing it created is left behind.
pub fn setup(mode: &NetMode, ctx: &ServerContext<'_>) -> Result<NetHandle, NetError> {
    if !valid_server_name(ctx.name) {
        return Err(NetError::ServerName(ctx.name.to_owned()));
    }
    let server = ctx.name.to_owned();
    let missing = |mode, what| NetError::MissingContext {
        server: server.clone(),
        mode,
        what,
    };
    let state = match mode {
        NetMode::Host => HandleState::Host,
        NetMode::None => {
            let netns = ctx
                .netns
                .ok_or_else(|| missing("none", "a network namespace"))?;
            veth::loopback_up(netns).map_err(|source| NetError::Netns {
                server: server.clone(),
                source,
            })?;
            HandleState::None
        }
        NetMode::Isolated(cfg) => {
            let cgroup = ctx
                .cgroup_dir
                .ok_or_else(|| missing("isolated", "a cgroup v2 directory"))?;
            let handle =
                isolated::setup(cfg, ctx, cgroup).map_err(|source| NetError::Isolated {
                    server: server.clone(),
                    source,
                })?;
            HandleState::Isolated(handle)
        }
        NetMode::Veth(cfg) => {
            let netns = ctx
                .netns
                .ok_or_else(|| missing("veth", "a network namespace"))?;
            let handle = veth::setup(cfg, ctx, netns).map_err(|source| NetError::Veth {
                server: server.clone(),
                source,
            })?;
            HandleState::Veth(handle)
        }
    };
    Ok(NetHandle { server, state })
}

/// Removes what [`setup`] created. Objects already gone are fine (a deleted cgroup drops
/// its programs, a dead namespace takes its veth pair along); every other failure is
/// reported after the remaining objects have been tried.
pub fn teardown(handle: &NetHandle) -> Result<(), NetError> {
    let server = handle.server.clone();
    let errors: Vec<NetError> = match &handle.state {
        HandleState::Host | HandleState::None => Vec::new(),
        HandleState::Isolated(h) => isolated::teardown(h)
            .into_iter()
            .map(|source| NetError::Isolated {
                server: server.clone(),
                source,
            })
            .collect(),
        HandleState::Veth(h) => veth::teardown(h)
            .into_iter()
            .map(|source| NetError::Veth {
                server: server.clone(),
                source,
            })
            .collect(),
    };
    let count = errors.len();
    match errors.into_iter().next() {
        None => Ok(()),
        Some(first) => Err(NetError::Teardown {
            server,
            count,
            first: Box::new(first),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_restricted() {
        assert!(valid_server_name("web-1.example_a"));
        for bad in ["", "a b", "x\"y", "ä", &"n".repeat(65)] {
            assert!(!valid_server_name(bad), "{bad}");
        }
    }

    #[test]
    fn setup_refuses_a_bad_name_before_anything_else() {
        let ctx = ServerContext {
            name: "bad name",
            ctx_id: 1,
            cgroup_dir: None,
            netns: None,
            in_use: &[],
        };
        assert!(
            matches!(setup(&NetMode::Host, &ctx), Err(NetError::ServerName(n)) if n == "bad name")
        );
    }

    #[test]
    fn modes_without_their_context_are_refused() {
        let ctx = ServerContext {
            name: "web",
            ctx_id: 1,
            cgroup_dir: None,
            netns: None,
            in_use: &[],
        };
        let iso = NetMode::Isolated(IsolatedConfig {
            addresses: vec!["127.0.77.1".parse().unwrap()],
            device: None,
        });
        for mode in [NetMode::None, iso, NetMode::Veth(VethConfig::default())] {
            assert!(matches!(
                setup(&mode, &ctx),
                Err(NetError::MissingContext { .. })
            ));
        }
    }

    #[test]
    fn handle_round_trips_and_lists_addresses() {
        let h = NetHandle {
            server: "web".into(),
            state: HandleState::Veth(VethHandle {
                host_link: "jv7".into(),
                bridge: "jaula0".into(),
                bridge_created: true,
                addresses: vec!["10.88.0.2/16".parse().unwrap()],
                nat: None,
            }),
        };
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<NetHandle>(&json).unwrap(), h);
        assert_eq!(h.addresses(), vec!["10.88.0.2".parse::<IpAddr>().unwrap()]);
    }
}
