//! Validation before anything is created, and cleanup when a later step fails.
//! Runs in private network namespaces made by the test.

mod common;

use std::fs;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;

use jaula_net::netlink::{Netlink, NetlinkError};
use jaula_net::{
    setup, teardown, Assign, BridgeConfig, HandleState, IsolatedConfig, IsolatedError, Masquerade,
    NatConfig, NetError, NetMode, ServerContext, VethConfig, VethError,
};

fn isolated(addrs: &[&str], device: Option<&str>) -> NetMode {
    NetMode::Isolated(IsolatedConfig {
        addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        device: device.map(str::to_owned),
    })
}

fn iso_error(mode: &NetMode, cgroup: &std::path::Path, in_use: &[IpAddr]) -> IsolatedError {
    let ctx = ServerContext {
        name: "val",
        ctx_id: 5,
        cgroup_dir: Some(cgroup),
        netns: None,
        in_use,
    };
    match setup(mode, &ctx) {
        Err(NetError::Isolated { source, .. }) => source,
        other => panic!("expected an isolated-mode error, got {other:?}"),
    }
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

#[test]
fn isolated_mode_validates_before_creating_anything() {
    common::private_host_netns();
    let cg =
        Dir(PathBuf::from("/sys/fs/cgroup/unified").join(common::unique("jaula-test-netval-")));
    fs::create_dir(&cg.0).unwrap();

    let e = iso_error(&isolated(&["127.0.0.1"], None), &cg.0, &[]);
    assert!(
        matches!(&e, IsolatedError::OnHost { device, .. } if device == "lo"),
        "{e}"
    );
    assert!(e.to_string().contains("127.0.0.1"), "{e}");

    let e = iso_error(
        &isolated(&["127.0.78.1"], None),
        &cg.0,
        &["127.0.78.1".parse().unwrap()],
    );
    assert!(matches!(e, IsolatedError::InUse(_)), "{e}");

    let e = iso_error(&isolated(&["127.0.78.1"], Some("nosuchdev0")), &cg.0, &[]);
    assert!(
        matches!(&e, IsolatedError::Netlink(NetlinkError::NoDevice(d)) if d == "nosuchdev0"),
        "{e}"
    );

    // A global address with no route in this namespace cannot be placed.
    let e = iso_error(&isolated(&["192.0.2.10"], None), &cg.0, &[]);
    assert!(
        matches!(e, IsolatedError::Netlink(NetlinkError::NoRoute(_))),
        "{e}"
    );

    let e = iso_error(&isolated(&["127.0.78.1", "127.0.78.1"], None), &cg.0, &[]);
    assert!(matches!(e, IsolatedError::Duplicate(_)), "{e}");

    // None of the refused plans left an address behind.
    let addrs = Netlink::open().unwrap().addresses().unwrap();
    assert!(!addrs
        .iter()
        .any(|a| a.cidr.addr().to_string().starts_with("127.0.78.")));

    // Without a device, the route decides: 127/8 goes on lo.
    let ctx = ServerContext {
        name: "val",
        ctx_id: 5,
        cgroup_dir: Some(&cg.0),
        netns: None,
        in_use: &[],
    };
    let h = setup(&isolated(&["127.0.78.1"], None), &ctx).expect("setup");
    let HandleState::Isolated(iso) = &h.state else {
        panic!("{h:?}")
    };
    assert_eq!(iso.added[0].device, "lo");
    teardown(&h).unwrap();

    // The verifier accepts the programs of a server with IPv6 only, and with both families.
    for addrs in [
        &["fd00:78::1"][..],
        &["fd00:78::1", "127.0.78.1", "127.0.78.2"][..],
    ] {
        let h = setup(&isolated(addrs, Some("lo")), &ctx).expect("setup");
        teardown(&h).unwrap();
    }
}

fn veth(table: &str) -> VethConfig {
    VethConfig {
        bridge: BridgeConfig {
            name: "jtv0".into(),
            ipv4: Some("10.98.0.1/24".parse().unwrap()),
            ipv6: None,
        },
        ipv4: Assign::Static("10.98.0.7".parse().unwrap()),
        ipv6: Assign::Off,
        host_link: None,
        nat: NatConfig {
            masquerade: Masquerade::On,
            ports: vec!["18081:80".parse().unwrap()],
            table: table.into(),
        },
    }
}

#[test]
fn veth_mode_validates_and_cleans_up_after_a_failure() {
    common::private_host_netns();
    let ns = common::new_netns();
    let ctx = |in_use| ServerContext {
        name: "val",
        ctx_id: 9,
        cgroup_dir: None,
        netns: Some(ns.as_fd()),
        in_use,
    };
    let used: Vec<IpAddr> = vec!["10.98.0.7".parse().unwrap()];
    match setup(&NetMode::Veth(veth("jaula_val")), &ctx(&used)) {
        Err(NetError::Veth {
            source: VethError::InUse(a),
            ..
        }) => assert_eq!(a, used[0]),
        other => panic!("{other:?}"),
    }
    let mut taken = veth("jaula_val");
    taken.host_link = Some("lo".into());
    assert!(matches!(
        setup(&NetMode::Veth(taken), &ctx(&[])),
        Err(NetError::Veth {
            source: VethError::LinkExists(_),
            ..
        })
    ));
    let mut bad = veth("jaula_val");
    bad.ipv6 = Assign::Pool;
    assert!(matches!(
        setup(&NetMode::Veth(bad), &ctx(&[])),
        Err(NetError::Veth {
            source: VethError::NoSubnet { .. },
            ..
        })
    ));

    // Make the last step (nftables) fail: a filter chain already holds the name of the
    // NAT chain jaula wants. Everything created before it must be removed again.
    let nft = |script: &str| {
        let ok = Command::new("nft").arg(script).status().unwrap().success();
        assert!(ok, "nft {script}");
    };
    nft("add table inet jaula_val");
    nft("add chain inet jaula_val output { type filter hook output priority 0; }");
    match setup(&NetMode::Veth(veth("jaula_val")), &ctx(&[])) {
        Err(NetError::Veth {
            source: VethError::Nat(_),
            ..
        }) => {}
        other => panic!("expected the NAT step to fail, got {other:?}"),
    }
    let mut nl = Netlink::open().unwrap();
    assert_eq!(
        nl.link_index("jv9").unwrap(),
        None,
        "veth pair removed after the failure"
    );
    let listing = Command::new("nft")
        .args(["list", "table", "inet", "jaula_val"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&listing.stdout).contains("jaula:val"));
    // With the obstacle gone, the same plan works.
    nft("delete table inet jaula_val");
    let h = setup(&NetMode::Veth(veth("jaula_val")), &ctx(&[])).expect("setup");
    assert_eq!(h.addresses(), used);
    teardown(&h).unwrap();
    jaula_net::delete_table("jaula_val").unwrap();
    assert!(jaula_net::remove_bridge("jtv0").unwrap());
}
