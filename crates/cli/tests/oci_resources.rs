//! Resource limits seen from inside (pids, memory) and the container's own loopback.

mod common;

use common::{Bundle, Oci};
use serde_json::json;

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["forkbomb", "200"]);
    b.config["linux"]["resources"]["pids"] = json!({"limit": 20});
    let out = oci.container("pids").run(&b);
    out.ok();
    let v = out.json();
    let forked = v["forked"].as_u64().unwrap();
    assert!(forked < 20, "forked {forked} children under pids.limit=20");
    assert!(
        !v["error"].as_str().unwrap().is_empty(),
        "fork never failed: {v}"
    );
}

#[test]
fn memory_limit_kills_an_oversized_allocation() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["alloc", "256"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 32 << 20});
    let out = oci.container("oom").run(&b);
    assert_eq!(
        out.code(),
        128 + libc::SIGKILL,
        "allocation under a 32 MiB limit: {out:#?}"
    );
}

#[test]
fn allocation_within_the_memory_limit_succeeds() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["alloc", "16"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 128 << 20});
    let out = oci.container("mem").run(&b);
    out.ok();
    assert_eq!(out.stdout.trim(), "allocated 16 MiB");
}

#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    let oci = Oci::new();
    let b = Bundle::new(&[
        "/bin/sh",
        "-c",
        "/bin/probe bind 127.0.0.1 8080 --hold 60 & /bin/probe connect 127.0.0.1 8080 --retry 10",
    ]);
    let out = oci.container("lo").run(&b);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&"127.0.0.1:8080"), "{out:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("127.0.0.1:") && *l != "127.0.0.1:8080"),
        "{out:#?}"
    );
}

#[test]
fn a_new_network_namespace_has_only_loopback() {
    let oci = Oci::new();
    let b = Bundle::probe(&["ls", "/sys/class/net"]);
    let out = oci.container("netdevs").run(&b);
    out.ok();
    let names: Vec<String> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["/sys/class/net/lo"]);
}
