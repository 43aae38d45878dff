//! A server's network, through `jaula_net`: the plan from `server.toml`, setup between the
//! runtime's create and start, and a teardown record (`run/net.json`) that any later
//! process can use.

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;

use jaula_net::{
    BridgeConfig, IpCidr, IsolatedConfig, Masquerade, NatConfig, NetHandle, PortMapping, Proto,
    ServerContext, VethConfig,
};

use super::{Manager, RunError};
use crate::config::{NetMode, NetworkConfig, Protocol};
use crate::home::Server;

const RECORD: &str = "net.json";

/// `jaula_net`'s description of the server's network.
pub fn plan(net: &NetworkConfig) -> Result<jaula_net::NetMode, RunError> {
    let cidrs = net
        .addresses
        .iter()
        .map(|c| IpCidr::new(c.addr, c.prefix))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RunError::Io {
            op: "invalid address in",
            path: "server.toml".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
    Ok(match net.effective_mode() {
        NetMode::Host => jaula_net::NetMode::Host,
        NetMode::None => jaula_net::NetMode::None,
        NetMode::Isolated => jaula_net::NetMode::Isolated(IsolatedConfig {
            addresses: cidrs,
            device: net.device.clone(),
        }),
        NetMode::Veth => jaula_net::NetMode::Veth(veth(net)),
    })
}

fn veth(net: &NetworkConfig) -> VethConfig {
    let first = |v4: bool| {
        net.addresses
            .iter()
            .find(|c| c.addr.is_ipv4() == v4)
            .map(|c| c.addr)
    };
    let assign = |a: Option<IpAddr>| a.map_or(jaula_net::Assign::Pool, jaula_net::Assign::Static);
    let mut bridge = BridgeConfig::default();
    if let Some(b) = &net.bridge {
        bridge.name = b.clone();
    }
    VethConfig {
        bridge,
        ipv4: assign(first(true)),
        ipv6: assign(first(false)),
        host_link: None,
        nat: NatConfig {
            masquerade: if net.masquerade {
                Masquerade::On
            } else {
                Masquerade::Off
            },
            ports: net
                .publish
                .iter()
                .map(|p| PortMapping {
                    host_port: p.host_port,
                    port: p.port,
                    proto: match p.protocol {
                        Protocol::Tcp => Proto::Tcp,
                        Protocol::Udp => Proto::Udp,
                    },
                })
                .collect(),
            ..NatConfig::default()
        },
    }
}

fn record_path(server: &Server) -> PathBuf {
    server.run_dir().join(RECORD)
}

/// Addresses held by the other servers' live networks.
pub fn addresses_in_use(m: &Manager, except: &str) -> Vec<(String, IpAddr)> {
    let Ok(servers) = m.home.servers() else {
        return Vec::new();
    };
    servers
        .iter()
        .filter(|s| s.name != except)
        .filter_map(|s| Some((s.name.clone(), read_record(s)?)))
        .flat_map(|(n, h)| h.addresses().into_iter().map(move |a| (n.clone(), a)))
        .collect()
}

fn read_record(server: &Server) -> Option<NetHandle> {
    let text = std::fs::read(record_path(server)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Refuses to start when a running server already holds one of our addresses.
pub fn check_conflicts(m: &Manager, server: &Server) -> Result<(), RunError> {
    let used = addresses_in_use(m, &server.name);
    for c in &server.config.network.addresses {
        if let Some((other, _)) = used.iter().find(|(_, a)| *a == c.addr) {
            return Err(RunError::AddressInUse {
                name: server.name.clone(),
                addr: c.addr,
                other: other.clone(),
            });
        }
    }
    Ok(())
}

/// Sets the network up for the created (not yet started) container whose init is `pid`,
/// and records the teardown handle.
pub fn setup(m: &Manager, server: &Server, pid: i32) -> Result<(), RunError> {
    let mode = plan(&server.config.network)?;
    let cgroup_dir = m
        .runtime
        .cgroup(&server.name)
        .map_err(RunError::runtime(&server.name))?
        .unified_dir();
    let ns_path = format!("/proc/{pid}/ns/net");
    let netns = std::fs::File::open(&ns_path).map_err(RunError::io("cannot open", &ns_path))?;
    let in_use: Vec<IpAddr> = addresses_in_use(m, &server.name)
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    let own_ns = crate::spec::has_own_netns(&server.config);
    let ctx = ServerContext {
        name: &server.name,
        ctx_id: server.config.context,
        cgroup_dir: cgroup_dir.as_deref(),
        netns: own_ns.then(|| netns.as_fd()),
        in_use: &in_use,
    };
    let handle = jaula_net::setup(&mode, &ctx)?;
    let path = record_path(server);
    let json = serde_json::to_vec(&handle).unwrap_or_default();
    let tmp = path.with_extension("json.tmp");
    let written = std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        // Without the record nobody could undo the setup later: undo it now.
        let _ = jaula_net::teardown(&handle);
        return Err(RunError::io("cannot write", &path)(e));
    }
    Ok(())
}

/// Tears down the recorded network, if any, and forgets it.
pub fn teardown_recorded(server: &Server) -> Result<(), RunError> {
    let path = record_path(server);
    let Some(handle) = read_record(server) else {
        let _ = std::fs::remove_file(&path);
        return Ok(());
    };
    let result = jaula_net::teardown(&handle);
    // The record goes even on failure: the objects that could not be removed are named
    // in the error, and retrying a half-failed teardown would fail the same way.
    let _ = std::fs::remove_file(&path);
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_map_to_jaula_net() {
        let mut n = NetworkConfig::default();
        assert!(matches!(plan(&n).unwrap(), jaula_net::NetMode::None));
        n.addresses = vec!["127.0.1.1".parse().unwrap()];
        match plan(&n).unwrap() {
            jaula_net::NetMode::Isolated(c) => {
                assert_eq!(c.addresses[0].to_string(), "127.0.1.1/32")
            }
            m => panic!("{m:?}"),
        }
        n.mode = Some(NetMode::Veth);
        n.addresses = vec!["10.88.0.5/16".parse().unwrap()];
        n.publish = vec!["8080:80".parse().unwrap()];
        match plan(&n).unwrap() {
            jaula_net::NetMode::Veth(v) => {
                assert_eq!(
                    v.ipv4,
                    jaula_net::Assign::Static("10.88.0.5".parse().unwrap())
                );
                assert_eq!(v.ipv6, jaula_net::Assign::Pool);
                assert_eq!(v.nat.ports[0].to_string(), "8080:80/tcp");
                assert_eq!(v.bridge.name, "jaula0");
            }
            m => panic!("{m:?}"),
        }
    }
}
