//! Root integration tests of the v2 code paths on the real kernel. On a hybrid host they run
//! against the `unified` mount seen as a pure v2 hierarchy, so `cgroup.freeze`,
//! `cgroup.kill`, `cgroup.events` and the eBPF device filter are exercised for real.

mod common;

use std::os::fd::AsFd;
use std::sync::Arc;

use common::{go, read, Guard};
use jaula_cgroups::{layout, Hierarchies, Layout, Signal};
use jaula_spec::{DeviceCgroup, Resources};

/// The host's v2 hierarchy alone, as a pure-v2 host would have it. Its controllers are left
/// out: on a pure v2 layout `create` enables every controller in the ancestors, and these
/// tests must not change the host's root `cgroup.subtree_control`.
fn v2_only() -> Option<Arc<Hierarchies>> {
    let host = layout::hierarchies().unwrap();
    let unified = host.unified.clone()?;
    Some(Arc::new(Hierarchies::new(
        Vec::new(),
        Some((unified, Vec::new())),
    )))
}

#[test]
fn v2_lifecycle_freeze_kill_destroy() {
    let Some(h) = v2_only() else { return };
    let mut g = Guard::with(h, "v2life");
    assert_eq!(g.cg.layout(), Layout::V2);
    g.cg.create().unwrap();
    let dir = g.cg.unified_dir().unwrap();
    let pid = g.spawn("trap 'exit 7' TERM; while :; do sleep 0.01; done");
    assert!(g.cg.pids().unwrap().contains(&pid));
    // A sleep child means the trap is in place.
    while g.cg.pids().unwrap().len() < 2 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    g.cg.freeze().unwrap();
    assert!(g.cg.is_frozen().unwrap());
    assert!(read(&dir, "cgroup.events").contains("frozen 1"));
    g.cg.thaw().unwrap();
    assert!(!g.cg.is_frozen().unwrap());
    // Not SIGKILL: freeze, signal, thaw through the v2 files.
    g.cg.kill_all(Signal::SIGTERM).unwrap();
    assert_eq!(g.wait(pid).code(), Some(7));
    // SIGKILL: cgroup.kill.
    let pid = g.spawn("sleep 30 & exec sleep 30");
    g.cg.kill_all(Signal::SIGKILL).unwrap();
    assert!(g.cg.pids().unwrap().is_empty());
    assert!(g.wait(pid).code().is_none());
    g.cg.destroy().unwrap();
    assert!(!dir.exists());
}

fn rule(
    allow: bool,
    typ: &str,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> DeviceCgroup {
    DeviceCgroup {
        allow,
        typ: Some(typ.into()),
        major,
        minor,
        access: Some(access.into()),
    }
}

#[test]
fn v2_device_filter_denies_what_the_rules_deny() {
    let Some(h) = v2_only() else { return };
    let mut g = Guard::with(h, "v2dev");
    g.cg.create().unwrap();
    let r = Resources {
        devices: vec![
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), Some(5), "rw"), // /dev/zero
        ],
        ..Default::default()
    };
    // Applied twice, as `update` would: the second program replaces the first.
    g.cg.apply(&r).unwrap();
    g.cg.apply(&r).unwrap();
    let fd = std::fs::File::open(g.cg.unified_dir().unwrap()).unwrap();
    let progs =
        jaula_sys::bpf::prog_query(fd.as_fd(), jaula_sys::bpf::AttachType::CgroupDevice).unwrap();
    assert_eq!(progs.len(), 1, "{progs:?}");
    let (pid, stdin) = g.spawn_waiting(
        // `head` rather than a shell redirection: dash exits on a failed redirection.
        "if head -c1 /dev/null 2>/dev/zero; then exit 1; fi; head -c1 /dev/zero >/dev/zero || exit 2",
    );
    go(stdin);
    let status = g.wait(pid);
    assert_eq!(
        status.code(),
        Some(0),
        "/dev/null must be denied, /dev/zero allowed"
    );
    // Outside the cgroup nothing changed.
    assert!(std::fs::File::open("/dev/null").is_ok());
}

#[test]
fn v2_without_memory_controller_oom_count_fails_closed() {
    let Some(h) = v2_only() else { return };
    let g = Guard::with(h, "v2nomem");
    g.cg.create().unwrap();
    assert!(matches!(
        g.cg.oom_kill_count(),
        Err(jaula_cgroups::Error::NoController { .. })
    ));
    // Stats still report CPU usage from the core cpu.stat file.
    let s = g.cg.stats().unwrap();
    assert_eq!(s.pids.current, 0);
}
