//! `jaula-oci` command line: help, `features`, `spec`, id validation, errors, `list`, logs.

mod common;

use common::{Bundle, Oci};
use serde_json::Value;

#[test]
fn version_and_help() {
    let oci = Oci::new();
    let v = oci.run(&["--version"]);
    v.ok();
    let has_version = v.stdout.split_whitespace().any(|w| {
        let parts: Vec<&str> = w.trim_start_matches('v').split('.').collect();
        parts.len() >= 2
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    assert!(has_version, "no version number in {v:#?}");
    let h = oci.run(&["--help"]);
    h.ok();
    for verb in [
        "create", "start", "state", "kill", "delete", "run", "spec", "features",
    ] {
        assert!(h.stdout.contains(verb), "help lacks {verb}: {h:#?}");
    }
}

#[test]
fn unknown_command_fails() {
    let oci = Oci::new();
    let out = oci.run(&["frobnicate", "x"]);
    out.fails();
    assert!(!out.stderr.is_empty(), "{out:#?}");
    assert!(oci.root_entries().is_empty());
}

#[test]
fn features_names_namespaces_and_capabilities() {
    let oci = Oci::new();
    let out = oci.run(&["features"]);
    out.ok();
    let f = out.json();
    assert!(
        f["ociVersionMax"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{f}"
    );
    let has =
        |list: &Value, item: &str| list.as_array().is_some_and(|a| a.iter().any(|v| v == item));
    for ns in ["pid", "network", "mount", "ipc", "uts", "user", "cgroup"] {
        assert!(
            has(&f["linux"]["namespaces"], ns),
            "features lacks namespace {ns}"
        );
    }
    for cap in [
        "CAP_SYS_ADMIN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_CHOWN",
    ] {
        assert!(
            has(&f["linux"]["capabilities"], cap),
            "features lacks {cap}"
        );
    }
    for hook in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(has(&f["hooks"], hook), "features lacks hook {hook}");
    }
    for opt in ["ro", "nosuid", "nodev", "noexec", "bind", "rbind"] {
        assert!(
            has(&f["mountOptions"], opt),
            "features lacks mount option {opt}"
        );
    }
}

#[test]
fn spec_writes_a_valid_config_and_refuses_to_overwrite() {
    let oci = Oci::new();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().to_str().unwrap();
    oci.run(&["spec", "--bundle", bundle]).ok();
    let path = dir.path().join("config.json");
    let spec = jaula_spec::Spec::load(&path).expect("spec output parses as a Spec");
    assert_eq!(
        spec.root.as_ref().unwrap().path,
        std::path::Path::new("rootfs")
    );
    let process = spec.process.as_ref().expect("process");
    assert!(!process.args.is_empty());
    let linux = spec.linux.as_ref().expect("linux section");
    for ns in ["pid", "mount", "ipc", "uts", "network"] {
        assert!(
            linux.namespaces.iter().any(|n| n.typ == ns),
            "spec lacks {ns} namespace"
        );
    }
    assert!(linux
        .masked_paths
        .iter()
        .any(|p| p.as_os_str() == "/proc/kcore"));
    assert!(linux
        .readonly_paths
        .iter()
        .any(|p| p.as_os_str() == "/proc/sys"));
    let before = std::fs::read(&path).unwrap();
    oci.run(&["spec", "--bundle", bundle]).fails();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "existing config.json was changed"
    );
}

#[test]
fn spec_rootless_has_a_user_namespace_and_mappings() {
    let oci = Oci::new();
    let dir = tempfile::tempdir().unwrap();
    oci.run(&[
        "spec",
        "--rootless",
        "--bundle",
        dir.path().to_str().unwrap(),
    ])
    .ok();
    let spec = jaula_spec::Spec::load(&dir.path().join("config.json")).unwrap();
    let linux = spec.linux.unwrap();
    assert!(linux.namespaces.iter().any(|n| n.typ == "user"));
    assert!(!linux.uid_mappings.is_empty() && !linux.gid_mappings.is_empty());
}

#[test]
fn unknown_id_is_reported_as_not_existing() {
    let oci = Oci::new();
    let id = common::unique_id("ghost");
    for args in [
        vec!["state", id.as_str()],
        vec!["kill", id.as_str(), "KILL"],
        vec!["delete", id.as_str()],
        vec!["start", id.as_str()],
    ] {
        // containerd and conmon match this exact phrase.
        oci.run(&args).fails_with("container ID does not exist");
    }
    assert!(oci.root_entries().is_empty());
}

#[test]
fn invalid_ids_are_rejected_and_nothing_is_created() {
    let oci = Oci::new();
    let b = Bundle::probe(&["exit", "0"]);
    b.write_config();
    let long = "x".repeat(300);
    for id in ["../x", "a/b", "..", ".", "", "/abs", long.as_str()] {
        let out = oci.run(&["create", "--bundle", b.path().to_str().unwrap(), id]);
        out.fails();
        assert!(
            oci.root_entries().is_empty(),
            "id {id:?} left {:?}",
            oci.root_entries()
        );
    }
    // `../x` must not have been resolved next to the state root either.
    assert!(!oci.scratch().join("x").exists());
}

#[test]
fn list_prints_table_json_and_quiet() {
    let oci = Oci::new();
    let a = oci.container("list-a");
    let b = oci.container("list-b");
    let (ba, bb) = (
        Bundle::probe(&["sleep", "30"]),
        Bundle::probe(&["sleep", "30"]),
    );
    a.create(&ba).ok();
    b.create(&bb).ok();

    let table = oci.run(&["list"]);
    table.ok();
    let header = table.stdout.lines().next().unwrap_or_default();
    assert!(
        header.contains("ID") && header.contains("STATUS"),
        "{table:#?}"
    );
    for c in [&a, &b] {
        let row = table
            .stdout
            .lines()
            .find(|l| l.starts_with(&c.id))
            .expect("row per container");
        assert!(row.contains("created"), "{row}");
    }

    let json = oci.run(&["list", "--format", "json"]);
    json.ok();
    let entries: Vec<Value> = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    for c in [&a, &b] {
        let e = entries
            .iter()
            .find(|e| e["id"] == c.id.as_str())
            .expect("entry per container");
        assert_eq!(e["status"], "created");
        assert_eq!(e["pid"].as_i64().unwrap() as i32, c.pid());
    }

    let quiet = oci.run(&["list", "-q"]);
    quiet.ok();
    let mut ids: Vec<&str> = quiet.stdout.lines().collect();
    ids.sort();
    let mut want = vec![a.id.as_str(), b.id.as_str()];
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn list_of_an_empty_root_is_empty() {
    let oci = Oci::new();
    let json = oci.run(&["list", "--format", "json"]);
    json.ok();
    let v: Value = serde_json::from_str(json.stdout.trim()).unwrap_or(Value::Null);
    assert!(
        v.is_null() || v.as_array().is_some_and(|a| a.is_empty()),
        "{json:#?}"
    );
    let quiet = oci.run(&["list", "-q"]);
    quiet.ok();
    assert!(quiet.stdout.trim().is_empty());
}

#[test]
fn json_log_lines_carry_level_msg_time_and_end_with_the_error() {
    let oci = Oci::new();
    let log = oci.scratch_file("log.json");
    let id = common::unique_id("log");
    let log_s = log.to_str().unwrap();
    let out = oci.run(&["--log", log_s, "--log-format", "json", "state", &id]);
    out.fails();
    let text = std::fs::read_to_string(&log).expect("log file written");
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?} is not JSON: {e}"))
        })
        .collect();
    assert!(!lines.is_empty(), "no log lines");
    for l in &lines {
        for key in ["level", "msg", "time"] {
            assert!(
                l.get(key).is_some_and(|v| v.is_string()),
                "log line lacks {key}: {l}"
            );
        }
    }
    let last_error = lines
        .iter()
        .rev()
        .find(|l| l["level"] == "error")
        .expect("an error line");
    assert!(
        last_error["msg"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{last_error}"
    );
}

#[test]
fn text_log_records_the_error() {
    let oci = Oci::new();
    let log = oci.scratch_file("log.txt");
    let id = common::unique_id("logtxt");
    oci.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "text",
        "kill",
        &id,
        "KILL",
    ])
    .fails();
    let text = std::fs::read_to_string(&log).expect("log file written");
    assert!(text.contains("does not exist"), "{text}");
}
