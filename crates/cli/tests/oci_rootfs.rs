//! The container's filesystem: root, mounts, propagation, pivot_root, /dev.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{probe_info, probe_json, Bundle, Oci};
use serde_json::{json, Value};

/// One line of /proc/PID/mountinfo.
#[derive(Debug)]
struct MountLine {
    dev: String,
    root: String,
    point: String,
    opts: String,
    optional: String,
    fstype: String,
    super_opts: String,
}

fn parse_mountinfo(info: &Value) -> Vec<MountLine> {
    info["mountinfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let l = l.as_str().unwrap();
            let (left, right) = l.split_once(" - ").unwrap();
            let f: Vec<&str> = left.split_whitespace().collect();
            let r: Vec<&str> = right.split_whitespace().collect();
            MountLine {
                dev: f[2].to_owned(),
                root: f[3].to_owned(),
                point: f[4].to_owned(),
                opts: f[5].to_owned(),
                optional: f[6..].join(" "),
                fstype: r[0].to_owned(),
                super_opts: r.get(2).copied().unwrap_or("").to_owned(),
            }
        })
        .collect()
}

/// The last (topmost) mount at `point`.
fn mount_at<'a>(mounts: &'a [MountLine], point: &str) -> &'a MountLine {
    mounts
        .iter()
        .rev()
        .find(|m| m.point == point)
        .unwrap_or_else(|| panic!("no mount at {point}: {mounts:#?}"))
}

fn has_opt(list: &str, opt: &str) -> bool {
    list.split(',').any(|o| o == opt)
}

#[test]
fn readonly_root_is_mounted_ro_and_refuses_writes() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["write", "/etc/x", "data"]);
    b.config["root"]["readonly"] = json!(true);
    let out = oci.container("ro").run(&b);
    assert_eq!(
        out.code(),
        2,
        "write to a read-only root succeeded: {out:#?}"
    );
    assert!(out.stderr.contains("Read-only file system"), "{out:#?}");
    assert!(!b.rootfs().join("etc/x").exists());

    let mut b = Bundle::probe(&["info"]);
    b.config["root"]["readonly"] = json!(true);
    let info = probe_json(&oci, "roinfo", &b);
    assert!(has_opt(&mount_at(&parse_mountinfo(&info), "/").opts, "ro"));
}

#[test]
fn writable_root_accepts_writes() {
    let oci = Oci::new();
    let b = Bundle::probe(&["write", "/etc/x", "data"]);
    oci.container("rw").run(&b).ok();
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("etc/x")).unwrap(),
        "data"
    );
}

#[test]
fn absolute_root_path_works() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["exit", "7"]);
    b.config["root"]["path"] = json!(b.rootfs());
    assert_eq!(oci.container("absroot").run(&b).code(), 7);
}

#[test]
fn bind_mount_read_only_and_tmpfs_options_are_applied() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("file"), "from host").unwrap();
    let info = probe_info(|b| {
        b.push_mount(
            json!({"destination": "/data", "type": "bind", "source": src.path(),
                            "options": ["bind", "ro", "nosuid", "nodev"]}),
        );
        b.push_mount(
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=700"]}),
        );
    });
    let mounts = parse_mountinfo(&info);
    let data = mount_at(&mounts, "/data");
    for o in ["ro", "nosuid", "nodev"] {
        assert!(has_opt(&data.opts, o), "/data lacks {o}: {data:?}");
    }
    let scratch = mount_at(&mounts, "/scratch");
    assert_eq!(scratch.fstype, "tmpfs");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(has_opt(&scratch.opts, o), "/scratch lacks {o}: {scratch:?}");
    }
    assert!(has_opt(&scratch.super_opts, "size=1024k"), "{scratch:?}");
    assert!(has_opt(&scratch.super_opts, "mode=700"), "{scratch:?}");
}

#[test]
fn bind_mount_content_is_visible_and_read_only() {
    let oci = Oci::new();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("file"), "from host").unwrap();
    let mount = json!({"destination": "/data", "type": "bind", "source": src.path(), "options": ["rbind", "ro"]});
    let mut b = Bundle::probe(&["cat", "/data/file"]);
    b.push_mount(mount.clone());
    let out = oci.container("bindcat").run(&b);
    out.ok();
    assert_eq!(out.stdout, "from host");
    let mut b = Bundle::probe(&["write", "/data/file", "changed"]);
    b.push_mount(mount);
    oci.container("bindw").run(&b).fails();
    assert_eq!(
        std::fs::read_to_string(src.path().join("file")).unwrap(),
        "from host"
    );
}

#[test]
fn rootfs_propagation_is_applied_to_the_root() {
    let private = probe_info(|b| b.config["linux"]["rootfsPropagation"] = json!("private"));
    let root = mount_at(&parse_mountinfo(&private), "/").optional.clone();
    assert!(
        !root.contains("shared:") && !root.contains("master:"),
        "private root: {root}"
    );

    let shared = probe_info(|b| b.config["linux"]["rootfsPropagation"] = json!("shared"));
    let root = mount_at(&parse_mountinfo(&shared), "/").optional.clone();
    assert!(root.contains("shared:"), "shared root: {root}");
}

#[test]
fn mount_target_symlink_pointing_out_of_the_rootfs_lands_inside() {
    let canary = tempfile::Builder::new()
        .prefix("jaula-canary-")
        .tempdir()
        .unwrap();
    std::fs::write(canary.path().join("keep"), "canary").unwrap();
    let digest = common::tree_digest(canary.path());
    let oci = Oci::new();
    let mut b = Bundle::probe(&["info"]);
    std::os::unix::fs::symlink(canary.path(), b.rootfs().join("mnt/evil")).unwrap();
    b.push_mount(json!({"destination": "/mnt/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    let c = oci.container("symtarget");
    let out = c.run(&b);
    assert_eq!(
        common::tree_digest(canary.path()),
        digest,
        "host canary changed"
    );
    assert!(common::host_mounts_containing(canary.path().to_str().unwrap()).is_empty());
    out.ok();
    let mounts = parse_mountinfo(&out.json());
    let landed = mounts.iter().find(|m| {
        m.fstype == "tmpfs"
            && m.point
                .ends_with(canary.path().file_name().unwrap().to_str().unwrap())
    });
    assert!(
        landed.is_some_and(|m| m.point == canary.path().to_str().unwrap()),
        "tmpfs not at the in-root path: {mounts:#?}"
    );
    assert!(b
        .rootfs()
        .join(canary.path().strip_prefix("/").unwrap())
        .is_dir());
}

#[test]
fn pivot_root_leaves_no_trace_of_the_host_root() {
    let info = probe_info(|_| {});
    let mounts = parse_mountinfo(&info);
    let host_root_dev = {
        let m = std::fs::metadata("/").unwrap();
        format!("{}:{}", libc::major(m.dev()), libc::minor(m.dev()))
    };
    for m in &mounts {
        assert!(
            !(m.dev == host_root_dev && m.root == "/"),
            "host root is mounted at {}: {m:?}",
            m.point
        );
    }
    let root = mount_at(&mounts, "/");
    assert!(
        root.root.ends_with("/rootfs"),
        "the root is not the bundle's rootfs: {root:?}"
    );
    let mut allowed: BTreeSet<String> = [
        "/",
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    allowed.extend(common::MASKED_PATHS.iter().map(|s| s.to_string()));
    allowed.extend(common::READONLY_PATHS.iter().map(|s| s.to_string()));
    for m in &mounts {
        let ok = allowed.contains(&m.point)
            || m.point.starts_with("/sys/fs/cgroup")
            || m.point.starts_with("/dev/");
        assert!(ok, "unexpected mount {} in the container: {m:?}", m.point);
    }
}

#[test]
fn masked_and_readonly_paths_are_applied() {
    let info = probe_info(|_| {});
    let mounts = parse_mountinfo(&info);
    for ro in common::READONLY_PATHS {
        if Path::new(ro).exists() {
            let m = mount_at(&mounts, ro);
            assert!(has_opt(&m.opts, "ro"), "{ro} is not read-only: {m:?}");
        }
    }
    // Only paths this kernel has can be masked (/proc/kcore, for one, may not exist).
    let mut checked = 0;
    for masked in common::MASKED_PATHS {
        let Ok(meta) = std::fs::metadata(masked) else {
            continue;
        };
        let m = mount_at(&mounts, masked);
        if meta.is_dir() {
            assert!(
                m.fstype == "tmpfs" && has_opt(&m.opts, "ro"),
                "{masked} not masked: {m:?}"
            );
        } else {
            assert!(
                m.root.ends_with("/null"),
                "{masked} not masked by a null device: {m:?}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 3, "too few masked paths exist here to test");
}

fn dev_listing(oci: &Oci, patch: impl FnOnce(&mut Bundle)) -> Vec<Value> {
    let mut b = Bundle::probe(&["ls", "/dev"]);
    patch(&mut b);
    probe_json(oci, "dev", &b).as_array().unwrap().clone()
}

fn entry<'a>(list: &'a [Value], path: &str) -> &'a Value {
    list.iter()
        .find(|e| e["path"] == path)
        .unwrap_or_else(|| panic!("{path} missing from {list:#?}"))
}

#[test]
fn default_devices_exist_with_the_right_numbers() {
    let oci = Oci::new();
    let devs = dev_listing(&oci, |_| {});
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let e = entry(&devs, &format!("/dev/{name}"));
        assert_eq!(e["type"], "char", "/dev/{name}: {e}");
        assert_eq!(
            (e["major"].as_u64().unwrap(), e["minor"].as_u64().unwrap()),
            (major, minor),
            "/dev/{name}"
        );
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let e = entry(&devs, &format!("/dev/{name}"));
        assert_eq!(e["type"], "symlink");
        assert_eq!(e["link"], target);
    }
    assert_eq!(entry(&devs, "/dev/ptmx")["link"], "pts/ptmx");
    // Devices the host has but the container was not given.
    for absent in ["/dev/mem", "/dev/kmsg", "/dev/vda", "/dev/sda"] {
        assert!(
            !devs.iter().any(|e| e["path"] == absent),
            "{absent} exists in the container"
        );
    }
}

#[test]
fn devices_are_usable() {
    let oci = Oci::new();
    let b = Bundle::new(&[
        "/bin/sh",
        "-c",
        "echo hi > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c",
    ]);
    let out = oci.container("devuse").run(&b);
    out.ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["4", "4"]
    );
}

#[test]
fn linux_devices_are_created() {
    let oci = Oci::new();
    let devs = dev_listing(&oci, |b| {
        b.config["linux"]["devices"] = json!([
            {"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 0o620, "uid": 0, "gid": 0},
            {"type": "b", "path": "/dev/jaula-loop", "major": 7, "minor": 200, "fileMode": 0o600, "uid": 1000, "gid": 1000}
        ]);
    });
    let fuse = entry(&devs, "/dev/fuse");
    assert_eq!(fuse["type"], "char");
    assert_eq!(
        (fuse["major"].as_u64(), fuse["minor"].as_u64()),
        (Some(10), Some(229))
    );
    assert_eq!(fuse["mode"], 0o620);
    let lp = entry(&devs, "/dev/jaula-loop");
    assert_eq!(lp["type"], "block");
    assert_eq!(
        (lp["major"].as_u64(), lp["minor"].as_u64()),
        (Some(7), Some(200))
    );
    assert_eq!(
        (lp["uid"].as_u64(), lp["gid"].as_u64()),
        (Some(1000), Some(1000))
    );
}

#[test]
fn proc_and_sys_are_fresh_instances() {
    let info = probe_info(|_| {});
    let mounts = parse_mountinfo(&info);
    assert_eq!(mount_at(&mounts, "/proc").fstype, "proc");
    let sys = mount_at(&mounts, "/sys");
    assert_eq!(sys.fstype, "sysfs");
    assert!(has_opt(&sys.opts, "ro"));
    assert_eq!(mount_at(&mounts, "/dev/pts").fstype, "devpts");
    assert_eq!(mount_at(&mounts, "/dev/mqueue").fstype, "mqueue");
}
