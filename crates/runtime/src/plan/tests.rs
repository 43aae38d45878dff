//! Unit tests of spec validation; no root needed.

use super::*;
use jaula_spec::{Linux, Mount, Namespace, Process, Root};

fn base() -> (tempdir::Dir, Spec) {
    let dir = tempdir::Dir::new();
    std::fs::create_dir(dir.0.join("rootfs")).unwrap();
    let spec = Spec {
        oci_version: "1.2.0".into(),
        root: Some(Root {
            path: "rootfs".into(),
            readonly: false,
        }),
        process: Some(Process {
            args: vec!["/bin/sh".into()],
            cwd: "/".into(),
            ..Default::default()
        }),
        linux: Some(Linux {
            namespaces: ["pid", "mount", "uts"]
                .iter()
                .map(|t| Namespace {
                    typ: t.to_string(),
                    path: None,
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    (dir, spec)
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let p = std::env::temp_dir().join(format!("jaula-plan-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn err(spec: Spec, dir: &tempdir::Dir) -> String {
    Plan::new("t", &dir.0, spec).unwrap_err().to_string()
}

#[test]
fn valid_minimal_spec() {
    let (d, s) = base();
    let p = Plan::new("t", &d.0, s).unwrap();
    assert!(p.ns.new.contains(CloneFlags::CLONE_NEWPID));
    assert_eq!(p.process.umask, 0o022);
    assert!(!p.needs_intermediate());
}

#[test]
fn missing_rootfs_names_path() {
    let (d, mut s) = base();
    s.root.as_mut().unwrap().path = "nope".into();
    assert!(err(s, &d).contains("nope"));
}

#[test]
fn hostname_needs_uts() {
    let (d, mut s) = base();
    s.hostname = Some("h".into());
    s.linux
        .as_mut()
        .unwrap()
        .namespaces
        .retain(|n| n.typ != "uts");
    assert!(err(s, &d).contains("uts"));
}

#[test]
fn unknown_namespace_and_duplicates() {
    let (d, mut s) = base();
    s.linux.as_mut().unwrap().namespaces.push(Namespace {
        typ: "bogus".into(),
        path: None,
    });
    assert!(err(s, &d).contains("bogus"));
    let (d, mut s) = base();
    s.linux.as_mut().unwrap().namespaces.push(Namespace {
        typ: "pid".into(),
        path: None,
    });
    assert!(err(s, &d).contains("twice"));
}

#[test]
fn user_ns_needs_maps() {
    let (d, mut s) = base();
    s.linux.as_mut().unwrap().namespaces.push(Namespace {
        typ: "user".into(),
        path: None,
    });
    assert!(err(s, &d).contains("mappings"));
}

#[test]
fn sysctl_must_be_namespaced() {
    let (d, mut s) = base();
    s.linux
        .as_mut()
        .unwrap()
        .sysctl
        .insert("kernel.panic".into(), "1".into());
    assert!(err(s, &d).contains("not namespaced"));
    let (d, mut s) = base();
    s.linux
        .as_mut()
        .unwrap()
        .sysctl
        .insert("net.ipv4.ip_forward".into(), "1".into());
    assert!(err(s, &d).contains("private namespace"));
    let (d, mut s) = base();
    s.linux
        .as_mut()
        .unwrap()
        .sysctl
        .insert("kernel.hostname".into(), "x".into());
    let p = Plan::new("t", &d.0, s).unwrap();
    assert_eq!(p.sysctls[0].0, PathBuf::from("kernel/hostname"));
}

#[test]
fn mounts_parse_flags_and_reject_traversal() {
    let (d, mut s) = base();
    s.mounts = vec![
        Mount {
            destination: "/data".into(),
            source: Some("src".into()),
            typ: None,
            options: vec![
                "rbind".into(),
                "ro".into(),
                "nosuid".into(),
                "rprivate".into(),
            ],
            ..Default::default()
        },
        Mount {
            destination: "/tmp".into(),
            source: Some("tmpfs".into()),
            typ: Some("tmpfs".into()),
            options: vec!["nodev".into(), "size=64k".into(), "mode=1777".into()],
            ..Default::default()
        },
    ];
    let p = Plan::new("t", &d.0, s).unwrap();
    assert_eq!(p.mounts[0].kind, MountKind::Bind { recursive: true });
    assert!(p.mounts[0]
        .flags
        .contains(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID));
    assert!(p.mounts[0].needs_remount());
    assert_eq!(p.mounts[0].source, d.0.join("src"));
    assert_eq!(p.mounts[1].data, "size=64k,mode=1777");
    let (d, mut s) = base();
    s.mounts = vec![Mount {
        destination: "/a/../../etc".into(),
        typ: Some("tmpfs".into()),
        ..Default::default()
    }];
    assert!(err(s, &d).contains(".."));
}

#[test]
fn capabilities_by_name() {
    let (d, mut s) = base();
    s.process.as_mut().unwrap().capabilities = Some(jaula_spec::Capabilities {
        bounding: Some(vec!["CAP_KILL".into(), "CAP_NET_BIND_SERVICE".into()]),
        ..Default::default()
    });
    let p = Plan::new("t", &d.0, s).unwrap();
    assert_eq!(p.process.caps.bounding, (1 << 5) | (1 << 10));
    assert_eq!(p.process.caps.ambient, 0);
    let (d, mut s) = base();
    s.process.as_mut().unwrap().capabilities = Some(jaula_spec::Capabilities {
        effective: Some(vec!["CAP_BOGUS".into()]),
        ..Default::default()
    });
    assert!(err(s, &d).contains("CAP_BOGUS"));
}

#[test]
fn rlimits_checked() {
    let (d, mut s) = base();
    s.process.as_mut().unwrap().rlimits = vec![jaula_spec::Rlimit {
        typ: "RLIMIT_NOFILE".into(),
        soft: 10,
        hard: 5,
    }];
    assert!(err(s, &d).contains("soft"));
    let (d, mut s) = base();
    s.process.as_mut().unwrap().rlimits = vec![jaula_spec::Rlimit {
        typ: "RLIMIT_BOGUS".into(),
        soft: 1,
        hard: 5,
    }];
    assert!(err(s, &d).contains("RLIMIT_BOGUS"));
}

#[test]
fn relative_cwd_rejected() {
    let (d, mut s) = base();
    s.process.as_mut().unwrap().cwd = "tmp".into();
    assert!(err(s, &d).contains("process.cwd"));
}
