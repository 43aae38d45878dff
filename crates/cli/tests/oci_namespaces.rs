//! Namespaces as the probe sees them: new ones, joined ones, user and time namespaces.

mod common;

use std::process::{Child, Command, Stdio};

use common::{probe_info, Bundle, Oci};
use serde_json::{json, Value};

/// The host's namespace link of `kind`, e.g. `net:[4026531840]`.
fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn ns_of(info: &Value, kind: &str) -> String {
    info["ns"][kind]
        .as_str()
        .unwrap_or_else(|| panic!("no {kind} ns in {info}"))
        .to_owned()
}

#[test]
fn default_namespaces_are_new_and_the_rest_are_shared() {
    let info = probe_info(|_| {});
    for kind in ["pid", "net", "ipc", "uts", "mnt"] {
        assert_ne!(
            ns_of(&info, kind),
            host_ns(kind),
            "{kind} namespace is the host's"
        );
    }
    for kind in ["user", "cgroup"] {
        assert_eq!(
            ns_of(&info, kind),
            host_ns(kind),
            "{kind} namespace was not requested"
        );
    }
    assert_eq!(
        info["pid"], 1,
        "the probe must be pid 1 of its pid namespace"
    );
    assert_eq!(info["ppid"], 0);
}

#[test]
fn without_a_network_namespace_the_host_network_is_shared() {
    let info = probe_info(|b| b.remove_namespace("network"));
    assert_eq!(ns_of(&info, "net"), host_ns("net"));
}

#[test]
fn uts_namespace_sets_hostname_and_domainname() {
    let info = probe_info(|b| {
        b.config["hostname"] = json!("probe-host");
        b.config["domainname"] = json!("probe.example");
    });
    assert_eq!(info["hostname"], "probe-host");
    assert_eq!(info["domainname"], "probe.example");
    let host = nix::unistd::gethostname().unwrap();
    assert_ne!(
        host.to_str(),
        Some("probe-host"),
        "the host's hostname changed"
    );
}

#[test]
fn hostname_without_a_uts_namespace_is_rejected() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["info"]);
    b.remove_namespace("uts");
    let c = oci.container("nouts");
    c.create(&b).fails();
    assert!(oci.root_entries().is_empty());
}

/// A process of ours holding new namespaces, killed on drop.
struct Holder(Child);

impl Holder {
    fn new(flags: &[&str]) -> Holder {
        let child = Command::new("unshare")
            .args(flags)
            .args(["sleep", "60"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare from util-linux");
        let h = Holder(child);
        let pid = h.pid();
        // Wait until unshare has exec'd sleep, i.e. the namespaces exist.
        common::poll("unshare to exec sleep", common::CMD_TIMEOUT, || {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim() == "sleep").then_some(())
        });
        h
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn ns_path(&self, kind: &str) -> std::path::PathBuf {
        format!("/proc/{}/ns/{kind}", self.pid()).into()
    }

    fn ns(&self, kind: &str) -> String {
        std::fs::read_link(self.ns_path(kind))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn namespace_paths_are_joined() {
    let holder = Holder::new(&["--net", "--ipc"]);
    let info = probe_info(|b| {
        b.add_namespace("network", Some(&holder.ns_path("net")));
        b.add_namespace("ipc", Some(&holder.ns_path("ipc")));
    });
    assert_eq!(ns_of(&info, "net"), holder.ns("net"));
    assert_eq!(ns_of(&info, "ipc"), holder.ns("ipc"));
    assert_ne!(ns_of(&info, "uts"), host_ns("uts"));
}

#[test]
fn joining_a_path_of_the_wrong_kind_fails() {
    let holder = Holder::new(&["--ipc"]);
    let oci = Oci::new();
    for path in [
        holder.ns_path("ipc"),
        "/nonexistent/ns".into(),
        "/etc/hostname".into(),
    ] {
        let mut b = Bundle::probe(&["info"]);
        b.add_namespace("network", Some(&path));
        let c = oci.container("badns");
        c.create(&b).fails();
        assert!(oci.root_entries().is_empty(), "{path:?} left state");
    }
}

#[test]
fn cgroup_namespace_hides_the_host_cgroup_paths() {
    let info = probe_info(|b| b.add_namespace("cgroup", None));
    assert_ne!(ns_of(&info, "cgroup"), host_ns("cgroup"));
    for line in info["cgroup"].as_array().unwrap() {
        let path = line.as_str().unwrap().splitn(3, ':').nth(2).unwrap();
        assert_eq!(path, "/", "cgroup line {line} shows a host path");
    }
}

const HOST_BASE: u32 = 200_000;

fn add_user_namespace(b: &mut Bundle) {
    b.add_namespace("user", None);
    let map = json!([{"containerID": 0, "hostID": HOST_BASE, "size": 65536}]);
    b.config["linux"]["uidMappings"] = map.clone();
    b.config["linux"]["gidMappings"] = map;
}

#[test]
fn user_namespace_maps_root_to_the_host_range() {
    let oci = Oci::new();
    let mut b = Bundle::new(&["/bin/sh", "-c", "/bin/probe info; exec /bin/probe sleep 30"]);
    add_user_namespace(&mut b);
    let c = oci.container("userns");
    let out = c.create(&b);
    out.ok();
    c.start().ok();
    let info: Value = common::poll("probe info", common::CMD_TIMEOUT, || {
        serde_json::from_str(out.stdout_now().lines().next()?).ok()
    });
    assert_eq!(info["uid"], 0);
    assert_eq!(info["gid"], 0);
    assert_ne!(ns_of(&info, "user"), host_ns("user"));
    let pid = c.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == HOST_BASE.to_string()),
        "{uid_line}"
    );
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let fields: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(fields, ["0", &HOST_BASE.to_string(), "65536"]);
    let gmap = std::fs::read_to_string(format!("/proc/{pid}/gid_map")).unwrap();
    assert_eq!(gmap.split_whitespace().collect::<Vec<_>>(), fields);
}

#[test]
fn user_namespace_root_has_no_power_over_the_host() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["escape", "mknod"]);
    add_user_namespace(&mut b);
    b.set_caps(&["CAP_MKNOD", "CAP_SYS_ADMIN", "CAP_SYS_CHROOT"]);
    let c = oci.container("usernsesc");
    let out = c.run(&b);
    assert_eq!(
        out.code(),
        0,
        "mknod of a host block device inside a user namespace: {out:#?}"
    );
    assert_eq!(out.json()["blocked"], true);
}

#[test]
fn mappings_without_a_user_namespace_are_rejected() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["info"]);
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": HOST_BASE, "size": 1}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": HOST_BASE, "size": 1}]);
    let c = oci.container("mapnons");
    c.create(&b).fails();
    assert!(oci.root_entries().is_empty());
}

fn host_clock(clock: nix::time::ClockId) -> i64 {
    nix::time::clock_gettime(clock).unwrap().tv_sec()
}

#[test]
fn time_namespace_applies_offsets() {
    const DAY: i64 = 86_400;
    let before_mono = host_clock(nix::time::ClockId::CLOCK_MONOTONIC);
    let before_boot = host_clock(nix::time::ClockId::CLOCK_BOOTTIME);
    let info = probe_info(|b| {
        b.add_namespace("time", None);
        b.config["linux"]["timeOffsets"] = json!({
            "monotonic": {"secs": 10 * DAY, "nanosecs": 0},
            "boottime": {"secs": 20 * DAY, "nanosecs": 0}
        });
    });
    let after_mono = host_clock(nix::time::ClockId::CLOCK_MONOTONIC);
    let mono = info["monotonic"].as_i64().unwrap();
    let boot = info["boottime"].as_i64().unwrap();
    assert!(
        (before_mono + 10 * DAY..=after_mono + 10 * DAY).contains(&mono),
        "monotonic {mono}"
    );
    assert!(
        boot >= before_boot + 20 * DAY && boot <= before_boot + 20 * DAY + 60,
        "boottime {boot}"
    );
    assert_ne!(ns_of(&info, "time"), host_ns("time"));
}
