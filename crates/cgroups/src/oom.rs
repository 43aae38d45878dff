//! Out-of-memory events: the kill counter, and a watcher to wait on.
//!
//! v1 signals an OOM through an eventfd registered in `cgroup.event_control` against
//! `memory.oom_control`; v2 bumps `oom_kill` in `memory.events` and reports the change to
//! inotify. Either way the watcher exposes one fd, so a caller can poll it with others.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::apply::Target;
use crate::{fs, Cgroup, Error};

impl Cgroup {
    /// How many processes the kernel has OOM-killed in this cgroup (and below it).
    pub fn oom_kill_count(&self) -> Result<u64, Error> {
        match self.target("memory", "memory", "OOM events")? {
            Target::V1(d) => keyed(&d.join("memory.oom_control"), "oom_kill"),
            Target::V2(d) => keyed(&d.join("memory.events"), "oom_kill"),
        }
    }

    /// Starts watching for OOM events from now on.
    pub fn oom_watcher(&self) -> Result<OomWatcher, Error> {
        match self.target("memory", "memory", "OOM events")? {
            Target::V1(d) => OomWatcher::v1(&d),
            Target::V2(d) => OomWatcher::v2(&d),
        }
    }
}

fn keyed(path: &Path, key: &str) -> Result<u64, Error> {
    let text = fs::read(path)?;
    fs::keyed(&text, key).ok_or_else(|| Error::Parse {
        path: path.to_path_buf(),
        reason: format!("no {key} line"),
    })
}

/// What [`OomWatcher::wait`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomEvent {
    /// The cgroup ran out of memory (v1) or a process was OOM-killed (v2).
    Oom,
    /// The cgroup was removed.
    Gone,
    /// The timeout passed first.
    Timeout,
}

/// A registration for OOM notifications of one cgroup.
#[derive(Debug)]
pub struct OomWatcher {
    dir: PathBuf,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// The control file must stay open for the registration to live.
    V1 {
        event: EventFd,
        _control: File,
    },
    V2 {
        inotify: Inotify,
        seen: u64,
    },
}

impl OomWatcher {
    fn v1(dir: &Path) -> Result<OomWatcher, Error> {
        let control_path = dir.join("memory.oom_control");
        let control = File::open(&control_path).map_err(|source| Error::Open {
            path: control_path,
            source,
        })?;
        let event = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).map_err(
            |source| Error::OomNotify {
                path: dir.to_path_buf(),
                source,
            },
        )?;
        let line = format!("{} {}", event.as_fd().as_raw_fd(), control.as_raw_fd());
        fs::write(dir, "cgroup.event_control", &line)?;
        Ok(OomWatcher {
            dir: dir.to_path_buf(),
            kind: Kind::V1 {
                event,
                _control: control,
            },
        })
    }

    fn v2(dir: &Path) -> Result<OomWatcher, Error> {
        let notify_err = |source| Error::OomNotify {
            path: dir.join("memory.events"),
            source,
        };
        let inotify =
            Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(notify_err)?;
        inotify
            .add_watch(&dir.join("memory.events"), AddWatchFlags::IN_MODIFY)
            .map_err(notify_err)?;
        // Read the counter after the watch exists, so no change can fall between the two.
        let seen = keyed(&dir.join("memory.events"), "oom_kill")?;
        Ok(OomWatcher {
            dir: dir.to_path_buf(),
            kind: Kind::V2 { inotify, seen },
        })
    }

    /// Waits for the next OOM event, at most `timeout` (`None`: forever).
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<OomEvent, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(event) = self.check()? {
                return Ok(event);
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
                    None => return Ok(OomEvent::Timeout),
                },
                None => PollTimeout::NONE,
            };
            let mut fds = [PollFd::new(self.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, left) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(source) => {
                    return Err(Error::OomNotify {
                        path: self.dir.clone(),
                        source,
                    })
                }
            }
        }
    }

    /// Consumes pending notifications and says what they meant, without blocking.
    fn check(&mut self) -> Result<Option<OomEvent>, Error> {
        let gone = !self.dir.exists();
        match &mut self.kind {
            Kind::V1 { event, .. } => match event.read() {
                // v1 also fires the eventfd when the cgroup is removed.
                Ok(_) if gone => Ok(Some(OomEvent::Gone)),
                Ok(_) => Ok(Some(OomEvent::Oom)),
                Err(nix::errno::Errno::EAGAIN) if gone => Ok(Some(OomEvent::Gone)),
                Err(nix::errno::Errno::EAGAIN) => Ok(None),
                Err(source) => Err(Error::OomNotify {
                    path: self.dir.clone(),
                    source,
                }),
            },
            Kind::V2 { inotify, seen } => {
                // Draining is best effort: the counter below is the truth.
                let _ = inotify.read_events();
                if gone {
                    return Ok(Some(OomEvent::Gone));
                }
                let now = keyed(&self.dir.join("memory.events"), "oom_kill")?;
                if now > *seen {
                    *seen = now;
                    return Ok(Some(OomEvent::Oom));
                }
                Ok(None)
            }
        }
    }
}

impl AsFd for OomWatcher {
    /// Readable when there may be news; call [`OomWatcher::wait`] with a zero timeout then.
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            Kind::V1 { event, .. } => event.as_fd(),
            Kind::V2 { inotify, .. } => inotify.as_fd(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn v2_watcher_wakes_on_a_new_oom_kill() {
        let t = TempDir::new("oomv2");
        t.file("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
        let mut w = OomWatcher::v2(t.path()).unwrap();
        assert_eq!(
            w.wait(Some(Duration::from_millis(20))).unwrap(),
            OomEvent::Timeout
        );
        let path = t.path().join("memory.events");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            // In place, same length: a truncating write could be read half-done.
            let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            std::io::Write::write_all(&mut f, b"low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n")
                .unwrap();
        });
        assert_eq!(
            w.wait(Some(Duration::from_secs(10))).unwrap(),
            OomEvent::Oom
        );
        writer.join().unwrap();
        // Seen once, not again.
        assert_eq!(w.wait(Some(Duration::ZERO)).unwrap(), OomEvent::Timeout);
    }

    #[test]
    fn v2_watcher_reports_a_removed_cgroup() {
        let t = TempDir::new("oomgone");
        t.file("x/memory.events", "oom_kill 0\n");
        let mut w = OomWatcher::v2(&t.path().join("x")).unwrap();
        std::fs::remove_dir_all(t.path().join("x")).unwrap();
        assert_eq!(
            w.wait(Some(Duration::from_secs(5))).unwrap(),
            OomEvent::Gone
        );
    }
}
