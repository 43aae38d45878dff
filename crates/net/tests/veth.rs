//! Veth and none modes end to end, inside a private "host" namespace made by the test:
//! two servers on a bridge reach each other and the bridge, a published port answers
//! from the host (also on 127.0.0.1), and teardown removes links and rules.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::time::Duration;

use jaula_net::netlink::Netlink;
use jaula_net::{
    delete_table, remove_bridge, setup, teardown, Assign, BridgeConfig, HandleState, Masquerade,
    NatConfig, NetHandle, NetMode, ServerContext, VethConfig,
};

const TABLE: &str = "jaula_test";

fn config(ports: &[&str]) -> VethConfig {
    VethConfig {
        bridge: BridgeConfig {
            name: "jtb0".into(),
            ipv4: Some("10.99.0.1/24".parse().unwrap()),
            ipv6: Some("fd99::1/64".parse().unwrap()),
        },
        ipv4: Assign::Pool,
        ipv6: Assign::Pool,
        host_link: None,
        nat: NatConfig {
            masquerade: Masquerade::On,
            ports: ports.iter().map(|p| p.parse().unwrap()).collect(),
            table: TABLE.into(),
        },
    }
}

fn ctx<'a>(
    name: &'a str,
    id: u32,
    netns: std::os::fd::BorrowedFd<'a>,
    in_use: &'a [IpAddr],
) -> ServerContext<'a> {
    ServerContext {
        name,
        ctx_id: id,
        cgroup_dir: None,
        netns: Some(netns),
        in_use,
    }
}

/// Connects to `to`, reads the answer.
fn fetch(to: (IpAddr, u16)) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&to.into(), Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    out
}

/// Accepts one connection, answers with `reply`, returns the peer address.
fn accept_reply(l: &TcpListener, reply: &[u8]) -> IpAddr {
    let (mut s, peer) = l.accept().expect("accept");
    s.write_all(reply).unwrap();
    peer.ip()
}

fn rules_tagged(tag: &str) -> usize {
    let out = Command::new("nft")
        .args(["-a", "list", "table", "inet", TABLE])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .matches(&format!("\"{tag}\""))
        .count()
}

struct Torn(Vec<NetHandle>);

impl Drop for Torn {
    fn drop(&mut self) {
        for h in self.0.drain(..) {
            let _ = teardown(&h);
        }
        let _ = delete_table(TABLE);
        let _ = remove_bridge("jtb0");
    }
}

fn v4(h: &NetHandle) -> IpAddr {
    *h.addresses().iter().find(|a| a.is_ipv4()).unwrap()
}

fn v6(h: &NetHandle) -> IpAddr {
    *h.addresses().iter().find(|a| a.is_ipv6()).unwrap()
}

#[test]
fn two_servers_on_a_bridge_with_a_published_port() {
    common::private_host_netns();
    let ns1 = common::new_netns();
    let ns2 = common::new_netns();
    let mut torn = Torn(Vec::new());

    let h1 = setup(
        &NetMode::Veth(config(&["18080:80", "18081:81"])),
        &ctx("s1", 1, ns1.as_fd(), &[]),
    )
    .expect("setup s1");
    torn.0.push(h1.clone());
    let used = h1.addresses();
    let h2 = setup(
        &NetMode::Veth(config(&[])),
        &ctx("s2", 2, ns2.as_fd(), &used),
    )
    .expect("setup s2");
    torn.0.push(h2.clone());
    assert_eq!(v4(&h1).to_string(), "10.99.0.2");
    assert_eq!(v4(&h2).to_string(), "10.99.0.3");
    assert_eq!(v6(&h2).to_string(), "fd99::3");
    let HandleState::Veth(vh1) = &h1.state else {
        panic!("{h1:?}")
    };
    assert_eq!(vh1.host_link, "jv1");
    assert!(vh1.bridge_created);

    // s1 serves on port 80 (IPv4) and 81 (IPv6).
    let web4 = common::in_netns(ns1.as_fd(), || TcpListener::bind("0.0.0.0:80").unwrap());
    let web6 = common::in_netns(ns1.as_fd(), || TcpListener::bind("[::]:81").unwrap());
    // The host listens on its bridge address.
    let host = TcpListener::bind("10.99.0.1:0").unwrap();
    let host_port = host.local_addr().unwrap().port();

    std::thread::scope(|s| {
        // s2 -> s1, both families.
        let srv = s.spawn(|| accept_reply(&web4, b"s1"));
        let got = common::in_netns(ns2.as_fd(), || fetch((v4(&h1), 80)));
        assert_eq!(got, b"s1");
        assert_eq!(srv.join().unwrap(), v4(&h2));
        let srv = s.spawn(|| accept_reply(&web6, b"s1v6"));
        let got = common::in_netns(ns2.as_fd(), || fetch((v6(&h1), 81)));
        assert_eq!(got, b"s1v6");
        assert_eq!(srv.join().unwrap(), v6(&h2));

        // s1 -> the bridge (host side).
        let srv = s.spawn(|| accept_reply(&host, b"host"));
        let got = common::in_netns(ns1.as_fd(), || {
            fetch(("10.99.0.1".parse().unwrap(), host_port))
        });
        assert_eq!(got, b"host");
        assert_eq!(srv.join().unwrap(), v4(&h1));

        // Published port, from the host itself: via its bridge address and via 127.0.0.1.
        for to in ["10.99.0.1", "127.0.0.1"] {
            let srv = s.spawn(|| accept_reply(&web4, b"published"));
            assert_eq!(
                fetch((to.parse().unwrap(), 18080)),
                b"published",
                "via {to}"
            );
            srv.join().unwrap();
        }
        let srv = s.spawn(|| accept_reply(&web6, b"published6"));
        assert_eq!(fetch(("fd99::1".parse().unwrap(), 18081)), b"published6");
        srv.join().unwrap();
    });

    assert!(rules_tagged("jaula:s1") > 0);
    assert_eq!(
        rules_tagged("jaula:s2"),
        1 + 1,
        "s2: masquerade v4 and v6 only"
    );

    // Teardown removes s1's links and rules, and leaves s2's.
    teardown(&h1).expect("teardown s1");
    let mut nl = Netlink::open().unwrap();
    assert_eq!(nl.link_index("jv1").unwrap(), None);
    assert!(nl.link_index("jv2").unwrap().is_some());
    assert_eq!(rules_tagged("jaula:s1"), 0);
    assert_eq!(rules_tagged("jaula:s2"), 2);
    assert!(!remove_bridge("jtb0").unwrap(), "bridge still has s2");
    teardown(&h2).expect("teardown s2");
    assert_eq!(nl.link_index("jv2").unwrap(), None);
    assert_eq!(rules_tagged("jaula:s2"), 0);
    assert!(remove_bridge("jtb0").unwrap());
    torn.0.clear();
}

#[test]
fn none_mode_brings_loopback_up() {
    let ns = common::new_netns();
    // A listener can bind 127.0.0.1 either way; a connection needs lo up.
    let loopback_works = || {
        common::in_netns(ns.as_fd(), || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            TcpStream::connect(l.local_addr().unwrap()).is_ok()
        })
    };
    assert!(!loopback_works(), "a fresh namespace has lo down");
    let c = ServerContext {
        name: "quiet",
        ctx_id: 3,
        cgroup_dir: None,
        netns: Some(ns.as_fd()),
        in_use: &[],
    };
    let h = setup(&NetMode::None, &c).expect("setup none");
    assert!(loopback_works());
    teardown(&h).unwrap();
}
