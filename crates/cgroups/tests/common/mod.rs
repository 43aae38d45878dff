//! Shared helpers for the root integration tests: unique test cgroups that clean up after
//! themselves, and child processes that wait for a go signal before running.

#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use jaula_cgroups::{layout, Cgroup, Hierarchies, Signal};

/// The parent of every test cgroup; removed when the last test that used it is done.
pub const PARENT: &str = "jaula-test";

/// A unique relative path under [`PARENT`].
pub fn unique_path(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{PARENT}/{tag}-{}-{n}-{nanos:x}", std::process::id())
}

/// Every hierarchy root of `h`.
pub fn roots(h: &Hierarchies) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = h.v1.iter().map(|m| m.mount_point.clone()).collect();
    out.extend(h.unified.clone());
    out
}

/// A test cgroup: killed, destroyed and its parent removed (if empty) on drop, even when the
/// test fails half-way.
pub struct Guard {
    pub cg: Cgroup,
    hier: Arc<Hierarchies>,
    children: Vec<Child>,
}

impl Guard {
    /// A cgroup in the host's real layout.
    pub fn host(tag: &str) -> Guard {
        let hier = layout::hierarchies().expect("detect cgroup layout");
        Guard::with(hier, tag)
    }

    /// A cgroup in the given hierarchies (e.g. a v2-only view of the hybrid host).
    pub fn with(hier: Arc<Hierarchies>, tag: &str) -> Guard {
        let cg = Cgroup::with_hierarchies(hier.clone(), &unique_path(tag)).unwrap();
        Guard {
            cg,
            hier,
            children: Vec::new(),
        }
    }

    /// Every directory of the cgroup, in every hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        roots(&self.hier)
            .iter()
            .map(|r| r.join(self.cg.path()))
            .collect()
    }

    /// Starts `sh -c script`, moves it into the cgroup, then lets it run. Returns its pid.
    pub fn spawn(&mut self, script: &str) -> i32 {
        let (pid, stdin) = self.spawn_waiting(script);
        go(stdin);
        pid
    }

    /// Like [`Guard::spawn`], but the script runs only once the returned stdin gets a line.
    pub fn spawn_waiting(&mut self, script: &str) -> (i32, ChildStdin) {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("read _go; {script}"))
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let pid = child.id() as i32;
        let stdin = child.stdin.take().unwrap();
        self.children.push(child);
        self.cg.add_pid(pid).expect("add pid");
        (pid, stdin)
    }

    /// Kills the child with `pid` directly (for processes the cgroup cannot reach).
    pub fn kill_child(&mut self, pid: i32) {
        let i = self
            .children
            .iter()
            .position(|c| c.id() as i32 == pid)
            .unwrap();
        let mut child = self.children.remove(i);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Waits for the child with `pid` and returns its exit status.
    pub fn wait(&mut self, pid: i32) -> std::process::ExitStatus {
        let i = self
            .children
            .iter()
            .position(|c| c.id() as i32 == pid)
            .unwrap();
        let mut child = self.children.remove(i);
        child.wait().unwrap()
    }
}

pub fn go(mut stdin: ChildStdin) {
    stdin.write_all(b"go\n").unwrap();
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cg.thaw();
        let _ = self.cg.kill_all(Signal::SIGKILL);
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let destroyed = self.cg.destroy();
        for root in roots(&self.hier) {
            // Other tests may still use the parent: only the last one removes it.
            let _ = std::fs::remove_dir(root.join(PARENT));
        }
        if !std::thread::panicking() {
            destroyed.expect("destroy test cgroup");
        }
    }
}

/// The current value of a cgroup file.
pub fn read(dir: &std::path::Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(name).display()))
        .trim()
        .to_string()
}

/// major:minor of a real disk of this machine (throttle rules need an existing device).
pub fn disk() -> (i64, i64) {
    let mut devs: Vec<(String, String)> = std::fs::read_dir("/sys/block")
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let dev = std::fs::read_to_string(format!("/sys/block/{name}/dev")).ok()?;
            Some((name, dev.trim().to_string()))
        })
        .collect();
    // Loop and zram devices may come and go; prefer a real disk.
    devs.sort_by_key(|(name, _)| name.starts_with("loop") || name.starts_with("zram"));
    let (_, dev) = devs.first().expect("no block device");
    let (major, minor) = dev.split_once(':').unwrap();
    (major.parse().unwrap(), minor.parse().unwrap())
}
