//! OCI hooks: all six kinds, their order, the state they receive, failures and timeouts.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Bundle, Oci};
use serde_json::{json, Value};

const HOST_KINDS: [&str; 5] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "poststart",
    "poststop",
];

/// A host-side hook that saves its stdin as `<kind>.json` and appends `kind` to `order`.
fn recording_hook(dir: &Path, kind: &str) -> Value {
    let d = dir.display();
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {d}/{kind}.json && env > {d}/{kind}.env && echo {kind} >> {d}/order")],
        "env": ["PATH=/usr/bin:/bin", "HOOK_VAR=yes"]
    })
}

fn shell_hook(script: &str, timeout: Option<u64>) -> Value {
    let mut h =
        json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["PATH=/usr/bin:/bin"]});
    if let Some(t) = timeout {
        h["timeout"] = json!(t);
    }
    h
}

fn read_state(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not a state document ({e}): {text}", path.display()))
}

fn order(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("order"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[track_caller]
fn assert_state(st: &Value, kind: &str, id: &str, bundle: &Path, statuses: &[&str]) {
    assert_eq!(st["id"], id, "{kind}: {st}");
    assert_eq!(
        Path::new(st["bundle"].as_str().unwrap()),
        bundle,
        "{kind}: {st}"
    );
    let status = st["status"].as_str().unwrap();
    assert!(
        statuses.contains(&status),
        "{kind} saw status {status}, expected one of {statuses:?}"
    );
    assert!(
        !st["ociVersion"].as_str().unwrap_or("").is_empty(),
        "{kind}: {st}"
    );
}

#[test]
fn all_six_hooks_run_in_order_with_the_state_on_stdin() {
    let oci = Oci::new();
    let dir = tempfile::tempdir().unwrap();
    let mut b = Bundle::new(&[
        "/bin/sh",
        "-c",
        "if [ -e /tmp/startContainer.json ]; then echo hook-ran-first; fi; exec /bin/probe sleep 30",
    ]);
    let mut hooks = json!({});
    for kind in HOST_KINDS {
        hooks[kind] = json!([recording_hook(dir.path(), kind)]);
    }
    // startContainer runs in the container: its path and output are inside the rootfs.
    hooks["startContainer"] = json!([{
        "path": "/bin/sh",
        "args": ["sh", "-c", "cat > /tmp/startContainer.json"],
        "env": ["PATH=/bin"]
    }]);
    b.config["hooks"] = hooks;
    let c = oci.container("hooks");
    let created = c.create(&b);
    created.ok();
    let id = c.id.clone();
    let pid = c.pid();

    let seen = order(dir.path());
    let pos = |k: &str| {
        seen.iter()
            .position(|s| s == k)
            .unwrap_or_else(|| panic!("{k} did not run: {seen:?}"))
    };
    assert!(
        pos("prestart") < pos("createContainer") && pos("createRuntime") < pos("createContainer"),
        "{seen:?}"
    );
    assert_eq!(
        seen.len(),
        3,
        "only create-time hooks may run at create: {seen:?}"
    );
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let st = read_state(&dir.path().join(format!("{kind}.json")));
        assert_state(&st, kind, &id, b.path(), &["creating", "created"]);
        assert_eq!(st["pid"].as_i64(), Some(pid.into()), "{kind}: {st}");
    }
    let env = std::fs::read_to_string(dir.path().join("prestart.env")).unwrap();
    assert!(env.lines().any(|l| l == "HOOK_VAR=yes"), "hook env: {env}");

    c.start().ok();
    common::poll("poststart", common::CMD_TIMEOUT, || {
        dir.path().join("poststart.json").exists().then_some(())
    });
    let st = read_state(&b.rootfs().join("tmp/startContainer.json"));
    assert_state(
        &st,
        "startContainer",
        &id,
        b.path(),
        &["created", "creating"],
    );
    common::poll("process output", common::CMD_TIMEOUT, || {
        created
            .stdout_now()
            .contains("hook-ran-first")
            .then_some(())
    });
    common::poll("poststart done", common::CMD_TIMEOUT, || {
        (order(dir.path()).len() == 4).then_some(())
    });
    let st = read_state(&dir.path().join("poststart.json"));
    assert_state(&st, "poststart", &id, b.path(), &["running"]);

    c.kill("KILL").ok();
    c.wait_status("stopped");
    assert!(
        !dir.path().join("poststop.json").exists(),
        "poststop ran before delete"
    );
    c.delete().ok();
    let st = read_state(&dir.path().join("poststop.json"));
    assert_state(&st, "poststop", &id, b.path(), &["stopped"]);
    assert_eq!(
        order(dir.path()).last().map(String::as_str),
        Some("poststop")
    );
}

/// A failing create-time hook must fail `create` and leave nothing behind.
#[test]
fn failing_create_time_hooks_fail_create_and_leave_nothing() {
    let oci = Oci::new();
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let mut b = Bundle::probe(&["sleep", "30"]);
        b.config["hooks"] = json!({kind: [shell_hook("exit 3", None)]});
        let c = oci.container("hookfail");
        c.create(&b).fails();
        assert!(oci.root_entries().is_empty(), "{kind}: state left");
        assert!(
            common::cgroup_dirs_named(&c.id).is_empty(),
            "{kind}: cgroup left"
        );
        assert!(
            common::pids_in_cgroups_named(&c.id).is_empty(),
            "{kind}: processes left"
        );
    }
}

#[test]
fn failing_poststart_only_warns() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["sleep", "30"]);
    b.config["hooks"] = json!({"poststart": [shell_hook("exit 1", None)]});
    let c = oci.container("poststartfail");
    c.create(&b).ok();
    c.start().ok();
    assert_eq!(c.status(), "running");
}

#[test]
fn failing_poststop_does_not_block_delete() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["exit", "0"]);
    b.config["hooks"] = json!({"poststop": [shell_hook("exit 1", None)]});
    let c = oci.container("poststopfail");
    c.create(&b).ok();
    c.start().ok();
    c.wait_status("stopped");
    c.delete().ok();
    assert!(oci.root_entries().is_empty());
}

#[test]
fn a_hook_past_its_timeout_is_killed_and_fails_create() {
    let oci = Oci::new();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("hook.pid");
    let mut b = Bundle::probe(&["sleep", "30"]);
    let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
    b.config["hooks"] = json!({"createRuntime": [shell_hook(&script, Some(1))]});
    let c = oci.container("hooktimeout");
    let started = Instant::now();
    c.create(&b).fails();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let hook_pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    common::wait_pid_gone(hook_pid);
    assert!(oci.root_entries().is_empty());
    assert!(common::pids_in_cgroups_named(&c.id).is_empty());
}

#[test]
fn hooks_with_a_relative_path_are_rejected() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["exit", "0"]);
    b.config["hooks"] = json!({"prestart": [{"path": "bin/sh", "args": ["sh", "-c", "true"]}]});
    oci.container("hookrel").create(&b).fails();
    assert!(oci.root_entries().is_empty());
}
