//! Fixtures of the `jaula` (virtual server) suites: a private JAULA_HOME and state root per
//! test, a runner with a timeout, and a guard that destroys every server the test built.
//!
//! Server names are also cgroup names (`jaula/NAME`), which are global: every name a test
//! uses gets this process's pid and a sequence number, so parallel tests (and other suites)
//! never share a cgroup.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

pub const JAULA: &str = env!("CARGO_BIN_EXE_jaula");
/// How long one command may take before the test fails.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// A server name unique to this process and call.
pub fn unique_name(tag: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

/// The result of one `jaula` run.
#[derive(Debug)]
pub struct Out {
    pub args: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    /// Asserts success and returns self.
    pub fn ok(&self) -> &Out {
        assert!(
            self.status.success(),
            "{:?} failed ({}): {}{}",
            self.args,
            self.code(),
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts failure with exactly one line on stderr that contains `needle`.
    pub fn fails_with(&self, needle: &str) -> &Out {
        assert!(
            !self.status.success(),
            "{:?} succeeded: {}",
            self.args,
            self.stdout
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{:?}: want one error line, got {:?}",
            self.args,
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "{:?}: {:?} does not contain {needle:?}",
            self.args,
            self.stderr
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{:?}: bad JSON ({e}): {}", self.args, self.stdout))
    }
}

/// A private home and state root; destroys its servers on drop.
pub struct Jaula {
    dir: TempDir,
}

impl Default for Jaula {
    fn default() -> Self {
        Self::new()
    }
}

impl Jaula {
    pub fn new() -> Jaula {
        let dir = tempfile::Builder::new()
            .prefix("jaula-server-test-")
            .tempdir()
            .unwrap();
        // A server's root (an unprivileged host uid) must pass through to its rootfs.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
        fs::create_dir(dir.path().join("home")).unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        Jaula { dir }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// `jaula --home H --root R ARGS`, as a command to adjust and spawn.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(JAULA);
        c.arg("--home")
            .arg(self.home())
            .arg("--root")
            .arg(self.root())
            .args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs `jaula ARGS` to the end (stdin /dev/null).
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_cmd(self.command(args), args)
    }

    pub fn run_cmd(&self, cmd: Command, args: &[&str]) -> Out {
        self.run_cmd_timeout(cmd, args, CMD_TIMEOUT)
    }

    /// `run` with a longer limit (a debootstrap build).
    pub fn run_timeout(&self, args: &[&str], limit: Duration) -> Out {
        self.run_cmd_timeout(self.command(args), args, limit)
    }

    pub fn run_cmd_timeout(&self, mut cmd: Command, args: &[&str], limit: Duration) -> Out {
        // Files, not pipes: a started server's supervisor must not hold our pipes open.
        let n = unique_name("out");
        let (o, e) = (
            self.dir.path().join(format!("{n}.out")),
            self.dir.path().join(format!("{n}.err")),
        );
        cmd.stdout(fs::File::create(&o).unwrap())
            .stderr(fs::File::create(&e).unwrap());
        let mut child = cmd.spawn().expect("spawn jaula");
        let status =
            wait_timeout(&mut child, limit).unwrap_or_else(|| panic!("{args:?} timed out"));
        Out {
            args: args.iter().map(|s| s.to_string()).collect(),
            status,
            stdout: fs::read_to_string(&o).unwrap_or_default(),
            stderr: fs::read_to_string(&e).unwrap_or_default(),
        }
    }

    /// Names of the entries of the home (servers and anything left behind), without `.lock`.
    pub fn home_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.home())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n != ".lock")
            .collect();
        v.sort();
        v
    }

    /// The `list --json` row of `name`.
    pub fn list_row(&self, name: &str) -> Option<Value> {
        let rows = self.run(&["list", "--json"]).ok().json();
        rows.as_array()?.iter().find(|r| r["name"] == name).cloned()
    }

    /// Builds a busybox server with `extra` options.
    pub fn busybox(&self, name: &str, extra: &[&str]) -> Out {
        let mut args = vec!["build", name, "--method", "busybox"];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

impl Drop for Jaula {
    fn drop(&mut self) {
        for name in self.home_entries() {
            if name.starts_with('.') {
                continue;
            }
            let _ = self.run(&["destroy", &name, "--yes", "--force"]);
        }
    }
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `f` until it returns `Some` or `limit` passes.
pub fn poll<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True when process `pid` exists and is not a zombie.
pub fn pid_alive(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// cgroup directories of `name` under any hierarchy (should be none after destroy).
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let p = e.path().join("jaula").join(name);
            if p.exists() {
                out.push(p);
            }
        }
    }
    let unified = Path::new("/sys/fs/cgroup/jaula").join(name);
    if unified.exists() {
        out.push(unified);
    }
    out
}
