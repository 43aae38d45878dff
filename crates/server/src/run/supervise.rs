//! The per-server supervisor: the one process that stays while a server runs.
//!
//! It creates and starts the container (so the container's init is its child, which gives
//! it the exit status), then sleeps in `poll` on two fds: a pidfd of the init and an
//! inotify watch of the console log. It caps the log by rotation and, when the init exits,
//! records the exit status and cleans up (network, runtime record, cgroup).
//!
//! Why a log file and not a pipe: if the supervisor is killed, a pipe's writers would get
//! SIGPIPE and the server's services would die with it. With a file opened `O_APPEND` the
//! server never notices; only the cap stops being enforced until the next start. Rotation
//! copies the log's newest `LOG_CAP` bytes to `console.log.1` and truncates it; `O_APPEND`
//! writers continue at the new end. Lines written between the copy and the truncation are
//! lost: a bounded log accepts that.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use jaula_runtime::{CreateOptions, InitMode, Stdio};

use super::start::{FAILED, READY};
use super::{net, Manager, RunError};
use crate::home::Server;
use crate::spec::{pid1, Pid1};

/// Size at which `console.log` is rotated (one old file, `console.log.1`, is kept).
pub const LOG_CAP: u64 = 1 << 20;
const EXIT_RECORD: &str = "exit.json";

/// How the server's last run ended, written by its supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    pub pid: i32,
    /// Exit code, when the init exited.
    pub code: Option<i32>,
    /// Signal number, when the init was killed.
    pub signal: Option<i32>,
    /// Seconds since the epoch.
    pub finished: u64,
}

impl ExitRecord {
    /// Reads the record of `server`'s last run.
    pub fn load(server: &Server) -> Option<ExitRecord> {
        let text = std::fs::read(server.run_dir().join(EXIT_RECORD)).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

impl Manager {
    /// The supervisor's whole life. `report` is the pipe `start` reads; it gets one line.
    /// Returns when the server has stopped and been cleaned up.
    pub fn supervise(&self, name: &str, mut report: File) -> Result<ExitRecord, RunError> {
        detach();
        let server = match self.home.open(name) {
            Ok(s) => s,
            Err(e) => {
                let _ = writeln!(report, "{FAILED}{e}");
                return Err(e.into());
            }
        };
        let pid = match self.launch(&server) {
            Ok(pid) => pid,
            Err(e) => {
                let _ = writeln!(report, "{FAILED}{}", chain(&e));
                return Err(e);
            }
        };
        let _ = writeln!(report, "{READY}");
        drop(report);
        quiet_stdio();
        jaula_sys::process::set_name("jaula-sup");
        let exit = watch(&server, pid);
        let path = server.run_dir().join(EXIT_RECORD);
        let _ = std::fs::write(&path, serde_json::to_vec(&exit).unwrap_or_default());
        self.cleanup_run(&server, Some(pid))?;
        reap_strays();
        Ok(exit)
    }

    /// create, network, start: undone completely if any step fails.
    fn launch(&self, server: &Server) -> Result<i32, RunError> {
        let _ = std::fs::remove_file(server.run_dir().join(EXIT_RECORD));
        let stdio = console_stdio(&server.console_log())?;
        let opts = CreateOptions {
            bundle: server.run_dir(),
            stdio,
            init: match pid1(&server.config) {
                Pid1::Reaper => InitMode::Reaper,
                Pid1::Program => InitMode::Exec,
            },
            ..CreateOptions::default()
        };
        self.runtime
            .create(&server.name, opts)
            .map_err(RunError::runtime(&server.name))?;
        let started = self
            .runtime
            .state(&server.name)
            .map_err(RunError::runtime(&server.name))
            .and_then(|st| {
                st.pid.ok_or_else(|| RunError::NotRunning {
                    name: server.name.clone(),
                })
            })
            .and_then(|pid| self.delegate_if_booting(server, pid).map(|()| pid))
            .and_then(|pid| net::setup(self, server, pid).map(|()| pid))
            .and_then(|pid| {
                self.runtime
                    .start(&server.name)
                    .map(|()| pid)
                    .map_err(RunError::runtime(&server.name))
            });
        if started.is_err() {
            // Best effort: the error to report is the one that stopped the start.
            let _ = net::teardown_recorded(server);
            let _ = self.runtime.delete(&server.name, true);
        }
        started
    }
}

impl Manager {
    /// A server that boots its own init gets its cgroup delegated (see `delegate`).
    fn delegate_if_booting(&self, server: &Server, pid: i32) -> Result<(), RunError> {
        if server.config.init.style != crate::config::InitStyle::Init
            || server.config.security.privileged
        {
            return Ok(());
        }
        let rec = self
            .runtime
            .record(&server.name)
            .map_err(RunError::runtime(&server.name))?;
        super::delegate::delegate(
            pid,
            &rec.cgroup_path,
            crate::idmap::host_base(&server.config),
        )
    }
}

/// The error and its causes on one line ("a: b: c").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Own session (no terminal signals from the shell that ran `start`) and subreaper (the
/// container's init stays our child even if the runtime double-forks).
fn detach() {
    let _ = nix::unistd::setsid();
    // Not to keep the caller's working directory (a mount point, maybe) busy.
    let _ = std::env::set_current_dir("/");
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// The supervisor has nothing to say once it reported: its stdio goes to /dev/null so that
/// nothing (a closed terminal, the start pipe) can hurt it.
fn quiet_stdio() {
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            let _ = jaula_sys::process::dup_onto(null.as_fd(), fd);
        }
    }
}

/// /dev/null in, the console log (append) out and err.
fn console_stdio(log: &Path) -> Result<Stdio, RunError> {
    let null = File::open("/dev/null").map_err(RunError::io("cannot open", "/dev/null"))?;
    let out = File::options()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(log)
        .map_err(RunError::io("cannot open", log))?;
    let err = out.try_clone().map_err(RunError::io("cannot open", log))?;
    Ok(Stdio::Fds {
        stdin: OwnedFd::from(null),
        stdout: OwnedFd::from(out),
        stderr: OwnedFd::from(err),
    })
}

/// Sleeps until the init exits, rotating the log as it grows; returns how it ended.
fn watch(server: &Server, pid: i32) -> ExitRecord {
    let log = server.console_log();
    let pidfd = jaula_sys::process::pidfd_open(Pid::from_raw(pid)).ok();
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok();
    if let Some(i) = &inotify {
        let _ = i.add_watch(&log, AddWatchFlags::IN_MODIFY);
    }
    loop {
        rotate_if_needed(&log, LOG_CAP);
        let mut fds = Vec::new();
        if let Some(p) = &pidfd {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        if let Some(i) = &inotify {
            fds.push(PollFd::new(i.as_fd(), PollFlags::POLLIN));
        }
        // Without a pidfd (very old kernel) fall back to checking every few seconds.
        let timeout = if pidfd.is_some() {
            PollTimeout::NONE
        } else {
            PollTimeout::from(5000u16)
        };
        let _ = poll(&mut fds, timeout);
        // The pidfd, when there is one, is the first fd.
        let exited = pidfd.is_some()
            && fds
                .first()
                .and_then(|f| f.revents())
                .is_some_and(|r| r.contains(PollFlags::POLLIN));
        if let Some(i) = &inotify {
            let _ = i.read_events();
        }
        if exited || (pidfd.is_none() && !Path::new(&format!("/proc/{pid}")).exists()) {
            break;
        }
    }
    rotate_if_needed(&log, LOG_CAP);
    exit_record(pid)
}

fn exit_record(pid: i32) -> ExitRecord {
    let finished = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (code, signal) = match waitpid(Pid::from_raw(pid), None) {
        Ok(WaitStatus::Exited(_, c)) => (Some(c), None),
        Ok(WaitStatus::Signaled(_, s, _)) => (None, Some(s as i32)),
        // Not our child after all (the runtime's init was reparented elsewhere).
        _ => (None, None),
    };
    ExitRecord {
        pid,
        code,
        signal,
        finished,
    }
}

/// Reaps processes of the server that were reparented to us (we are a subreaper) when
/// its init died.
fn reap_strays() {
    while let Ok(st) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if st == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Moves the log to `.1` and empties it once it is larger than `cap`. `.1` keeps at most
/// the last `cap` bytes (from a line start): a writer faster than us must not make it grow.
pub fn rotate_if_needed(log: &Path, cap: u64) {
    let Ok(meta) = std::fs::metadata(log) else {
        return;
    };
    if meta.len() <= cap {
        return;
    }
    let old = log.with_extension("log.1");
    let tmp = log.with_extension("log.1.tmp");
    if copy_tail(log, &tmp, cap)
        .and_then(|()| std::fs::rename(&tmp, &old))
        .is_err()
    {
        let _ = std::fs::remove_file(&tmp);
        return;
    }
    if let Ok(f) = File::options().write(true).open(log) {
        let _ = f.set_len(0);
    }
}

/// Copies the last `cap` bytes of `from` (starting after a newline, when there is one in
/// the first part of that window) to a new file `to`.
fn copy_tail(from: &Path, to: &Path, cap: u64) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
    let mut src = BufReader::new(File::open(from)?);
    let len = src.get_ref().metadata()?.len();
    let start = len.saturating_sub(cap);
    src.seek(SeekFrom::Start(start))?;
    if start > 0 {
        let mut partial = Vec::new();
        src.read_until(b'\n', &mut partial)?;
        if partial.last() != Some(&b'\n') {
            // No line start in the window: keep it whole.
            src.seek(SeekFrom::Start(start))?;
        }
    }
    let mut dst = File::options()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(to)?;
    std::io::copy(&mut src.take(cap), &mut dst)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn rotation_keeps_one_old_file() {
        let t = TempDir::new("rotate");
        let log = t.path().join("console.log");
        std::fs::write(&log, vec![b'a'; 100]).unwrap();
        rotate_if_needed(&log, 200);
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 100);
        let mut f = File::options().append(true).open(&log).unwrap();
        f.write_all(&[b'b'; 150]).unwrap();
        rotate_if_needed(&log, 200);
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
        // Without line breaks the old file is the last `cap` bytes.
        let old = std::fs::read(t.path().join("console.log.1")).unwrap();
        assert_eq!(old.len(), 200);
        assert!(old.ends_with(&[b'b'; 150]));
        // The appending writer goes on at the new end.
        f.write_all(b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "new\n");
    }

    #[test]
    fn rotation_keeps_whole_recent_lines() {
        let t = TempDir::new("rotate-lines");
        let log = t.path().join("console.log");
        let line = |c: u8| {
            let mut l = vec![c; 99];
            l.push(b'\n');
            l
        };
        std::fs::write(&log, [line(b'1'), line(b'2'), line(b'3')].concat()).unwrap();
        rotate_if_needed(&log, 250);
        let old = std::fs::read(t.path().join("console.log.1")).unwrap();
        assert_eq!(old, [line(b'2'), line(b'3')].concat());
    }

    #[test]
    fn error_chains_are_one_line() {
        let e = RunError::Io {
            op: "cannot open",
            path: "/x".into(),
            source: std::io::Error::other("boom"),
        };
        assert_eq!(chain(&e), "cannot open /x: boom");
    }
}
