//! Fixtures shared by the `jaula-oci` integration suites: busybox rootfs, bundles, a runner.
//!
//! Every test gets its own state root, bundle directories and container ids, so the suites
//! run in parallel threads without sharing a mutable path. Everything lives under temporary
//! directories that are removed on drop; containers are force-deleted by a guard.
//!
//! `JAULA_TEST_RUNTIME=/usr/sbin/runc cargo test ...` runs the suites against another runtime,
//! which is how the suites themselves are checked against a reference implementation.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;

/// The probe binary, copied into every rootfs as `/bin/probe`.
pub const PROBE: &str = env!("CARGO_BIN_EXE_jaula-probe");
/// Debian's static busybox (package `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";
/// How long one runtime command may take before the test fails.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// The runtime under test: `jaula-oci`, unless `JAULA_TEST_RUNTIME` names another.
pub fn runtime() -> PathBuf {
    std::env::var_os("JAULA_TEST_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_jaula-oci")))
}

/// A container id unique to this process and call, readable in `ps` and cgroup paths.
pub fn unique_id(tag: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("jt-{tag}-{}-{n}", std::process::id())
}

// ---------------------------------------------------------------------------------------------
// Rootfs and bundles.
// ---------------------------------------------------------------------------------------------

/// Applet names of the host busybox, computed once per test process.
fn applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .expect("busybox-static must be installed: apt-get install busybox-static");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            // `busybox` itself is listed; linking it would replace the binary by a loop.
            .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
            .map(String::from)
            .collect()
    })
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n";
const GROUP: &str = "root:x:0:\nuser:x:1000:\n";

/// Fills `root` with busybox, its applet links, the probe and a minimal /etc.
///
/// The binaries are copied, not linked: a container that can write its rootfs must never
/// be able to modify a host file through it.
pub fn build_rootfs(root: &Path) {
    for d in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/user",
        "mnt",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    fs::copy(PROBE, root.join("bin/probe")).unwrap();
    for a in applets() {
        let link = root.join("bin").join(a);
        if !link.exists() {
            symlink("busybox", link).unwrap();
        }
    }
    fs::write(root.join("etc/passwd"), PASSWD).unwrap();
    fs::write(root.join("etc/group"), GROUP).unwrap();
}

/// Default mounts, as `runc spec` writes them.
fn default_mounts() -> Value {
    json!([
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
    ])
}

pub const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

pub const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

pub const READONLY_PATHS: [&str; 6] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/bus",
];

/// A `config.json` close to `runc spec`, except that the rootfs is writable (tests write
/// into it; `root.readonly` has its own test) and there are no ambient capabilities (they
/// need inheritable ones, which `runc spec` does not grant either).
pub fn default_config(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "jaula-test",
        "mounts": default_mounts(),
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS[..5]
        }
    })
}

/// A bundle directory: `rootfs/` plus a `config.json` written from `config` before use.
pub struct Bundle {
    dir: TempDir,
    pub config: Value,
}

impl Bundle {
    /// A busybox + probe rootfs with the default config running `args`.
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("jaula-bundle-")
            .tempdir()
            .unwrap();
        build_rootfs(&dir.path().join("rootfs"));
        Bundle {
            dir,
            config: default_config(args),
        }
    }

    /// A bundle running the probe with `args`.
    pub fn probe(args: &[&str]) -> Bundle {
        let mut full = vec!["/bin/probe"];
        full.extend_from_slice(args);
        Bundle::new(&full)
    }

    /// An empty bundle directory (no rootfs), for tests that build their own.
    pub fn empty(config: Value) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("jaula-bundle-")
            .tempdir()
            .unwrap();
        Bundle { dir, config }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Writes `config.json` from the current `config`.
    pub fn write_config(&self) {
        let text = serde_json::to_string_pretty(&self.config).unwrap();
        fs::write(self.path().join("config.json"), text).unwrap();
    }

    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
    }

    pub fn linux(&mut self) -> &mut Value {
        &mut self.config["linux"]
    }

    pub fn process(&mut self) -> &mut Value {
        &mut self.config["process"]
    }

    /// Adds a namespace entry, optionally joining `path`.
    pub fn add_namespace(&mut self, typ: &str, path: Option<&Path>) {
        let ns = self.config["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != typ);
        let mut entry = json!({"type": typ});
        if let Some(p) = path {
            entry["path"] = json!(p);
        }
        ns.push(entry);
    }

    pub fn remove_namespace(&mut self, typ: &str) {
        let ns = self.config["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != typ);
    }

    pub fn push_mount(&mut self, mount: Value) {
        self.config["mounts"].as_array_mut().unwrap().push(mount);
    }

    /// Sets all five capability sets to `caps`.
    pub fn set_caps(&mut self, caps: &[&str]) {
        self.config["process"]["capabilities"] = json!({
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": caps, "ambient": caps
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Running the runtime.
// ---------------------------------------------------------------------------------------------

/// The result of one runtime command.
#[derive(Debug)]
pub struct Out {
    pub args: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Where stdout went; a container started by `create` keeps writing there.
    pub stdout_path: PathBuf,
}

impl Out {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code, or 128 + signal when the command was killed.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .or_else(|| self.status.signal().map(|s| 128 + s))
            .unwrap_or(-1)
    }

    #[track_caller]
    pub fn ok(&self) -> &Out {
        assert!(self.success(), "expected success: {self:#?}");
        self
    }

    #[track_caller]
    pub fn fails(&self) -> &Out {
        assert!(!self.success(), "expected failure: {self:#?}");
        self
    }

    /// Asserts failure with `needle` in stderr.
    #[track_caller]
    pub fn fails_with(&self, needle: &str) -> &Out {
        self.fails();
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {self:#?}"
        );
        self
    }

    /// stdout as it is now, including what the container wrote after the runtime exited.
    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// What a command reads and where its output goes.
#[derive(Default)]
pub struct Io {
    /// Bytes fed on stdin (through a file, so that the runtime may hand it on).
    pub stdin: Option<Vec<u8>>,
    /// Paths opened as descriptors 3, 4, ... of the runtime (`--preserve-fds`); directories
    /// read-only, files read-write.
    pub extra_fds: Vec<PathBuf>,
}

/// Waits for `child` up to `limit`; kills it (it is ours) and returns `None` on timeout.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Polls `f` every few milliseconds until it returns `Some`, or panics after `limit`.
#[track_caller]
pub fn poll<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A runtime with its own state root (`--root`) and scratch directory.
pub struct Oci {
    dir: TempDir,
    seq: AtomicU32,
}

impl Default for Oci {
    fn default() -> Self {
        Self::new()
    }
}

impl Oci {
    pub fn new() -> Oci {
        let dir = tempfile::Builder::new()
            .prefix("jaula-oci-test-")
            .tempdir()
            .unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        Oci {
            dir,
            seq: AtomicU32::new(0),
        }
    }

    /// The state root passed as `--root`.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// A fresh file path in the scratch directory.
    pub fn scratch_file(&self, stem: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(format!("{stem}-{n}"))
    }

    /// The base command: the runtime with `--root`.
    pub fn command(&self) -> Command {
        let mut c = Command::new(runtime());
        c.arg("--root").arg(self.root());
        c
    }

    /// Runs the runtime with `args`, stdin from /dev/null.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_io(args, Io::default())
    }

    /// Runs the runtime with `args` and `io`.
    ///
    /// stdout and stderr go to files, never pipes: `create` hands its stdio to the container,
    /// which keeps them open long after the runtime exits.
    pub fn run_io(&self, args: &[&str], io: Io) -> Out {
        let mut cmd = self.command();
        cmd.args(args);
        let mut cmd = with_extra_fds(cmd, &io.extra_fds);
        let out_path = self.scratch_file("stdout");
        let err_path = self.scratch_file("stderr");
        cmd.stdout(fs::File::create(&out_path).unwrap());
        cmd.stderr(fs::File::create(&err_path).unwrap());
        cmd.stdin(match io.stdin {
            Some(data) => {
                let p = self.scratch_file("stdin");
                fs::write(&p, data).unwrap();
                Stdio::from(fs::File::open(&p).unwrap())
            }
            None => Stdio::null(),
        });
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", runtime()));
        let status = wait_timeout(&mut child, CMD_TIMEOUT);
        let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
        let status = status.unwrap_or_else(|| {
            panic!(
                "{args:?} timed out; stdout {:?} stderr {:?}",
                read(&out_path),
                read(&err_path)
            )
        });
        Out {
            args: args.iter().map(|s| s.to_string()).collect(),
            status,
            stdout: read(&out_path),
            stderr: read(&err_path),
            stdout_path: out_path,
        }
    }

    /// A guard for a new unique container id; the container is force-deleted on drop.
    pub fn container(&self, tag: &str) -> Container<'_> {
        Container {
            oci: self,
            id: unique_id(tag),
        }
    }

    /// `state ID` parsed, or `None` when the command fails.
    pub fn state(&self, id: &str) -> Option<Value> {
        let out = self.run(&["state", id]);
        out.success().then(|| out.json())
    }

    /// Entries under the state root (empty when nothing was left behind).
    pub fn root_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.root())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Wraps `cmd` in `sh` so that `paths` are opened as descriptors 3, 4, ... (directories
/// read-only, anything else read-write).
///
/// A shell redirection is the one way to hand numbered descriptors to a child without
/// `unsafe` (`pre_exec`) in the tests.
fn with_extra_fds(cmd: Command, paths: &[PathBuf]) -> Command {
    if paths.is_empty() {
        return cmd;
    }
    let mut script = String::from("exec \"$0\" \"$@\"");
    for (i, p) in paths.iter().enumerate() {
        let op = if p.is_dir() { "<" } else { "<>" };
        script.push_str(&format!(" {}{op}\"$JAULA_TEST_FD{}\"", 3 + i, 3 + i));
    }
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c")
        .arg(script)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (i, p) in paths.iter().enumerate() {
        sh.env(format!("JAULA_TEST_FD{}", 3 + i), p);
    }
    sh
}

/// A container id owned by one test; the container is force-deleted when this drops.
pub struct Container<'a> {
    pub oci: &'a Oci,
    pub id: String,
}

impl Container<'_> {
    /// `create --bundle B ID` after writing the bundle's config.
    pub fn create(&self, b: &Bundle) -> Out {
        self.create_with(b, &[], Io::default())
    }

    /// `create` with extra flags (placed before the id) and io.
    pub fn create_with(&self, b: &Bundle, flags: &[&str], io: Io) -> Out {
        b.write_config();
        let bundle = b.path().to_str().unwrap();
        let mut args = vec!["create", "--bundle", bundle];
        args.extend_from_slice(flags);
        args.push(&self.id);
        self.oci.run_io(&args, io)
    }

    /// Foreground `run --bundle B ID`: returns when the container exits.
    pub fn run(&self, b: &Bundle) -> Out {
        self.run_with(b, &[], Io::default())
    }

    pub fn run_with(&self, b: &Bundle, flags: &[&str], io: Io) -> Out {
        b.write_config();
        let bundle = b.path().to_str().unwrap();
        let mut args = vec!["run", "--bundle", bundle];
        args.extend_from_slice(flags);
        args.push(&self.id);
        self.oci.run_io(&args, io)
    }

    pub fn start(&self) -> Out {
        self.oci.run(&["start", &self.id])
    }

    pub fn kill(&self, signal: &str) -> Out {
        self.oci.run(&["kill", &self.id, signal])
    }

    pub fn delete(&self) -> Out {
        self.oci.run(&["delete", &self.id])
    }

    pub fn delete_force(&self) -> Out {
        self.oci.run(&["delete", "--force", &self.id])
    }

    pub fn state(&self) -> Option<Value> {
        self.oci.state(&self.id)
    }

    /// The `status` field of `state`, panicking when `state` fails.
    #[track_caller]
    pub fn status(&self) -> String {
        let out = self.oci.run(&["state", &self.id]);
        out.ok();
        out.json()["status"].as_str().unwrap_or_default().to_owned()
    }

    /// The init pid from `state`, panicking when there is none.
    #[track_caller]
    pub fn pid(&self) -> i32 {
        let st = self.state().expect("state of the container");
        st["pid"].as_i64().filter(|&p| p > 0).expect("pid in state") as i32
    }

    /// Polls `state` until the status is `want`.
    #[track_caller]
    pub fn wait_status(&self, want: &str) {
        poll(&format!("{} to be {want}", self.id), CMD_TIMEOUT, || {
            let st = self.state()?;
            (st["status"] == want).then_some(())
        });
    }

    /// create + start + wait until stopped; returns the container's stdout.
    #[track_caller]
    pub fn run_detached_to_end(&self, b: &Bundle) -> String {
        let out = self.create(b);
        out.ok();
        self.start().ok();
        self.wait_status("stopped");
        out.stdout_now()
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        // Never panic here: this also runs while a failed test unwinds.
        let mut cmd = self.oci.command();
        cmd.args(["delete", "--force", &self.id]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Ok(mut child) = cmd.spawn() {
            let _ = wait_timeout(&mut child, CMD_TIMEOUT);
        }
    }
}

/// The host side of `--console-socket`: the probe, run on the host, receives the pty master
/// and prints what the container writes.
pub struct ConsoleReceiver {
    child: Child,
    pub socket: PathBuf,
    out: PathBuf,
}

impl ConsoleReceiver {
    pub fn new(oci: &Oci) -> ConsoleReceiver {
        let socket = oci.scratch_file("console.sock");
        let out = oci.scratch_file("console.out");
        let child = Command::new(PROBE)
            .arg("console-socket")
            .arg(&socket)
            .stdout(fs::File::create(&out).unwrap())
            .spawn()
            .unwrap();
        poll("console socket", CMD_TIMEOUT, || {
            socket.exists().then_some(())
        });
        ConsoleReceiver { child, socket, out }
    }

    /// Waits for the container side to hang up and returns everything it wrote.
    pub fn finish(mut self) -> String {
        let st = wait_timeout(&mut self.child, CMD_TIMEOUT).expect("console receiver finished");
        assert!(st.success(), "console receiver failed: {st:?}");
        fs::read_to_string(&self.out).unwrap()
    }
}

impl Drop for ConsoleReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `b` in the foreground, asserts exit 0 and parses the probe's JSON output.
#[track_caller]
pub fn probe_json(oci: &Oci, tag: &str, b: &Bundle) -> Value {
    let c = oci.container(tag);
    let out = c.run(b);
    out.ok();
    out.json()
}

/// Like `probe_json` with the probe's `info`; `patch` edits the default config first.
#[track_caller]
pub fn probe_info(patch: impl FnOnce(&mut Bundle)) -> Value {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["info"]);
    patch(&mut b);
    probe_json(&oci, "info", &b)
}

// ---------------------------------------------------------------------------------------------
// Host-side observations.
// ---------------------------------------------------------------------------------------------

/// Mount points of the host (mount id, mount point), to compare before and after.
pub fn host_mounts() -> Vec<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut v: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().take(5).collect::<Vec<_>>().join(" "))
        .collect();
    v.sort();
    v
}

/// Host mount lines whose mount point contains `needle`.
pub fn host_mounts_containing(needle: &str) -> Vec<String> {
    host_mounts()
        .into_iter()
        .filter(|l| l.contains(needle))
        .collect()
}

/// Cgroup directories named `id` anywhere under /sys/fs/cgroup (six levels deep: the
/// runtime may nest below the test's own cgroup).
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: u32, found: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            let p = e.path();
            if e.file_name().to_str() == Some(id) {
                found.push(p.clone());
            }
            if depth > 0 {
                walk(&p, id, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), id, 5, &mut found);
    found
}

/// Host pids whose /proc/PID/cgroup mentions `id` (processes left in the container's cgroup).
pub fn pids_in_cgroups_named(id: &str) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .map(|c| c.lines().any(|l| l.split('/').any(|part| part == id)))
                .unwrap_or(false)
        })
        .collect()
}

/// True when `pid` exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// Waits until `pid` is gone (or a zombie).
#[track_caller]
pub fn wait_pid_gone(pid: i32) {
    poll(&format!("pid {pid} to exit"), CMD_TIMEOUT, || {
        (!pid_alive(pid)).then_some(())
    });
}

/// A content-and-metadata digest of a whole tree, without following symlinks.
pub fn tree_digest(root: &Path) -> BTreeMap<String, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let mut desc = format!(
            "mode={:o} uid={} gid={} size={}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.size()
        );
        if m.file_type().is_symlink() {
            desc.push_str(&format!(" -> {}", fs::read_link(&p).unwrap().display()));
        } else if m.is_file() {
            let data = fs::read(&p).unwrap();
            desc.push_str(&format!(" data={}", String::from_utf8_lossy(&data)));
        } else if m.is_dir() {
            for e in fs::read_dir(&p).unwrap().flatten() {
                stack.push(e.path());
            }
        }
        out.insert(rel, desc);
    }
    out
}

/// Writes `content` to `path`, creating parents.
pub fn write_file(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    let mut f = fs::File::create(path).unwrap();
    f.write_all(content.as_bytes()).unwrap();
}

/// Parses a capability mask as the probe reports it (hex from /proc/self/status).
pub fn cap_mask(hex: &Value) -> u64 {
    u64::from_str_radix(hex.as_str().expect("capability hex string"), 16).unwrap()
}

/// Capability numbers by name (the ones the tests use).
pub fn cap_bit(name: &str) -> u64 {
    let n = match name {
        "CAP_CHOWN" => 0,
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_DAC_READ_SEARCH" => 2,
        "CAP_FOWNER" => 3,
        "CAP_FSETID" => 4,
        "CAP_KILL" => 5,
        "CAP_SETGID" => 6,
        "CAP_SETUID" => 7,
        "CAP_SETPCAP" => 8,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_RAW" => 13,
        "CAP_SYS_CHROOT" => 18,
        "CAP_SYS_PTRACE" => 19,
        "CAP_SYS_ADMIN" => 21,
        "CAP_MKNOD" => 27,
        "CAP_AUDIT_WRITE" => 29,
        "CAP_SETFCAP" => 31,
        other => panic!("cap_bit: add {other}"),
    };
    1 << n
}

pub fn cap_set(names: &[&str]) -> u64 {
    names.iter().map(|n| cap_bit(n)).fold(0, |a, b| a | b)
}
