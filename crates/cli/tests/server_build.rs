//! Build methods: dir, tar (plain, gzip, xz, zstd) and clone produce runnable servers whose
//! files keep their own ids on disk (an idmapped mount presents them to the server's
//! range); host and busybox produce their skeletons.

mod server_common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use server_common::{unique_name, Jaula};

/// A small source tree: busybox, a hard link pair, a set-uid file, a user-owned file.
fn source_tree(dir: &Path) {
    for d in ["bin", "etc", "home/bob", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/a"), "linked").unwrap();
    std::fs::hard_link(dir.join("etc/a"), dir.join("etc/b")).unwrap();
    std::fs::write(dir.join("bin/suid"), "x").unwrap();
    std::os::unix::fs::chown(dir.join("home/bob"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(
        dir.join("bin/suid"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .unwrap();
}

fn check_tree(j: &Jaula, name: &str) {
    let root = j.home().join(name).join("rootfs");
    assert_eq!(
        root.join("etc/passwd").metadata().unwrap().uid(),
        0,
        "no chown on disk"
    );
    assert_eq!(root.join("home/bob").metadata().unwrap().uid(), 1000);
    let server_dir = j.home().join(name).metadata().unwrap();
    assert_eq!(
        server_dir.mode() & 0o077,
        0,
        "host users must not reach a rootfs"
    );
    let (a, b) = (
        root.join("etc/a").metadata().unwrap(),
        root.join("etc/b").metadata().unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "hard link kept");
    assert_eq!(
        root.join("bin/suid").metadata().unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        format!("{name}\n")
    );
}

#[test]
fn dir_tar_and_clone() {
    let j = Jaula::new();
    let src = j.scratch().join("src");
    source_tree(&src);
    let d = unique_name("fromdir");
    j.run(&[
        "build",
        &d,
        "--method",
        "dir",
        "--source",
        &src.to_string_lossy(),
    ])
    .ok();
    check_tree(&j, &d);

    let plain = j.scratch().join("root.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-cf")
        .arg(&plain)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    for (ext, tool) in [
        ("tar", None),
        ("tar.gz", Some("gzip")),
        ("tar.xz", Some("xz")),
        ("tar.zst", Some("zstd")),
    ] {
        let file = j.scratch().join(format!("root.{ext}"));
        if let Some(tool) = tool {
            let out = Command::new(tool).arg("-c").arg(&plain).output().unwrap();
            assert!(out.status.success(), "{tool}");
            std::fs::write(&file, out.stdout).unwrap();
        }
        let name = unique_name(&format!("tar{}", ext.len()));
        j.run(&[
            "build",
            &name,
            "--method",
            "tar",
            "--source",
            &file.to_string_lossy(),
        ])
        .ok();
        check_tree(&j, &name);
    }

    let c = unique_name("clone");
    j.run(&[
        "build", &c, "--method", "clone", "--source", &d, "--memory", "64M",
    ])
    .ok();
    check_tree(&j, &c);
    let toml = std::fs::read_to_string(j.home().join(&c).join("server.toml")).unwrap();
    assert!(toml.contains("memory = \"64M\""), "{toml}");

    // A server built from a directory runs.
    j.run(&[
        "build",
        &unique_name("garbage"),
        "--method",
        "tar",
        "--source",
        "/etc/hostname",
    ])
    .fails_with("cannot unpack");
    j.run(&["start", &c]).ok();
    assert_eq!(
        j.run(&["exec", &c, "--", "sh", "-c", "cat /etc/a; exit 4"])
            .stdout,
        "linked"
    );
    // Inside, the idmapped rootfs shows the on-disk ids as they are, and what the
    // server's root writes lands on disk as uid 0: nothing was ever chowned.
    let owners = j.run(&[
        "exec",
        &c,
        "--",
        "sh",
        "-c",
        "stat -c %u /etc/passwd /home/bob; touch /tmp/new",
    ]);
    assert_eq!(owners.stdout, "0\n1000\n", "{owners:?}");
    let new = j.home().join(&c).join("rootfs/tmp/new").metadata().unwrap();
    assert_eq!((new.uid(), new.gid()), (0, 0));
    j.run(&["stop", &c]).ok();
}

#[test]
fn host_and_busybox_skeletons() {
    let j = Jaula::new();
    let h = unique_name("host");
    j.run(&[
        "build",
        &h,
        "--method",
        "host",
        "--memory",
        "256M",
        "--cpus",
        "0.5",
        "--pids",
        "50",
        "--mark",
        "autostart",
    ])
    .ok();
    let dir = j.home().join(&h);
    let toml = std::fs::read_to_string(dir.join("server.toml")).unwrap();
    for want in [
        "memory = \"256M\"",
        "cpus = 0.5",
        "pids = 50",
        "autostart",
        "destination = \"/usr\"",
    ] {
        assert!(toml.contains(want), "{want} missing in {toml}");
    }
    // No copy of /usr: the skeleton is tiny.
    let size: u64 = walk_size(&dir.join("rootfs"));
    assert!(size < 4 << 20, "host skeleton takes {size} bytes");
    let b = unique_name("bb");
    j.busybox(&b, &["--privileged"]).ok();
    let root = j.home().join(&b).join("rootfs");
    assert!(
        root.join("bin/busybox")
            .symlink_metadata()
            .unwrap()
            .is_file(),
        "busybox must not be a symlink"
    );
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        root.metadata().unwrap().uid(),
        0,
        "privileged servers are not shifted"
    );
    j.run(&["start", &h, &b]).ok();
    // The limits reach the cgroup (v1 controller dirs on hybrid hosts, else v2).
    let cg = |v1: &str, file: &str| {
        [
            format!("/sys/fs/cgroup/{v1}/jaula/{h}/{file}"),
            format!("/sys/fs/cgroup/jaula/{h}/{file}"),
        ]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
    };
    assert_eq!(cg("pids", "pids.max").trim(), "50");
    let mem = cg("memory", "memory.limit_in_bytes") + &cg("memory", "memory.max");
    assert_eq!(mem.trim(), (256u64 << 20).to_string());
    let cpu = cg("cpu", "cpu.cfs_quota_us") + &cg("cpu", "cpu.max");
    assert!(cpu.starts_with("50000"), "{cpu}");
    j.run(&["stop", &h, &b]).ok();
}

fn walk_size(p: &Path) -> u64 {
    let m = p.symlink_metadata().unwrap();
    if m.is_dir() {
        std::fs::read_dir(p)
            .unwrap()
            .flatten()
            .map(|e| walk_size(&e.path()))
            .sum::<u64>()
            + m.len()
    } else {
        m.len()
    }
}
