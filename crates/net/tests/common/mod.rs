//! Helpers shared by the integration tests: private network namespaces and unique names.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{SystemTime, UNIX_EPOCH};

use jaula_net::netlink::Netlink;
use nix::sched::CloneFlags;

/// Moves the calling thread into a new, empty network namespace with `lo` up. Everything
/// the test creates there (addresses, links, nftables) vanishes with the thread.
pub fn private_host_netns() {
    nix::sched::unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    let mut nl = Netlink::open().expect("netlink");
    let lo = nl.require_link("lo").expect("lo");
    nl.set_up(lo).expect("lo up");
}

/// A new network namespace, kept alive by the returned fd (like a server's).
pub fn new_netns() -> OwnedFd {
    std::thread::spawn(|| {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        OwnedFd::from(File::open("/proc/thread-self/ns/net").expect("open own netns"))
    })
    .join()
    .expect("netns thread")
}

/// Runs `f` on a thread inside `netns`; sockets it creates belong to that namespace.
pub fn in_netns<T: Send>(netns: BorrowedFd<'_>, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(netns.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{nanos:x}", std::process::id())
}
