//! Root integration tests of the pure-v1 code paths: the host's v1 hierarchies without the
//! v2 one, so that SIGKILL has no `cgroup.kill` and must go through freeze, kill, thaw. A pure
//! v2 host has no v1 hierarchy to borrow, so there the test mounts a v1 freezer hierarchy of
//! its own (v2 has no freezer controller, so v1 may take it).

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::Guard;
use jaula_cgroups::{layout, Hierarchies, Layout, Signal, V1Mount};
use nix::mount::{mount, umount, MsFlags};

/// A v1 freezer hierarchy mounted by the test; unmounted and its directory removed on drop.
struct FreezerMount {
    dir: PathBuf,
}

impl FreezerMount {
    fn new() -> FreezerMount {
        let dir = std::env::temp_dir().join(format!("jaula-v1-freezer-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let m = FreezerMount { dir };
        mount(
            Some("jaula-test"),
            &m.dir,
            Some("cgroup"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("freezer"),
        )
        .unwrap_or_else(|e| panic!("mount a v1 freezer hierarchy on {}: {e}", m.dir.display()));
        m
    }
}

impl Drop for FreezerMount {
    fn drop(&mut self) {
        // Only if mounted: a failed mount leaves a plain empty directory.
        let _ = umount(&self.dir);
        let removed = std::fs::remove_dir(&self.dir);
        if !std::thread::panicking() {
            removed.expect("remove the freezer mount point");
        }
    }
}

/// v1 hierarchies without v2: the host's own, or on a pure v2 host a freezer hierarchy mounted
/// for the test (returned too, so that it outlives the cgroups made in it).
fn v1_only() -> (Arc<Hierarchies>, Option<FreezerMount>) {
    let host = layout::hierarchies().unwrap();
    if !host.v1.is_empty() {
        return (Arc::new(Hierarchies::new(host.v1.clone(), None)), None);
    }
    let m = FreezerMount::new();
    let v1 = vec![V1Mount {
        mount_point: m.dir.clone(),
        controllers: vec!["freezer".into()],
    }];
    (Arc::new(Hierarchies::new(v1, None)), Some(m))
}

#[test]
fn v1_sigkill_without_cgroup_kill_empties_the_cgroup() {
    // Declared before the guard, so dropped after it: the cgroup goes before the mount.
    let (h, _mount) = v1_only();
    let mut g = Guard::with(h, "v1kill");
    assert_eq!(g.cg.layout(), Layout::V1);
    g.cg.create().unwrap();
    assert!(g.cg.unified_dir().is_none());
    let pid = g.spawn("sleep 30 & sleep 30 & while :; do :; done");
    while g.cg.pids().unwrap().len() < 3 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    g.cg.kill_all(Signal::SIGKILL).unwrap();
    assert!(g.cg.pids().unwrap().is_empty());
    assert!(g.wait(pid).code().is_none());
    assert!(
        !g.cg.is_frozen().unwrap(),
        "kill_all left the cgroup frozen"
    );
    g.cg.destroy().unwrap();
    assert!(g.dirs().iter().all(|d| !d.exists()));
}
