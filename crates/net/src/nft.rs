//! NAT and published ports of veth-mode servers, as nftables rules set through `nft`.
//!
//! jaula keeps its rules in one `inet` table (default `jaula`) with three NAT base chains.
//! Each rule carries the comment `jaula:<server>`, so a server's teardown deletes exactly
//! its own rules and nothing else. The `nft` binary (Debian package `nftables`) applies a
//! whole server's rules as one script, which nftables commits atomically.
//!
//! Published ports also work from the host itself: an `output` chain DNATs locally
//! generated traffic, and for connections to 127.0.0.1 the bridge gets `route_localnet`
//! and such traffic is masqueraded behind the bridge address on its way to the server.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::cidr::IpCidr;
use crate::plan::{Masquerade, NatConfig};

/// Errors of applying or removing rules.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nftables table name {0:?} must be 1 to 32 characters of A-Z a-z 0-9 _")]
    TableName(String),
    #[error("cannot run nft (package nftables) to {what}")]
    Spawn {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("nft failed to {what}: {stderr}")]
    Failed { what: &'static str, stderr: String },
    #[error("cannot parse the nft listing of table {table:?}")]
    Parse {
        table: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot set sysctl {path}")]
    Sysctl {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Rules of one server, for teardown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatHandle {
    pub table: String,
    /// The comment on every rule of this server.
    pub tag: String,
}

pub(crate) fn valid_table(name: &str) -> bool {
    (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What the rules are about.
pub(crate) struct NatTarget<'a> {
    pub server: &'a str,
    pub bridge: &'a str,
    pub addresses: &'a [IpCidr],
}

/// The nft script that creates the table and chains (idempotent) and adds the rules.
pub(crate) fn script(target: &NatTarget<'_>, cfg: &NatConfig) -> String {
    let t = &cfg.table;
    let tag = tag(target.server);
    let br = target.bridge;
    let mut s = format!(
        "add table inet {t}\n\
         add chain inet {t} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}\n\
         add chain inet {t} output {{ type nat hook output priority -100; policy accept; }}\n\
         add chain inet {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n"
    );
    for cidr in target.addresses {
        let (ipf, nfproto, to) = match cidr.addr() {
            IpAddr::V4(a) => ("ip", "ipv4", a.to_string()),
            IpAddr::V6(a) => ("ip6", "ipv6", format!("[{a}]")),
        };
        let addr = cidr.addr();
        if cfg.masquerade == Masquerade::On {
            s += &format!(
                "add rule inet {t} postrouting {ipf} saddr {addr} oifname != \"{br}\" masquerade comment \"{tag}\"\n"
            );
        }
        for p in &cfg.ports {
            for chain in ["prerouting", "output"] {
                s += &format!(
                    "add rule inet {t} {chain} meta nfproto {nfproto} fib daddr type local {proto} dport {hp} dnat {ipf} to {to}:{port} comment \"{tag}\"\n",
                    proto = p.proto,
                    hp = p.host_port,
                    port = p.port,
                );
            }
        }
        if !cfg.ports.is_empty() && addr.is_ipv4() {
            // Connections to 127.0.0.1:HOSTPORT keep their loopback source after DNAT;
            // the server could not answer it, so they leave behind the bridge address.
            s += &format!(
                "add rule inet {t} postrouting ip saddr 127.0.0.0/8 ip daddr {addr} oifname \"{br}\" masquerade comment \"{tag}\"\n"
            );
        }
    }
    s
}

fn tag(server: &str) -> String {
    format!("jaula:{server}")
}

fn run_nft(args: &[&str], stdin: Option<&str>, what: &'static str) -> Result<String, NftError> {
    let spawn = |source| NftError::Spawn { what, source };
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(spawn)?;
    }
    let out = child.wait_with_output().map_err(spawn)?;
    if !out.status.success() {
        return Err(NftError::Failed {
            what,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sysctl(path: &str) -> Result<(), NftError> {
    std::fs::write(path, "1").map_err(|source| NftError::Sysctl {
        path: path.to_owned(),
        source,
    })
}

/// Adds the server's NAT rules and the sysctls they need. Forwarding (needed for traffic
/// from outside the host) is switched on for IPv4 and left on at teardown: other servers
/// may rely on it. IPv6 forwarding is the administrator's choice (turning it on changes
/// how the host accepts router advertisements), so jaula does not touch it.
pub(crate) fn apply(target: &NatTarget<'_>, cfg: &NatConfig) -> Result<NatHandle, NftError> {
    if !valid_table(&cfg.table) {
        return Err(NftError::TableName(cfg.table.clone()));
    }
    sysctl("/proc/sys/net/ipv4/ip_forward")?;
    if !cfg.ports.is_empty() {
        sysctl(&format!(
            "/proc/sys/net/ipv4/conf/{}/route_localnet",
            target.bridge
        ))?;
    }
    run_nft(&["-f", "-"], Some(&script(target, cfg)), "add NAT rules")?;
    Ok(NatHandle {
        table: cfg.table.clone(),
        tag: tag(target.server),
    })
}

#[derive(Deserialize)]
struct Listing {
    nftables: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// The objects of an `nft -j` listing jaula cares about.
enum Item {
    Table(TableItem),
    Rule(RuleItem),
}

#[derive(Deserialize)]
struct TableItem {
    family: String,
    name: String,
}

#[derive(Deserialize)]
struct RuleItem {
    chain: String,
    handle: u64,
    #[serde(default)]
    comment: Option<String>,
}

/// Each listing entry is a one-key object (`{"rule": {...}}`); other kinds are skipped.
fn parse(table: &str, json: &str) -> Result<Vec<Item>, NftError> {
    let err = |source| NftError::Parse {
        table: table.to_owned(),
        source,
    };
    let listing: Listing = serde_json::from_str(json).map_err(err)?;
    let mut items = Vec::new();
    for entry in listing.nftables {
        for (kind, value) in entry {
            match kind.as_str() {
                "table" => items.push(Item::Table(serde_json::from_value(value).map_err(err)?)),
                "rule" => items.push(Item::Rule(serde_json::from_value(value).map_err(err)?)),
                _ => {}
            }
        }
    }
    Ok(items)
}

fn table_exists(table: &str) -> Result<bool, NftError> {
    let json = run_nft(&["-j", "list", "tables"], None, "list tables")?;
    Ok(parse(table, &json)?
        .iter()
        .any(|i| matches!(i, Item::Table(t) if t.family == "inet" && t.name == table)))
}

/// The deletion script for the rules tagged `tag` in a table listing.
fn delete_script(table: &str, tag: &str, items: &[Item]) -> String {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Rule(r) if r.comment.as_deref() == Some(tag) => Some(format!(
                "delete rule inet {table} {} handle {}\n",
                r.chain, r.handle
            )),
            _ => None,
        })
        .collect()
}

/// Deletes the server's rules; a missing table means there is nothing to delete.
pub(crate) fn remove(handle: &NatHandle) -> Result<(), NftError> {
    if !valid_table(&handle.table) {
        return Err(NftError::TableName(handle.table.clone()));
    }
    if !table_exists(&handle.table)? {
        return Ok(());
    }
    let json = run_nft(
        &["-j", "list", "table", "inet", &handle.table],
        None,
        "list NAT rules",
    )?;
    let script = delete_script(&handle.table, &handle.tag, &parse(&handle.table, &json)?);
    if script.is_empty() {
        return Ok(());
    }
    run_nft(&["-f", "-"], Some(&script), "delete NAT rules")?;
    Ok(())
}

/// Deletes a whole jaula nftables table (every server's rules). For an administrator's
/// cleanup and for tests; servers use their own handles.
pub fn delete_table(table: &str) -> Result<(), NftError> {
    if !valid_table(table) {
        return Err(NftError::TableName(table.to_owned()));
    }
    if table_exists(table)? {
        run_nft(&["delete", "table", "inet", table], None, "delete table")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_tags_every_rule() {
        let cfg = NatConfig {
            masquerade: Masquerade::On,
            ports: vec!["8080:80".parse().unwrap(), "5353:53/udp".parse().unwrap()],
            table: "jaula".into(),
        };
        let addrs = [
            "10.88.0.2/16".parse().unwrap(),
            "fd88::2/64".parse().unwrap(),
        ];
        let s = script(
            &NatTarget {
                server: "web",
                bridge: "jaula0",
                addresses: &addrs,
            },
            &cfg,
        );
        for line in s.lines().filter(|l| l.starts_with("add rule")) {
            assert!(line.ends_with("comment \"jaula:web\""), "{line}");
        }
        assert!(s.contains("tcp dport 8080 dnat ip to 10.88.0.2:80"), "{s}");
        assert!(s.contains("udp dport 5353 dnat ip6 to [fd88::2]:53"), "{s}");
        assert!(
            s.contains("ip saddr 10.88.0.2 oifname != \"jaula0\" masquerade"),
            "{s}"
        );
        assert!(s.contains("ip saddr 127.0.0.0/8 ip daddr 10.88.0.2"), "{s}");
    }

    #[test]
    fn delete_script_takes_only_the_servers_rules() {
        let json = r#"{"nftables":[{"metainfo":{"json_schema_version":1}},
            {"table":{"family":"inet","name":"jaula","handle":1}},
            {"chain":{"family":"inet","table":"jaula","name":"output","handle":2}},
            {"rule":{"family":"inet","table":"jaula","chain":"output","handle":5,"comment":"jaula:web","expr":[]}},
            {"rule":{"family":"inet","table":"jaula","chain":"output","handle":6,"comment":"jaula:web2","expr":[]}},
            {"rule":{"family":"inet","table":"jaula","chain":"postrouting","handle":7,"expr":[]}}]}"#;
        let items = parse("jaula", json).unwrap();
        assert_eq!(
            delete_script("jaula", "jaula:web", &items),
            "delete rule inet jaula output handle 5\n"
        );
    }

    #[test]
    fn table_names_are_restricted() {
        assert!(valid_table("jaula_test_1"));
        assert!(!valid_table("a b"));
        assert!(!valid_table(""));
    }
}
