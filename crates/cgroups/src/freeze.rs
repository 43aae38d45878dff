//! Freezing, thawing and signalling every process of a cgroup.
//!
//! v1 uses the freezer controller (`freezer.state`); v2 uses the core `cgroup.freeze` and
//! `cgroup.kill` files. On hybrid hosts the v1 freezer wins for freezing (that is what other
//! tools look at), while SIGKILL goes through the unified `cgroup.kill`, which is atomic.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{fs, Cgroup, Error};

/// How long to wait for a freeze to settle or for killed processes to leave.
const PATIENCE: Duration = Duration::from_secs(5);

/// Which freezer backs a cgroup.
enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

impl Cgroup {
    fn freezer(&self) -> Result<Freezer, Error> {
        if let Some(d) = self.v1_dir("freezer") {
            return Ok(Freezer::V1(d));
        }
        match self.unified_dir() {
            Some(d) => Ok(Freezer::V2(d)),
            None => Err(Error::NoController {
                resource: "freezing".into(),
                controller: "freezer".into(),
            }),
        }
    }

    /// Freezes every process and returns once the kernel reports the cgroup frozen.
    /// If that does not happen in time the cgroup is thawed again and an error returned.
    pub fn freeze(&self) -> Result<(), Error> {
        let result = match self.freezer()? {
            Freezer::V1(d) => freeze_v1(&d),
            Freezer::V2(d) => freeze_v2(&d),
        };
        if result.is_err() {
            // Never leave a half-frozen container behind; the first error is the one to report.
            let _ = self.thaw();
        }
        result
    }

    /// Lets the processes run again.
    pub fn thaw(&self) -> Result<(), Error> {
        match self.freezer()? {
            Freezer::V1(d) => fs::write(&d, "freezer.state", "THAWED"),
            Freezer::V2(d) => fs::write(&d, "cgroup.freeze", "0"),
        }
    }

    /// Whether the cgroup is frozen or freezing. A cgroup that does not exist is not frozen.
    pub fn is_frozen(&self) -> Result<bool, Error> {
        match self.freezer()? {
            Freezer::V1(d) => {
                Ok(fs::read_opt(&d.join("freezer.state"))?.is_some_and(|s| s.trim() != "THAWED"))
            }
            Freezer::V2(d) => {
                Ok(fs::read_opt(&d.join("cgroup.freeze"))?.is_some_and(|s| s.trim() == "1"))
            }
        }
    }

    /// Sends `signal` to every process of the cgroup. For SIGKILL, also waits until the cgroup
    /// is empty. A cgroup that does not exist has nothing to signal. Uses `cgroup.kill` where the kernel has it; otherwise freezes the cgroup so that
    /// no process can fork away between listing and signalling, signals, and thaws.
    pub fn kill_all(&self, signal: Signal) -> Result<(), Error> {
        // Nothing to kill in a cgroup that is gone (`delete --force` after a crash).
        if !self.primary_dir().is_some_and(|d| d.exists()) {
            return Ok(());
        }
        let deadline = Instant::now() + PATIENCE;
        if signal == Signal::SIGKILL {
            if let Some(kill_file) = self.unified_dir().map(|d| d.join("cgroup.kill")) {
                if kill_file.exists() {
                    fs::write_path(&kill_file, "1")?;
                    return self.wait_empty(deadline);
                }
            }
        }
        loop {
            self.signal_frozen(signal)?;
            if signal != Signal::SIGKILL || self.pids()?.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: "processes to exit",
                    path: self.primary_dir().unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn signal_frozen(&self, signal: Signal) -> Result<(), Error> {
        let can_freeze = self.freezer().is_ok();
        if can_freeze {
            self.freeze()?;
        }
        let sent = self.pids().and_then(|pids| signal_all(&pids, signal));
        let thawed = if can_freeze { self.thaw() } else { Ok(()) };
        sent.and(thawed)
    }

    fn wait_empty(&self, deadline: Instant) -> Result<(), Error> {
        let mut pause = Duration::from_micros(200);
        while !self.pids()?.is_empty() {
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: "processes to exit",
                    path: self.primary_dir().unwrap_or_default(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        Ok(())
    }
}

fn signal_all(pids: &[i32], signal: Signal) -> Result<(), Error> {
    for &pid in pids {
        match kill(Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(source) => {
                return Err(Error::Signal {
                    pid,
                    signal: signal as i32,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// v1: FREEZING can last a while, and a task that forks during it can leave the state stuck,
/// so the request is written again on each poll (as the kernel documentation advises).
fn freeze_v1(dir: &Path) -> Result<(), Error> {
    let state = dir.join("freezer.state");
    poll_until(dir, "the freezer to report FROZEN", || {
        fs::write_path(&state, "FROZEN")?;
        Ok(fs::read(&state)?.trim() == "FROZEN")
    })
}

/// v2: the kernel sets `frozen 1` in `cgroup.events` once every task has stopped.
fn freeze_v2(dir: &Path) -> Result<(), Error> {
    fs::write(dir, "cgroup.freeze", "1")?;
    let events = dir.join("cgroup.events");
    poll_until(dir, "cgroup.events to report frozen", || {
        Ok(fs::keyed(&fs::read(&events)?, "frozen") == Some(1))
    })
}

fn poll_until(
    dir: &Path,
    what: &'static str,
    mut done: impl FnMut() -> Result<bool, Error>,
) -> Result<(), Error> {
    let deadline = Instant::now() + PATIENCE;
    let mut pause = Duration::from_micros(100);
    while !done()? {
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what,
                path: dir.to_path_buf(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
    Ok(())
}
