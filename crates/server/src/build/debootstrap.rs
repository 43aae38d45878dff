//! The `debootstrap` method: a real Debian from a mirror, with progress parsed from
//! debootstrap's `I:` lines.
//!
//! debootstrap mounts `/proc` and `/sys` inside the target while it works. It runs in a
//! private mount namespace (`unshare --mount`) so that a debootstrap killed midway cannot
//! leave those mounts behind on the host, and in its own process group so cancelling kills
//! its downloads and dpkg runs too.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::{BuildError, Cancel, Progress};

const DEBOOTSTRAP: &str = "/usr/sbin/debootstrap";
const UNSHARE: &str = "/usr/bin/unshare";
/// Used when the host's apt sources name no Debian mirror.
pub const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

/// What `jaula build --method debootstrap` was asked for.
#[derive(Debug, Clone, Default)]
pub struct DebootstrapOptions {
    pub suite: String,
    /// Default: [`default_mirror`].
    pub mirror: Option<String>,
    /// `minbase`, `buildd`, ... (debootstrap's default when unset).
    pub variant: Option<String>,
    /// Extra packages.
    pub include: Vec<String>,
}

/// Fails when debootstrap is not installed.
pub fn check_installed() -> Result<(), BuildError> {
    if Path::new(DEBOOTSTRAP).is_file() {
        Ok(())
    } else {
        Err(BuildError::MissingTool {
            program: "debootstrap",
            path: DEBOOTSTRAP.into(),
        })
    }
}

/// The host's Debian mirror, from apt's sources (deb822 `.sources` files or `sources.list`).
pub fn default_mirror() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            if f.extension().is_some_and(|e| e == "sources") {
                mirror_from_deb822(&text)
            } else {
                mirror_from_list(&text)
            }
        })
        .next()
        .unwrap_or_else(|| FALLBACK_MIRROR.into())
}

/// A URI that is a Debian archive (not security, not a third-party repository).
fn is_debian_mirror(uri: &str, suites: &[&str]) -> bool {
    let u = uri.trim_end_matches('/');
    (u.starts_with("http://") || u.starts_with("https://"))
        && u.ends_with("/debian")
        && suites
            .iter()
            .any(|s| !s.contains("security") && !s.contains('/'))
}

fn mirror_from_list(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        if words.next()? != "deb" {
            return None;
        }
        let mut rest: Vec<&str> = words.collect();
        if rest.first()?.starts_with('[') {
            let end = rest.iter().position(|w| w.ends_with(']'))?;
            rest.drain(..=end);
        }
        let uri = *rest.first()?;
        is_debian_mirror(uri, &rest[1..2.min(rest.len())]).then(|| uri.trim_end_matches('/').into())
    })
}

fn mirror_from_deb822(text: &str) -> Option<String> {
    text.split("\n\n").find_map(|para| {
        let field = |name: &str| {
            para.lines()
                .filter(|l| !l.starts_with('#'))
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
        };
        let types = field("Types")?;
        if !types.split_whitespace().any(|t| t == "deb") || field("Enabled") == Some("no") {
            return None;
        }
        let suites: Vec<&str> = field("Suites")?.split_whitespace().collect();
        field("URIs")?
            .split_whitespace()
            .find(|u| is_debian_mirror(u, &suites))
            .map(|u| u.trim_end_matches('/').to_string())
    })
}

/// debootstrap's command line for `rootfs`.
fn args(rootfs: &Path, opts: &DebootstrapOptions, want_systemd: bool) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(v) = &opts.variant {
        a.push(format!("--variant={v}"));
    }
    let mut include = opts.include.clone();
    if want_systemd && !include.iter().any(|p| p == "systemd-sysv") {
        include.push("systemd-sysv".into());
    }
    if !include.is_empty() {
        a.push(format!("--include={}", include.join(",")));
    }
    a.push(opts.suite.clone());
    a.push(rootfs.to_string_lossy().into_owned());
    a.push(opts.mirror.clone().unwrap_or_else(default_mirror));
    a
}

/// Runs debootstrap into `rootfs` (an existing, empty directory).
pub fn run(
    rootfs: &Path,
    opts: &DebootstrapOptions,
    want_systemd: bool,
    progress: &mut dyn Progress,
    cancel: &Cancel,
) -> Result<(), BuildError> {
    let io_err = BuildError::io("cannot run", Path::new(DEBOOTSTRAP));
    let mut cmd = if Path::new(UNSHARE).is_file() {
        let mut c = Command::new(UNSHARE);
        c.args(["--mount", "--propagation", "private", DEBOOTSTRAP]);
        c
    } else {
        Command::new(DEBOOTSTRAP)
    };
    // debootstrap prints I:/W:/E: lines on both streams: one pipe keeps their order.
    let (reader, writer) = std::io::pipe().map_err(io_err)?;
    let writer2 = writer
        .try_clone()
        .map_err(BuildError::io("cannot run", Path::new(DEBOOTSTRAP)))?;
    cmd.args(args(rootfs, opts, want_systemd))
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(BuildError::io("cannot run", Path::new(DEBOOTSTRAP)))?;
    drop(cmd);
    let pgid = Pid::from_raw(child.id() as i32);
    let done = Arc::new(AtomicBool::new(false));
    let watcher = spawn_canceller(pgid, cancel.clone(), done.clone());
    let mut tail = Vec::new();
    let mut parser = ProgressParser::default();
    for line in BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        parser.feed(&line, progress);
        tail.push(line);
        if tail.len() > 50 {
            tail.remove(0);
        }
    }
    let status = child
        .wait()
        .map_err(BuildError::io("cannot wait for", Path::new(DEBOOTSTRAP)));
    done.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    // Stragglers of the group (a download that outlived its script) must not write into a
    // directory that is about to be removed.
    let _ = killpg(pgid, Signal::SIGKILL);
    cancel.check()?;
    let status = status?;
    if status.success() {
        return Ok(());
    }
    Err(BuildError::Debootstrap {
        status: status.to_string(),
        message: failure_message(&tail, rootfs),
    })
}

/// Kills debootstrap's process group once the build is cancelled.
fn spawn_canceller(
    pgid: Pid,
    cancel: Cancel,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !done.load(Ordering::SeqCst) {
            if cancel.is_cancelled() {
                let _ = killpg(pgid, Signal::SIGTERM);
                std::thread::sleep(Duration::from_millis(500));
                let _ = killpg(pgid, Signal::SIGKILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// The most useful line of a failed run: its last `E:` line, else its last line.
fn failure_message(tail: &[String], rootfs: &Path) -> String {
    let from_output = tail
        .iter()
        .rev()
        .find(|l| l.starts_with("E: "))
        .or_else(|| tail.iter().rev().find(|l| !l.trim().is_empty()))
        .cloned();
    let from_log = || {
        let log = std::fs::read_to_string(rootfs.join("debootstrap/debootstrap.log")).ok()?;
        log.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(str::to_string)
    };
    from_output
        .or_else(from_log)
        .unwrap_or_else(|| "no output".into())
}

/// Turns `I: Retrieving foo 1.2` lines into phases and counted steps.
#[derive(Debug, Default)]
struct ProgressParser {
    phase: String,
    count: u64,
    /// Packages debootstrap said it will install, when it said so.
    total: Option<u64>,
}

impl ProgressParser {
    fn feed(&mut self, line: &str, progress: &mut dyn Progress) {
        let Some(msg) = line.strip_prefix("I: ") else {
            return;
        };
        if let Some(list) = msg.strip_prefix("Found additional required dependencies: ") {
            self.total = Some(self.total.unwrap_or(0) + list.split_whitespace().count() as u64);
        }
        let (verb, rest) = msg.split_once(' ').unwrap_or((msg, ""));
        let phase = match verb {
            "Retrieving" | "Validating" | "Extracting" | "Unpacking" | "Configuring"
            | "Installing" => verb.to_ascii_lowercase(),
            _ => {
                progress.phase(msg.trim().trim_end_matches('.'));
                return;
            }
        };
        if phase != self.phase {
            self.phase = phase;
            self.count = 0;
            progress.phase(&self.phase);
        }
        self.count += 1;
        let pkg = rest
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches('.');
        progress.step(self.count, self.total, pkg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_from_deb822_skips_security_and_third_parties() {
        let text = "Types: deb\n# http://snapshot.debian.org/archive/debian/x\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            mirror_from_deb822(text).as_deref(),
            Some("http://deb.debian.org/debian")
        );
        let only_sec =
            "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n";
        assert_eq!(mirror_from_deb822(only_sec), None);
        let node = "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n";
        assert_eq!(mirror_from_deb822(node), None);
    }

    #[test]
    fn mirror_from_sources_list() {
        let text = "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n# deb http://x/debian sid main\ndeb [arch=amd64 signed-by=/k] http://ftp.de.debian.org/debian/ bookworm main\n";
        assert_eq!(
            mirror_from_list(text).as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
    }

    #[test]
    fn args_add_systemd_for_init() {
        let o = DebootstrapOptions {
            suite: "bookworm".into(),
            mirror: Some("http://m/debian".into()),
            variant: Some("minbase".into()),
            include: vec![],
        };
        let a = args(Path::new("/r"), &o, true);
        assert_eq!(
            a,
            [
                "--variant=minbase",
                "--include=systemd-sysv",
                "bookworm",
                "/r",
                "http://m/debian"
            ]
        );
        assert_eq!(args(Path::new("/r"), &o, false).len(), 4);
    }

    #[derive(Default)]
    struct Rec(Vec<String>);
    impl Progress for Rec {
        fn phase(&mut self, p: &str) {
            self.0.push(format!("phase {p}"));
        }
        fn step(&mut self, d: u64, t: Option<u64>, x: &str) {
            self.0.push(format!("{d}/{t:?} {x}"));
        }
    }

    #[test]
    fn progress_lines_become_phases_and_steps() {
        let mut p = ProgressParser::default();
        let mut r = Rec::default();
        for l in [
            "I: Retrieving InRelease ",
            "I: Found additional required dependencies: a b c ",
            "I: Retrieving libc6 2.36",
            "I: Retrieving zlib1g 1",
            "I: Extracting libc6...",
            "W: something",
        ] {
            p.feed(l, &mut r);
        }
        assert_eq!(
            r.0,
            [
                "phase retrieving",
                "1/None InRelease",
                "phase Found additional required dependencies: a b c",
                "2/Some(3) libc6",
                "3/Some(3) zlib1g",
                "phase extracting",
                "1/Some(3) libc6",
            ]
        );
    }

    #[test]
    fn failure_prefers_error_lines() {
        let tail = vec![
            "I: Retrieving InRelease".to_string(),
            "E: Failed getting release file http://x".into(),
            "".into(),
        ];
        assert_eq!(
            failure_message(&tail, Path::new("/nonexistent")),
            "E: Failed getting release file http://x"
        );
    }
}
