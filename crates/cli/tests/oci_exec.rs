//! `jaula-oci exec` into running containers, and the signals and reaping of processes there.
//!
//! The exec'd process must land in the container's namespaces and cgroup with the container
//! process's identity and limits, give its exit code back, and carry nothing of the host with
//! it: no inherited descriptors, no `/proc/PID/exe` pointing at the runtime.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use common::{Bundle, Container, Io, Oci, Out};

/// A tmpfs the config mounts, to recognise the container's mount namespace.
const SCRATCH: &str = "/mnt/scratch";

/// A started container whose init is `/bin/sleep 600`, with a tmpfs at `SCRATCH`.
fn sleeper<'a>(oci: &'a Oci, tag: &str) -> (Container<'a>, Bundle) {
    sleeper_with(oci, tag, |_| {})
}

fn sleeper_with<'a>(
    oci: &'a Oci,
    tag: &str,
    patch: impl FnOnce(&mut Bundle),
) -> (Container<'a>, Bundle) {
    let mut b = Bundle::new(&["/bin/sleep", "600"]);
    b.push_mount(
        json!({"destination": SCRATCH, "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "nodev", "size=1m"]}),
    );
    patch(&mut b);
    let c = oci.container(tag);
    c.create(&b).ok();
    c.start().ok();
    c.wait_status("running");
    (c, b)
}

/// `exec FLAGS... ID ARGS...`, waiting for it.
fn exec(c: &Container<'_>, flags: &[&str], args: &[&str]) -> Out {
    exec_io(c, flags, args, Io::default())
}

fn exec_io(c: &Container<'_>, flags: &[&str], args: &[&str], io: Io) -> Out {
    let mut all = vec!["exec"];
    all.extend_from_slice(flags);
    all.push(&c.id);
    all.extend_from_slice(args);
    c.oci.run_io(&all, io)
}

/// A runtime command running in the background, its output going to files.
struct Background {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Background {
    fn spawn(oci: &Oci, args: &[&str]) -> Background {
        let out = oci.scratch_file("bg-out");
        let err = oci.scratch_file("bg-err");
        let child = oci
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Background { child, out, err }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    #[track_caller]
    fn wait_for_output(&self, needle: &str) {
        common::poll(
            &format!("{needle:?} on stdout"),
            common::CMD_TIMEOUT,
            || self.stdout().contains(needle).then_some(()),
        );
    }

    /// Waits for the command; its exit code (128 + N for a signal).
    #[track_caller]
    fn finish(&mut self) -> i32 {
        let st = common::wait_timeout(&mut self.child, common::CMD_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "timed out: stdout {:?} stderr {:?}",
                self.stdout(),
                self.stderr()
            )
        });
        use std::os::unix::process::ExitStatusExt;
        st.code().or_else(|| st.signal().map(|s| 128 + s)).unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Ours; a no-op once it was reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_pid_file(p: &Path) -> i32 {
    let text = fs::read_to_string(p).unwrap_or_else(|e| panic!("pid file {}: {e}", p.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file holds {text:?}: {e}"))
}

/// Fields of /proc/PID/stat after the command name: [state, ppid, pgrp, session, tty, ...].
fn stat_fields(pid: i32) -> Vec<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    rest.split_whitespace().map(String::from).collect()
}

fn ns_link(pid: i32, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .display()
        .to_string()
}

fn fd_numbers(pid: i32) -> BTreeSet<i32> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Output, exit codes, and what the process sees.
// ---------------------------------------------------------------------------------------------

#[test]
fn exec_passes_stdout_stderr_and_the_exit_code() {
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "execcode");
    let out = exec(
        &c,
        &[],
        &["sh", "-c", "echo to-out; echo to-err >&2; exit 7"],
    );
    assert_eq!(out.code(), 7, "{out:#?}");
    assert_eq!(out.stdout, "to-out\n");
    assert!(out.stderr.contains("to-err"), "{out:#?}");
    exec(&c, &[], &["true"]).ok();
    // A process killed by a signal comes back as 128 + N, as from a shell.
    let out = exec(&c, &[], &["sh", "-c", "kill -KILL $$"]);
    assert_eq!(out.code(), 137, "{out:#?}");
    // Stdin is handed on as well.
    let io = Io {
        stdin: Some(b"through stdin\n".to_vec()),
        ..Default::default()
    };
    let out = exec_io(&c, &[], &["cat"], io);
    out.ok();
    assert_eq!(out.stdout, "through stdin\n");
}

#[test]
fn exec_shares_the_pid_namespace_hostname_and_mounts() {
    let oci = Oci::new();
    let (c, b) = sleeper(&oci, "execns");
    let init = c.pid();
    let out = exec(&c, &[], &["cat", "/proc/1/cmdline"]);
    out.ok();
    assert_eq!(
        out.stdout, "/bin/sleep\x00600\x00",
        "pid 1 is not the container's init"
    );
    let info = exec(&c, &[], &["/bin/probe", "info"]).ok().json();
    assert_eq!(info["hostname"], "jaula-test");
    assert!(info["pid"].as_i64().unwrap() > 1, "{}", info["pid"]);
    for ns in ["pid", "mnt", "net", "ipc", "uts"] {
        assert_eq!(
            info["ns"][ns].as_str(),
            Some(ns_link(init, ns).as_str()),
            "{ns} namespace differs from the init's"
        );
    }
    let scratch = format!(" {SCRATCH} ");
    assert!(
        info["mountinfo"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains(&scratch)),
        "the config's tmpfs is not mounted: {:#}",
        info["mountinfo"]
    );
    // One exec writes into the tmpfs, another reads it back; the host's rootfs never sees it.
    exec(
        &c,
        &[],
        &["sh", "-c", &format!("echo shared > {SCRATCH}/f")],
    )
    .ok();
    let out = exec(&c, &[], &["cat", &format!("{SCRATCH}/f")]);
    out.ok();
    assert_eq!(out.stdout, "shared\n");
    assert!(!b.rootfs().join("mnt/scratch/f").exists());
}

#[test]
fn exec_honours_cwd_env_and_user() {
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "execopts");
    let out = exec(
        &c,
        &["--cwd", "/tmp", "-e", "FOO=bar", "-u", "1000:1000"],
        &["sh", "-c", "id -u; id -g; pwd; echo $FOO"],
    );
    out.ok();
    assert_eq!(out.stdout, "1000\n1000\n/tmp\nbar\n");
    // Without flags: the container process's own user, cwd and environment.
    let out = exec(
        &c,
        &[],
        &["sh", "-c", "id -u; pwd; echo ${FOO:-unset}; echo $TERM"],
    );
    out.ok();
    assert_eq!(out.stdout, "0\n/\nunset\nxterm\n");
    // A uid alone keeps the process's gid.
    let out = exec(&c, &["-u", "1000"], &["sh", "-c", "id -u; id -g"]);
    out.ok();
    assert_eq!(out.stdout, "1000\n0\n");
}

#[test]
fn exec_env_overrides_a_variable_of_the_container_process() {
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "execenv");
    let out = exec(&c, &["-e", "TERM=dumb"], &["/bin/probe", "info"])
        .ok()
        .json();
    let env: Vec<&str> = out["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .filter(|v| v.starts_with("TERM="))
        .collect();
    assert_eq!(env, ["TERM=dumb"], "TERM must be replaced, not duplicated");
    // What a program sees: getenv finds the first entry.
    let out = exec(&c, &["-e", "TERM=dumb"], &["sh", "-c", "echo $TERM"]);
    out.ok();
    assert_eq!(out.stdout, "dumb\n");
}

#[test]
fn exec_process_file_replaces_the_container_process() {
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "execfile");
    let process = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["sh", "-c", "id -u; pwd; echo $X"],
        "env": ["PATH=/bin", "X=from-file"],
        "cwd": "/home/user"
    });
    let file = oci.scratch_file("process.json");
    fs::write(&file, process.to_string()).unwrap();
    let out = exec(&c, &["--process", file.to_str().unwrap()], &[]);
    out.ok();
    assert_eq!(out.stdout, "1000\n/home/user\nfrom-file\n");
}

#[test]
fn exec_applies_capabilities_rlimits_and_seccomp() {
    let oci = Oci::new();
    let (c, _b) = sleeper_with(&oci, "execsec", |b| {
        b.linux()["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    let info = exec(&c, &[], &["/bin/probe", "info"]).ok().json();
    let want = common::cap_set(&common::DEFAULT_CAPS);
    assert_eq!(common::cap_mask(&info["caps"]["CapEff"]), want);
    assert_eq!(common::cap_mask(&info["caps"]["CapBnd"]), want);
    assert_eq!(info["rlimits"]["RLIMIT_NOFILE"], json!([1024, 1024]));
    assert_eq!(info["no_new_privs"], 1);
    assert_eq!(
        info["seccomp"], 2,
        "no seccomp filter on the exec'd process"
    );
    let out = exec(&c, &[], &["mkdir", "/tmp/blocked"]);
    out.fails();
    assert!(out.stderr.contains("Operation not permitted"), "{out:#?}");
    // --cap adds to every set the process has.
    let info = exec(&c, &["--cap", "CAP_NET_RAW"], &["/bin/probe", "info"])
        .ok()
        .json();
    let eff = common::cap_mask(&info["caps"]["CapEff"]);
    assert_eq!(eff, want | common::cap_bit("CAP_NET_RAW"));
}

#[test]
fn exec_joins_the_user_namespace() {
    const HOST_BASE: u32 = 300_000;
    let oci = Oci::new();
    let (c, _b) = sleeper_with(&oci, "execuserns", |b| {
        // Container root cannot create the tmpfs mount point in a host-owned rootfs.
        b.config["mounts"].as_array_mut().unwrap().pop();
        b.add_namespace("user", None);
        let map = json!([{"containerID": 0, "hostID": HOST_BASE, "size": 65536}]);
        b.config["linux"]["uidMappings"] = map.clone();
        b.config["linux"]["gidMappings"] = map;
    });
    let init = c.pid();
    let info = exec(&c, &[], &["/bin/probe", "info"]).ok().json();
    assert_eq!(info["uid"], 0);
    assert_eq!(
        info["ns"]["user"].as_str(),
        Some(ns_link(init, "user").as_str())
    );
    let pid_file = oci.scratch_file("exec.pid");
    exec(
        &c,
        &["-d", "--pid-file", pid_file.to_str().unwrap(), "-u", "1000"],
        &["sleep", "30"],
    )
    .ok();
    let pid = read_pid_file(&pid_file);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let host_uid = (HOST_BASE + 1000).to_string();
    assert!(
        uid.split_whitespace().skip(1).all(|u| u == host_uid),
        "exec'd uid 1000 is not host uid {host_uid}: {uid}"
    );
}

/// The `SigBlk` and `SigIgn` masks of a /proc/PID/status text.
fn signal_masks(status: &str) -> Vec<String> {
    status
        .lines()
        .filter(|l| l.starts_with("SigBlk:") || l.starts_with("SigIgn:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn processes_start_with_no_signals_blocked_or_ignored() {
    // The runtime blocks signals to forward them and ignores SIGPIPE (Rust's std), and its
    // caller may have ignored more: glibc's posix_spawn, which Rust's `Command` uses, leaves
    // its internal signals 32 and 33 ignored in the child. The container starts clean.
    let clean = ["SigBlk: 0000000000000000", "SigIgn: 0000000000000000"];
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "execsigmask");
    let out = exec(&c, &[], &["cat", "/proc/self/status"]);
    out.ok();
    assert_eq!(signal_masks(&out.stdout), clean, "foreground exec");
    let pid_file = oci.scratch_file("exec.pid");
    exec(
        &c,
        &["-d", "--pid-file", pid_file.to_str().unwrap()],
        &["sleep", "30"],
    )
    .ok();
    let pid = read_pid_file(&pid_file);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(signal_masks(&status), clean, "detached exec");
    let b = Bundle::new(&["cat", "/proc/self/status"]);
    let out = oci.container("runsigmask").run(&b);
    out.ok();
    assert_eq!(signal_masks(&out.stdout), clean, "foreground run's init");
}

#[test]
fn exec_sets_additional_groups() {
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "execgroups");
    let out = exec(
        &c,
        &["-u", "1000:1000", "-g", "5", "-g", "7"],
        &["id", "-G"],
    );
    out.ok();
    assert_eq!(out.stdout, "1000 5 7\n");
}

#[test]
fn exec_joins_cgroup_and_time_namespaces() {
    const OFFSET: i64 = 1_000_000;
    let oci = Oci::new();
    let (c, _b) = sleeper_with(&oci, "exectimens", |b| {
        b.add_namespace("cgroup", None);
        b.add_namespace("time", None);
        b.linux()["timeOffsets"] = json!({"monotonic": {"secs": OFFSET, "nanosecs": 0}});
    });
    let init = c.pid();
    let info = exec(&c, &[], &["/bin/probe", "info"]).ok().json();
    for ns in ["cgroup", "time"] {
        assert_eq!(
            info["ns"][ns].as_str(),
            Some(ns_link(init, ns).as_str()),
            "{ns}"
        );
    }
    assert!(
        info["monotonic"].as_i64().unwrap() >= OFFSET,
        "monotonic clock without the container's offset: {}",
        info["monotonic"]
    );
    // In its cgroup namespace the process sits at the root.
    for line in info["cgroup"].as_array().unwrap() {
        let line = line.as_str().unwrap();
        assert!(line.ends_with(":/"), "cgroup line {line} shows a host path");
    }
}

#[test]
fn exec_into_a_stopped_or_unknown_container_fails() {
    let oci = Oci::new();
    let b = Bundle::new(&["true"]);
    let c = oci.container("execstopped");
    c.create(&b).ok();
    c.start().ok();
    c.wait_status("stopped");
    let out = exec(&c, &[], &["true"]);
    out.fails();
    let err = out.stderr.to_lowercase();
    assert!(
        err.contains("stopped") || err.contains("not running"),
        "the error does not say the container is stopped: {out:#?}"
    );
    oci.run(&["exec", "jt-no-such-container", "true"])
        .fails_with("jt-no-such-container");
}

/// Processes in the container's cgroup, the init included.
fn container_pids(c: &Container<'_>) -> BTreeSet<i32> {
    common::pids_in_cgroups_named(&c.id)
        .into_iter()
        .filter(|&p| common::pid_alive(p))
        .collect()
}

#[test]
fn failed_exec_names_the_cause_and_leaves_no_process() {
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "execbad");
    let before = container_pids(&c);
    exec(&c, &[], &["/no/such/binary"]).fails_with("/no/such/binary");
    exec(&c, &["--cwd", "/no/such/dir"], &["true"]).fails_with("/no/such/dir");
    let missing = oci.scratch().join("no-such.sock");
    exec(
        &c,
        &["-t", "-d", "--console-socket", missing.to_str().unwrap()],
        &["sleep", "30"],
    )
    .fails_with("no-such.sock");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        container_pids(&c),
        before,
        "a failed exec left a process in the container"
    );
}

#[test]
fn exec_into_a_created_container() {
    // runc allows it (hooks and `podman exec` before start use it); the namespaces exist.
    let oci = Oci::new();
    let b = Bundle::new(&["/bin/sleep", "600"]);
    let c = oci.container("execcreated");
    c.create(&b).ok();
    let out = exec(&c, &[], &["hostname"]);
    out.ok();
    assert_eq!(out.stdout, "jaula-test\n");
    assert_eq!(c.status(), "created");
    // Until `start`, pid 1 is the runtime's own binary waiting to exec: the container must
    // not be able to read or overwrite it (CVE-2019-5736).
    let out = exec(&c, &[], &["/bin/probe", "escape", "proc-exe"]);
    assert!(out.success(), "proc-exe got through: {out:#?}");
    let out = exec(&c, &[], &["sh", "-c", "cat /proc/1/exe > /dev/null"]);
    assert!(
        !out.success(),
        "the waiting init's binary is readable: {out:#?}"
    );
}

#[test]
fn exec_labels_the_host_cannot_apply_are_refused() {
    // Fail closed: this host has neither AppArmor nor SELinux, so a profile or label cannot
    // be applied, and running the process unconfined instead would be a silent downgrade.
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "execlabels");
    for flag in ["--apparmor", "--process-label"] {
        let out = exec(&c, &[flag, "jaula-test-profile"], &["true"]);
        assert!(
            !out.success(),
            "{flag} was accepted on a host without that LSM: {out:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Detached exec.
// ---------------------------------------------------------------------------------------------

#[test]
fn exec_detached_writes_a_pid_in_the_containers_cgroup_and_pid_namespace() {
    let oci = Oci::new();
    let (c, b) = sleeper(&oci, "execdetach");
    let init = c.pid();
    let pid_file = oci.scratch_file("exec.pid");
    // Host descriptors the runtime holds beyond stdio; none may reach the process.
    let io = Io {
        extra_fds: vec![oci.scratch().to_path_buf(), b.path().join("config.json")],
        ..Default::default()
    };
    let started = Instant::now();
    exec_io(
        &c,
        &["-d", "--pid-file", pid_file.to_str().unwrap()],
        &["sleep", "30"],
        io,
    )
    .ok();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "exec -d waited for the process"
    );
    let pid = read_pid_file(&pid_file);
    assert!(common::pid_alive(pid), "exec'd pid {pid} is not alive");
    assert_ne!(pid, init);
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap(),
        "the exec'd process is not in the container's cgroups"
    );
    for ns in ["pid", "mnt", "net", "ipc", "uts", "user", "cgroup"] {
        assert_eq!(ns_link(pid, ns), ns_link(init, ns), "{ns} namespace");
    }
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap(),
        "sleep\x0030\x00"
    );
    assert_eq!(
        fd_numbers(pid),
        BTreeSet::from([0, 1, 2]),
        "host fds leaked"
    );
    // The link names the file in the container's mount namespace; compare the inode too.
    let exe = fs::metadata(format!("/proc/{pid}/exe")).unwrap();
    let busybox = fs::metadata(b.rootfs().join("bin/busybox")).unwrap();
    assert_eq!(
        (exe.dev(), exe.ino()),
        (busybox.dev(), busybox.ino()),
        "the exec'd process does not run the container's busybox: {:?}",
        fs::read_link(format!("/proc/{pid}/exe"))
    );
    // Inside, the process has a pid of the container's namespace.
    let out = exec(&c, &[], &["sh", "-c", "pidof sleep"]);
    out.ok();
    assert!(
        out.stdout.split_whitespace().count() >= 2,
        "the container does not see its exec'd sleep: {out:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Paused containers.
// ---------------------------------------------------------------------------------------------

#[test]
fn exec_into_a_paused_container_fails_unless_told_to_ignore_it() {
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "execpaused");
    oci.run(&["pause", &c.id]).ok();
    c.wait_status("paused");
    exec(&c, &[], &["true"]).fails_with("paused");
    // With --ignore-paused the runtime goes ahead; the process cannot run before resume.
    let pid_file = oci.scratch_file("exec.pid");
    let mut bg = Background::spawn(
        &oci,
        &[
            "exec",
            "--ignore-paused",
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &c.id,
            "sh",
            "-c",
            &format!("echo ran > {SCRATCH}/ignored"),
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(Some(st)) = bg.child.try_wait() {
        assert!(
            st.success(),
            "exec --ignore-paused failed: {:?}",
            bg.stderr()
        );
    }
    oci.run(&["resume", &c.id]).ok();
    assert_eq!(bg.finish(), 0, "stderr {:?}", bg.stderr());
    assert!(!bg.stderr().contains("paused"), "{:?}", bg.stderr());
    common::poll("the exec'd process to run", common::CMD_TIMEOUT, || {
        let out = exec(&c, &[], &["cat", &format!("{SCRATCH}/ignored")]);
        (out.stdout == "ran\n").then_some(())
    });
}

// ---------------------------------------------------------------------------------------------
// Nothing of the host reaches the exec'd process (CVE-2016-9962, CVE-2019-5736).
// ---------------------------------------------------------------------------------------------

/// The descriptors the probe found open.
fn probe_fds(info: &Value) -> Vec<i64> {
    info["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fd"].as_i64().unwrap())
        .collect()
}

#[test]
fn exec_inherits_no_host_descriptors() {
    let oci = Oci::new();
    let (c, b) = sleeper(&oci, "execfds");
    let host_fds = || Io {
        extra_fds: vec![oci.scratch().to_path_buf(), b.path().join("config.json")],
        ..Default::default()
    };
    let info = exec_io(&c, &[], &["/bin/probe", "info"], host_fds())
        .ok()
        .json();
    assert_eq!(probe_fds(&info), [0, 1, 2], "{:#}", info["fds"]);
    let out = exec_io(&c, &[], &["ls", "/proc/self/fd"], host_fds());
    out.ok();
    // ls holds one more: the directory it lists.
    let listed: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(listed, ["0", "1", "2", "3"], "{out:#?}");
    let out = exec_io(&c, &[], &["/bin/probe", "escape", "fd-leak"], host_fds());
    assert!(out.success(), "fd-leak got through: {out:#?}");
    // The control: --preserve-fds does pass them, so the check above can fail.
    let info = exec_io(
        &c,
        &["--preserve-fds", "2"],
        &["/bin/probe", "info"],
        host_fds(),
    )
    .ok()
    .json();
    assert_eq!(probe_fds(&info), [0, 1, 2, 3, 4], "{:#}", info["fds"]);
}

#[test]
fn exec_process_exe_is_the_containers_binary_and_not_writable() {
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "execexe");
    let out = exec(&c, &[], &["readlink", "/proc/self/exe"]);
    out.ok();
    assert_eq!(out.stdout, "/bin/busybox\n");
    let out = exec(&c, &[], &["sh", "-c", "echo x >> /proc/1/exe"]);
    assert!(
        !out.success(),
        "the init's exe was opened for writing: {out:#?}"
    );
    let out = exec(&c, &[], &["/bin/probe", "escape", "proc-exe"]);
    assert!(out.success(), "proc-exe got through: {out:#?}");
}

// ---------------------------------------------------------------------------------------------
// Signals and reaping.
// ---------------------------------------------------------------------------------------------

/// A shell that exits with `code` from its SIGTERM handler, after printing "ready".
fn term_handler(code: u8) -> String {
    format!("trap 'echo caught; exit {code}' TERM; echo ready; while :; do sleep 0.02; done")
}

#[test]
fn kill_delivers_the_signal_to_the_init() {
    let oci = Oci::new();
    let b = Bundle::probe(&["wait-signal", "10"]);
    let c = oci.container("killinit");
    let out = c.create(&b);
    out.ok();
    c.start().ok();
    common::poll("ready", common::CMD_TIMEOUT, || {
        out.stdout_now().contains("ready").then_some(())
    });
    // A process exec'd next to the init must not take the signal instead.
    exec(&c, &["-d"], &["sleep", "30"]).ok();
    c.kill("SIGUSR1").ok();
    c.wait_status("stopped");
    assert!(
        out.stdout_now().contains("signal 10"),
        "{}",
        out.stdout_now()
    );
}

#[test]
fn foreground_run_forwards_sigterm_to_the_container() {
    let oci = Oci::new();
    let b = Bundle::new(&["/bin/sh", "-c", &term_handler(42)]);
    b.write_config();
    let c = oci.container("runterm");
    let mut run = Background::spawn(
        &oci,
        &["run", "--bundle", b.path().to_str().unwrap(), &c.id],
    );
    run.wait_for_output("ready");
    kill(Pid::from_raw(run.pid()), Signal::SIGTERM).unwrap();
    assert_eq!(run.finish(), 42, "stderr {:?}", run.stderr());
    assert!(run.stdout().contains("caught"));
    assert!(c.state().is_none(), "run left the container behind");
}

#[test]
fn foreground_exec_forwards_sigterm_to_the_process() {
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "execterm");
    let s = term_handler(43);
    let mut ex = Background::spawn(&oci, &["exec", &c.id, "sh", "-c", &s]);
    ex.wait_for_output("ready");
    kill(Pid::from_raw(ex.pid()), Signal::SIGTERM).unwrap();
    assert_eq!(ex.finish(), 43, "stderr {:?}", ex.stderr());
    assert!(ex.stdout().contains("caught"));
    assert_eq!(c.status(), "running", "the init took the exec's signal");
}

/// Children of `parent` that are zombies.
fn zombie_children(parent: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| {
            let f = stat_fields(p);
            f.first().map(String::as_str) == Some("Z") && f.get(1) == Some(&parent.to_string())
        })
        .collect()
}

#[test]
fn foreground_run_adopts_and_reaps_orphans_as_subreaper() {
    let oci = Oci::new();
    // Without a pid namespace the container's orphans climb to the nearest subreaper.
    let s =
        "(sleep 0.05 &); (sleep 0.05 &); (exec sleep 600 &); sleep 0.3; echo ready; exec sleep 600";
    let mut b = Bundle::new(&["/bin/sh", "-c", s]);
    b.remove_namespace("pid");
    b.write_config();
    let c = oci.container("subreaper");
    let mut run = Background::spawn(
        &oci,
        &["run", "--bundle", b.path().to_str().unwrap(), &c.id],
    );
    run.wait_for_output("ready");
    let init = c.pid();
    let orphans: Vec<i32> = common::pids_in_cgroups_named(&c.id)
        .into_iter()
        .filter(|&p| p != init && common::pid_alive(p))
        .collect();
    assert_eq!(
        orphans.len(),
        1,
        "expected the one long-lived orphan: {orphans:?}"
    );
    assert_eq!(
        stat_fields(orphans[0]).get(1),
        Some(&run.pid().to_string()),
        "the orphan was not adopted by the runtime"
    );
    common::poll(
        "the runtime to reap its adopted zombies",
        Duration::from_secs(5),
        || zombie_children(run.pid()).is_empty().then_some(()),
    );
    c.kill("SIGKILL").ok();
    assert_eq!(run.finish(), 137);
    assert!(
        common::pids_in_cgroups_named(&c.id).is_empty(),
        "processes outlived run"
    );
}

#[test]
fn foreground_run_leaves_no_process_when_the_init_exits_first() {
    let oci = Oci::new();
    // The init exits while a background child and an orphan still run or sit as zombies.
    let b = Bundle::new(&["/bin/sh", "-c", "(sleep 5 &); sleep 0.05 & exec sleep 0.2"]);
    let c = oci.container("zombies");
    let out = c.run(&b);
    out.ok();
    assert!(common::pids_in_cgroups_named(&c.id).is_empty());
    assert!(oci.root_entries().is_empty(), "{:?}", oci.root_entries());
}

#[test]
fn exec_latency_is_reasonable() {
    // Not the benchmark (scripts/bench.sh compares with nsenter); a guard against an exec
    // that sleeps or polls its way through setup.
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "execfast");
    exec(&c, &[], &["true"]).ok();
    let start = Instant::now();
    for _ in 0..10 {
        exec(&c, &[], &["true"]).ok();
    }
    let each = start.elapsed() / 10;
    assert!(each < Duration::from_millis(500), "one exec took {each:?}");
}
