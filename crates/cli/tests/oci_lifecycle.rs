//! `jaula-oci` lifecycle: create, start, state, kill, delete, run, and what failures leave.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Bundle, Container, Oci};
use serde_json::json;

/// A shell loop that waits for the host to create /tmp/go in the rootfs, then exits.
const WAIT_FOR_GO: [&str; 3] = [
    "/bin/sh",
    "-c",
    "while [ ! -e /tmp/go ]; do sleep 0.02; done",
];

/// Checks the shape of an RFC 3339 timestamp such as `2024-01-02T03:04:05.123456Z`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let head = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !head {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    rest == "Z" || rest == "z" || {
        let r = rest.as_bytes();
        r.len() == 6 && (r[0] == b'+' || r[0] == b'-') && r[3] == b':'
    }
}

#[test]
fn rfc3339_checker_accepts_and_rejects() {
    assert!(is_rfc3339("2024-01-02T03:04:05Z"));
    assert!(is_rfc3339("2024-01-02T03:04:05.123456789+02:00"));
    assert!(!is_rfc3339("2024-01-02 03:04:05"));
    assert!(!is_rfc3339("1700000000"));
}

/// Asserts that nothing of container `id` is left: no state, no cgroup, no process.
#[track_caller]
fn assert_nothing_left(oci: &Oci, id: &str) {
    assert!(
        oci.root_entries().is_empty(),
        "state left: {:?}",
        oci.root_entries()
    );
    assert!(
        common::cgroup_dirs_named(id).is_empty(),
        "cgroups left: {:?}",
        common::cgroup_dirs_named(id)
    );
    assert!(
        common::pids_in_cgroups_named(id).is_empty(),
        "processes left"
    );
    oci.run(&["state", id]).fails_with("does not exist");
}

#[test]
fn full_lifecycle_create_start_exit_delete() {
    let oci = Oci::new();
    let b = Bundle::new(&WAIT_FOR_GO);
    let c = oci.container("life");
    c.create(&b).ok();

    let st = c.state().unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], c.id.as_str());
    let pid = c.pid();
    assert!(
        common::pid_alive(pid),
        "init {pid} of a created container must exist"
    );
    let typed: jaula_spec::State = serde_json::from_value(st.clone()).expect("state document");
    assert_eq!(typed.bundle, b.path());
    assert!(!st["ociVersion"].as_str().unwrap().is_empty());

    c.start().ok();
    assert_eq!(c.status(), "running");
    std::fs::write(b.rootfs().join("tmp/go"), "").unwrap();
    c.wait_status("stopped");
    assert!(!common::pid_alive(pid));
    c.delete().ok();
    assert_nothing_left(&oci, &c.id);
}

#[test]
fn start_twice_fails_and_start_of_stopped_fails() {
    let oci = Oci::new();
    let b = Bundle::new(&WAIT_FOR_GO);
    let c = oci.container("start2");
    c.create(&b).ok();
    c.start().ok();
    c.start().fails();
    assert_eq!(c.status(), "running");
    std::fs::write(b.rootfs().join("tmp/go"), "").unwrap();
    c.wait_status("stopped");
    c.start().fails();
    assert_eq!(c.status(), "stopped");
}

#[test]
fn state_fields_pid_file_created_time_and_annotations() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["sleep", "30"]);
    b.config["annotations"] = json!({"org.jaula.test": "yes", "empty": ""});
    let c = oci.container("state");
    let pid_file = oci.scratch_file("pid");
    c.create_with(
        &b,
        &["--pid-file", pid_file.to_str().unwrap()],
        Default::default(),
    )
    .ok();
    let st = c.state().unwrap();
    let from_file: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(from_file, c.pid());
    let created = st["created"].as_str().expect("created");
    assert!(is_rfc3339(created), "created {created:?} is not RFC 3339");
    assert_eq!(
        st["annotations"],
        json!({"org.jaula.test": "yes", "empty": ""})
    );
    assert_eq!(Path::new(st["bundle"].as_str().unwrap()), b.path());
    assert_eq!(Path::new(st["rootfs"].as_str().unwrap()), b.rootfs());
}

#[test]
fn relative_pid_file_is_relative_to_the_cwd() {
    let oci = Oci::new();
    let b = Bundle::probe(&["sleep", "30"]);
    b.write_config();
    let c = oci.container("pidrel");
    let mut cmd = oci.command();
    cmd.current_dir(oci.scratch());
    cmd.args([
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        "rel.pid",
        &c.id,
    ]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let st = common::wait_timeout(&mut child, common::CMD_TIMEOUT).expect("create finished");
    assert!(st.success());
    let pid: i32 = std::fs::read_to_string(oci.scratch().join("rel.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, c.pid());
}

#[test]
fn run_passes_the_exit_code_through() {
    let oci = Oci::new();
    for code in [0, 3, 42] {
        let b = Bundle::probe(&["exit", &code.to_string()]);
        let c = oci.container("exit");
        let out = c.run(&b);
        assert_eq!(out.code(), code, "{out:#?}");
        // A foreground run removes the container when it ends.
        oci.run(&["state", &c.id]).fails_with("does not exist");
    }
    assert!(oci.root_entries().is_empty());
}

#[test]
fn run_forwards_stdin_and_stdout() {
    let oci = Oci::new();
    let b = Bundle::probe(&["echo-stdin"]);
    let c = oci.container("stdio");
    let io = common::Io {
        stdin: Some(b"hello through the pipe\n".to_vec()),
        ..Default::default()
    };
    let out = c.run_with(&b, &[], io);
    out.ok();
    assert_eq!(out.stdout, "hello through the pipe\n");
}

#[test]
fn run_foreground_forwards_signals_and_reports_them_in_the_exit_code() {
    let oci = Oci::new();
    // Only SIGUSR1 counts: a runtime may forward signals of its own (runc forwards Go's SIGURG).
    let b = Bundle::probe(&["wait-signal", &libc::SIGUSR1.to_string()]);
    b.write_config();
    let c = oci.container("fwd");
    let out_path = oci.scratch_file("fwd.out");
    let mut cmd = oci.command();
    cmd.args(["run", "--bundle", b.path().to_str().unwrap(), &c.id]);
    cmd.stdin(std::process::Stdio::null());
    cmd.stdout(std::fs::File::create(&out_path).unwrap());
    let mut child = cmd.spawn().unwrap();
    common::poll("probe ready", common::CMD_TIMEOUT, || {
        std::fs::read_to_string(&out_path)
            .unwrap()
            .contains("ready")
            .then_some(())
    });
    let runtime_pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(runtime_pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    let st = common::wait_timeout(&mut child, common::CMD_TIMEOUT).expect("run ended");
    let out = std::fs::read_to_string(&out_path).unwrap();
    assert!(out.contains(&format!("signal {}", libc::SIGUSR1)), "{out}");
    assert_eq!(st.code(), Some(128 + libc::SIGUSR1), "{st:?}");
}

#[test]
fn run_detach_returns_while_the_container_runs() {
    let oci = Oci::new();
    let b = Bundle::probe(&["sleep", "30"]);
    let c = oci.container("detach");
    let started = std::time::Instant::now();
    c.run_with(&b, &["--detach"], Default::default()).ok();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(c.status(), "running");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    assert!(oci.root_entries().is_empty());
}

/// Creates and starts a probe that reports the first signal it gets.
fn signal_waiter<'a>(oci: &'a Oci, b: &Bundle) -> (Container<'a>, common::Out) {
    let c = oci.container("sig");
    let out = c.create(b);
    out.ok();
    c.start().ok();
    common::poll("probe ready", common::CMD_TIMEOUT, || {
        out.stdout_now().contains("ready").then_some(())
    });
    (c, out)
}

#[test]
fn kill_accepts_names_short_names_and_numbers() {
    let oci = Oci::new();
    let cases = [
        ("TERM", libc::SIGTERM),
        ("SIGUSR1", libc::SIGUSR1),
        ("12", libc::SIGUSR2),
    ];
    for (arg, num) in cases {
        let b = Bundle::probe(&["wait-signal"]);
        let (c, out) = signal_waiter(&oci, &b);
        c.kill(arg).ok();
        c.wait_status("stopped");
        assert!(
            out.stdout_now().contains(&format!("signal {num}")),
            "kill {arg}: {}",
            out.stdout_now()
        );
    }
    for arg in ["SIGKILL", "9", "KILL"] {
        let b = Bundle::probe(&["sleep", "30"]);
        let c = oci.container("kill");
        c.create(&b).ok();
        c.start().ok();
        c.kill(arg).ok();
        c.wait_status("stopped");
    }
}

#[test]
fn kill_without_a_signal_sends_term() {
    let oci = Oci::new();
    let b = Bundle::probe(&["wait-signal"]);
    let (c, out) = signal_waiter(&oci, &b);
    oci.run(&["kill", &c.id]).ok();
    c.wait_status("stopped");
    assert!(out
        .stdout_now()
        .contains(&format!("signal {}", libc::SIGTERM)));
}

#[test]
fn kill_rejects_an_unknown_signal_and_a_stopped_container() {
    let oci = Oci::new();
    let b = Bundle::probe(&["sleep", "30"]);
    let c = oci.container("badsig");
    c.create(&b).ok();
    c.kill("SIGNOPE").fails();
    assert_eq!(c.status(), "created");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.kill("TERM").fails_with("not running");
}

#[test]
fn kill_all_reaches_every_process() {
    let oci = Oci::new();
    let b = Bundle::new(&[
        "/bin/sh",
        "-c",
        "/bin/probe ignore-term 60 & /bin/probe ignore-term 60 & wait",
    ]);
    let c = oci.container("killall");
    c.create(&b).ok();
    c.start().ok();
    common::poll("three processes", common::CMD_TIMEOUT, || {
        (common::pids_in_cgroups_named(&c.id).len() >= 3).then_some(())
    });
    oci.run(&["kill", "--all", &c.id, "KILL"]).ok();
    c.wait_status("stopped");
    common::poll("cgroup empty", common::CMD_TIMEOUT, || {
        common::pids_in_cgroups_named(&c.id)
            .is_empty()
            .then_some(())
    });
}

#[test]
fn delete_of_a_running_container_needs_force() {
    let oci = Oci::new();
    let b = Bundle::probe(&["sleep", "30"]);
    let c = oci.container("delrun");
    c.create(&b).ok();
    c.start().ok();
    let pid = c.pid();
    c.delete().fails();
    assert_eq!(c.status(), "running");
    assert!(common::pid_alive(pid));
    c.delete_force().ok();
    common::wait_pid_gone(pid);
    assert_nothing_left(&oci, &c.id);
}

#[test]
fn delete_force_of_a_created_container() {
    let oci = Oci::new();
    let b = Bundle::probe(&["sleep", "30"]);
    let c = oci.container("delcreated");
    c.create(&b).ok();
    let pid = c.pid();
    c.delete_force().ok();
    common::wait_pid_gone(pid);
    assert_nothing_left(&oci, &c.id);
}

#[test]
fn delete_after_the_init_was_killed_from_outside() {
    let oci = Oci::new();
    for force in [false, true] {
        let b = Bundle::probe(&["sleep", "30"]);
        let c = oci.container("extkill");
        c.create(&b).ok();
        c.start().ok();
        let pid = c.pid();
        // The container is ours: killing its init directly simulates an OOM kill or a crash.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        common::wait_pid_gone(pid);
        assert_eq!(c.status(), "stopped");
        if force {
            c.delete_force().ok();
        } else {
            c.delete().ok();
        }
        assert_nothing_left(&oci, &c.id);
    }
}

#[test]
fn create_with_an_existing_id_fails() {
    let oci = Oci::new();
    let b = Bundle::probe(&["sleep", "30"]);
    let c = oci.container("dup");
    c.create(&b).ok();
    let pid = c.pid();
    let b2 = Bundle::probe(&["sleep", "30"]);
    c.create(&b2).fails();
    assert_eq!(c.status(), "created");
    assert_eq!(c.pid(), pid);
    assert_eq!(c.state().unwrap()["bundle"], b.path().to_str().unwrap());
}

#[test]
fn concurrent_creates_of_one_id_let_exactly_one_win() {
    let oci = Oci::new();
    let c = oci.container("race");
    let bundles: Vec<Bundle> = (0..4).map(|_| Bundle::probe(&["sleep", "30"])).collect();
    for b in &bundles {
        b.write_config();
    }
    let results: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = bundles
            .iter()
            .map(|b| {
                let (oci, id) = (&oci, c.id.clone());
                s.spawn(move || {
                    oci.run(&["create", "--bundle", b.path().to_str().unwrap(), &id])
                        .success()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|&&ok| ok).count(), 1, "{results:?}");
    assert_eq!(c.status(), "created");
    let winner = c.state().unwrap()["bundle"].as_str().unwrap().to_owned();
    let winner_idx = bundles
        .iter()
        .position(|b| b.path().to_str() == Some(winner.as_str()))
        .unwrap();
    assert!(
        results[winner_idx],
        "state names a bundle whose create failed"
    );
    assert_eq!(
        common::pids_in_cgroups_named(&c.id).len(),
        1,
        "losers left processes"
    );
    c.delete_force().ok();
    assert_nothing_left(&oci, &c.id);
}

/// An edit that breaks a bundle.
type Patch = Box<dyn Fn(&mut Bundle)>;

/// Broken bundles: create (or, for a late failure, start) must fail and leave nothing.
#[test]
fn failed_create_leaves_no_state_cgroup_or_process() {
    let oci = Oci::new();
    let cases: Vec<(&str, Patch)> = vec![
        (
            "missing binary",
            Box::new(|b| b.set_args(&["/nonexistent/binary"])),
        ),
        (
            "missing rootfs",
            Box::new(|b| b.config["root"]["path"] = json!("no-such-rootfs")),
        ),
        (
            "bad mount source",
            Box::new(|b| {
                b.push_mount(json!({"destination": "/mnt", "type": "bind", "source": "/nonexistent/src", "options": ["bind"]}))
            }),
        ),
        (
            "unknown namespace",
            Box::new(|b| b.add_namespace("frobnicate", None)),
        ),
        ("missing args", Box::new(|b| b.set_args(&[]))),
        ("bad json", Box::new(|b| b.config = json!("not a config"))),
    ];
    for (what, patch) in cases {
        let mut b = Bundle::probe(&["exit", "0"]);
        patch(&mut b);
        let c = oci.container("fail");
        let created = c.create(&b);
        if created.success() {
            // A runtime may notice some problems only at exec time; then start must fail.
            assert!(
                !c.start().success(),
                "{what}: both create and start succeeded"
            );
            c.delete_force();
        } else {
            assert!(
                !created.stderr.trim().is_empty(),
                "{what}: failure without a message"
            );
        }
        assert_nothing_left(&oci, &c.id);
        drop(c);
    }
}

#[test]
fn missing_binary_fails_at_create() {
    let oci = Oci::new();
    let b = Bundle::new(&["/nonexistent/binary"]);
    let c = oci.container("nobin");
    c.create(&b).fails();
    assert_nothing_left(&oci, &c.id);
}

#[test]
fn state_of_a_running_container_reports_its_pid_namespace_init() {
    let oci = Oci::new();
    let b = Bundle::probe(&["sleep", "30"]);
    let c = oci.container("pidns");
    c.create(&b).ok();
    c.start().ok();
    let pid = c.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(
        nspid.trim_end().ends_with("\t1"),
        "state pid {pid} is not the container's pid 1: {nspid}"
    );
}
