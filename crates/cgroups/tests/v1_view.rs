//! Root integration tests of the pure-v1 code paths: the host's v1 hierarchies without the
//! v2 one, so that SIGKILL has no `cgroup.kill` and must go through freeze, kill, thaw.

mod common;

use std::sync::Arc;

use common::Guard;
use jaula_cgroups::{layout, Hierarchies, Layout, Signal};

fn v1_only() -> Option<Arc<Hierarchies>> {
    let host = layout::hierarchies().unwrap();
    (!host.v1.is_empty()).then(|| Arc::new(Hierarchies::new(host.v1.clone(), None)))
}

#[test]
fn v1_sigkill_without_cgroup_kill_empties_the_cgroup() {
    let Some(h) = v1_only() else { return };
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
