//! The container process: args, env, cwd, user, rlimits, sysctls, capabilities, stdio, fds.

mod common;

use common::{cap_mask, cap_set, probe_info, Bundle, Io, Oci, DEFAULT_CAPS};
use serde_json::{json, Value};

fn env_of(info: &Value) -> Vec<String> {
    let mut v: Vec<String> = info["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn args_env_and_cwd_are_exact() {
    let info = probe_info(|b| {
        b.process()["env"] = json!(["A=1", "B=two words", "PATH=/bin"]);
        b.process()["cwd"] = json!("/tmp");
    });
    // The runtime may add HOME (as runc does) but nothing else.
    let env: Vec<String> = env_of(&info)
        .into_iter()
        .filter(|e| !e.starts_with("HOME="))
        .collect();
    assert_eq!(env, ["A=1", "B=two words", "PATH=/bin"]);
    assert_eq!(info["cwd"], "/tmp");
}

#[test]
fn args_are_passed_verbatim() {
    let oci = Oci::new();
    let b = Bundle::new(&[
        "/bin/sh",
        "-c",
        "printf '%s|' \"$@\"",
        "zero",
        "a b",
        "",
        "*",
    ]);
    let out = oci.container("args").run(&b);
    out.ok();
    assert_eq!(out.stdout, "a b||*|");
}

#[test]
fn a_relative_binary_is_found_on_the_path() {
    let oci = Oci::new();
    let mut b = Bundle::new(&["probe", "exit", "5"]);
    b.process()["env"] = json!(["PATH=/nothing:/bin"]);
    assert_eq!(oci.container("path").run(&b).code(), 5);
}

#[test]
fn user_groups_and_umask_are_set() {
    let info = probe_info(|b| {
        b.process()["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 10], "umask": 0o027});
    });
    assert_eq!(
        (info["uid"].as_i64(), info["euid"].as_i64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(
        (info["gid"].as_i64(), info["egid"].as_i64()),
        (Some(1000), Some(1000))
    );
    let mut groups: Vec<i64> = info["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_i64().unwrap())
        .collect();
    groups.sort();
    groups.retain(|&g| g != 1000);
    assert_eq!(groups, [5, 10]);
    assert_eq!(info["umask"], 0o027);
    // A non-root user keeps no capabilities in its effective or permitted set.
    assert_eq!(cap_mask(&info["caps"]["CapEff"]), 0);
    assert_eq!(cap_mask(&info["caps"]["CapPrm"]), 0);
}

#[test]
fn root_without_additional_gids_has_no_supplementary_groups() {
    let info = probe_info(|_| {});
    assert_eq!(info["uid"], 0);
    assert_eq!(info["groups"], json!([]));
}

#[test]
fn rlimits_are_applied() {
    let info = probe_info(|b| {
        b.process()["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
            {"type": "RLIMIT_NPROC", "soft": 900, "hard": 1000}
        ]);
    });
    assert_eq!(info["rlimits"]["RLIMIT_NOFILE"], json!([512, 2048]));
    assert_eq!(info["rlimits"]["RLIMIT_CORE"], json!([0, 0]));
    assert_eq!(info["rlimits"]["RLIMIT_NPROC"], json!([900, 1000]));
}

#[test]
fn a_hard_limit_above_ours_is_capped_when_we_cannot_raise_it() {
    // Podman asks for nofile 1048576 by default. Where the runtime's own hard limit is
    // lower and it lacks CAP_SYS_RESOURCE, the container gets our hard limit (less than
    // asked, never more) instead of failing to start.
    let ours = std::fs::read_to_string("/proc/self/limits").unwrap();
    let hard: u64 = ours
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let want = hard.saturating_mul(4).min(1 << 20).max(hard + 1);
    let info = probe_info(|b| {
        b.process()["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": want, "hard": want}]);
    });
    let got = info["rlimits"]["RLIMIT_NOFILE"][1].as_u64().unwrap();
    assert!(
        got >= hard && got <= want,
        "hard {got} not within [{hard}, {want}]"
    );
    assert!(info["rlimits"]["RLIMIT_NOFILE"][0].as_u64().unwrap() <= got);
}

#[test]
fn an_unknown_rlimit_is_rejected() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["info"]);
    b.process()["rlimits"] = json!([{"type": "RLIMIT_FROBNICATE", "soft": 1, "hard": 1}]);
    oci.container("badrl").create(&b).fails();
    assert!(oci.root_entries().is_empty());
}

#[test]
fn namespaced_sysctls_are_applied_inside_only() {
    let oci = Oci::new();
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_msgmax = std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap();
    let mut b = Bundle::new(&[
        "/bin/sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax",
    ]);
    let forward = if host_forward.trim() == "1" { "0" } else { "1" };
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": forward, "kernel.msgmax": "4321"});
    let out = oci.container("sysctl").run(&b);
    out.ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        [forward, "4321"]
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_forward
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap(),
        host_msgmax
    );
}

#[test]
fn sysctls_outside_the_container_namespaces_are_rejected() {
    let oci = Oci::new();
    let host_swappiness = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
    for (key, value) in [
        ("vm.swappiness", "7"),
        ("net.ipv4.ip_forward", "1"),
        ("kernel.msgmax", "4321"),
    ] {
        let mut b = Bundle::probe(&["exit", "0"]);
        b.config["linux"]["sysctl"] = json!({key: value});
        // Without its namespace a net or ipc sysctl would change the host.
        b.remove_namespace("network");
        b.remove_namespace("ipc");
        oci.container("badsysctl").create(&b).fails();
        assert!(oci.root_entries().is_empty(), "{key}");
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap(),
        host_swappiness
    );
}

#[test]
fn oom_score_adj_is_applied() {
    let info = probe_info(|b| b.process()["oomScoreAdj"] = json!(500));
    assert_eq!(info["oom_score_adj"], 500);
}

#[test]
fn no_new_privileges_follows_the_config() {
    assert_eq!(probe_info(|_| {})["no_new_privs"], 1);
    let info = probe_info(|b| b.process()["noNewPrivileges"] = json!(false));
    assert_eq!(info["no_new_privs"], 0);
}

#[test]
fn default_capability_sets_are_exact() {
    let info = probe_info(|_| {});
    let caps = &info["caps"];
    let want = cap_set(&DEFAULT_CAPS);
    assert_eq!(cap_mask(&caps["CapBnd"]), want, "bounding");
    assert_eq!(cap_mask(&caps["CapEff"]), want, "effective");
    assert_eq!(cap_mask(&caps["CapPrm"]), want, "permitted");
    assert_eq!(
        cap_mask(&caps["CapInh"]),
        0,
        "inheritable was not configured"
    );
    assert_eq!(cap_mask(&caps["CapAmb"]), 0, "ambient was not configured");
}

/// Bounding, permitted, inheritable and ambient differ. Effective equals permitted: for
/// root, `execve` makes it so (and with no_new_privs permitted cannot grow past the config).
#[test]
fn all_five_capability_sets_are_set_independently() {
    let info = probe_info(|b| {
        b.process()["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_SETPCAP"],
            "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
            "ambient": ["CAP_KILL"]
        });
    });
    let caps = &info["caps"];
    assert_eq!(
        cap_mask(&caps["CapBnd"]),
        cap_set(&[
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_NET_RAW",
            "CAP_SYS_ADMIN",
            "CAP_SETPCAP"
        ])
    );
    assert_eq!(
        cap_mask(&caps["CapPrm"]),
        cap_set(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"])
    );
    assert_eq!(
        cap_mask(&caps["CapEff"]),
        cap_set(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"])
    );
    assert_eq!(
        cap_mask(&caps["CapInh"]),
        cap_set(&["CAP_KILL", "CAP_NET_RAW"])
    );
    assert_eq!(cap_mask(&caps["CapAmb"]), cap_set(&["CAP_KILL"]));
}

#[test]
fn ambient_capabilities_survive_for_a_non_root_user() {
    let info = probe_info(|b| {
        b.set_caps(&["CAP_NET_BIND_SERVICE"]);
        b.process()["user"] = json!({"uid": 1000, "gid": 1000});
        b.process()["noNewPrivileges"] = json!(true);
    });
    let want = cap_set(&["CAP_NET_BIND_SERVICE"]);
    assert_eq!(cap_mask(&info["caps"]["CapEff"]), want);
    assert_eq!(cap_mask(&info["caps"]["CapAmb"]), want);
}

#[test]
fn an_unknown_capability_is_rejected() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["info"]);
    b.set_caps(&["CAP_FROBNICATE"]);
    oci.container("badcap").create(&b).fails();
    assert!(oci.root_entries().is_empty());
}

#[test]
fn stdout_and_stderr_pass_through_without_a_terminal() {
    let oci = Oci::new();
    let b = Bundle::new(&["/bin/sh", "-c", "echo to-out; echo to-err >&2"]);
    let out = oci.container("stdio").run(&b);
    out.ok();
    assert_eq!(out.stdout, "to-out\n");
    assert!(out.stderr.contains("to-err\n"), "{out:#?}");
    let info = probe_info(|_| {});
    assert_eq!(info["isatty"], json!([false, false, false]));
    assert_eq!(info["tty"], Value::Null);
}

fn fd_numbers(info: &Value) -> Vec<i64> {
    info["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fd"].as_i64().unwrap())
        .collect()
}

/// Two host files handed to the runtime as descriptors 3 and 4.
fn two_fd_files(oci: &Oci) -> Vec<std::path::PathBuf> {
    let files = vec![oci.scratch_file("fd3"), oci.scratch_file("fd4")];
    for f in &files {
        std::fs::write(f, "").unwrap();
    }
    files
}

#[test]
fn only_stdio_is_open_inside_by_default() {
    let oci = Oci::new();
    let b = Bundle::probe(&["info"]);
    let io = Io {
        extra_fds: two_fd_files(&oci),
        ..Default::default()
    };
    let out = oci.container("fds").run_with(&b, &[], io);
    out.ok();
    assert_eq!(fd_numbers(&out.json()), [0, 1, 2], "{}", out.json()["fds"]);
}

#[test]
fn preserve_fds_and_listen_fds_reach_the_process() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["listen-fds"]);
    b.process()["env"] = json!(["PATH=/bin", "LISTEN_FDS=2", "LISTEN_PID=1"]);
    let io = Io {
        extra_fds: two_fd_files(&oci),
        ..Default::default()
    };
    let out = oci
        .container("listen")
        .run_with(&b, &["--preserve-fds", "2"], io);
    out.ok();
    let v = out.json();
    assert_eq!(v["listen_fds"], 2);
    assert_eq!(v["pid"], 1);
    assert_eq!(v["listen_pid"], "1");
    assert_eq!(v["open"], json!([true, true]));

    let b = Bundle::probe(&["info"]);
    let files = two_fd_files(&oci);
    let io = Io {
        extra_fds: files.clone(),
        ..Default::default()
    };
    let out = oci
        .container("preserve")
        .run_with(&b, &["--preserve-fds", "2"], io);
    out.ok();
    let info = out.json();
    assert_eq!(fd_numbers(&info), [0, 1, 2, 3, 4], "{}", info["fds"]);
    // The descriptors are the very files the caller passed.
    for (i, f) in files.iter().enumerate() {
        let target = info["fds"][3 + i]["target"].as_str().unwrap();
        assert!(
            target.ends_with(f.file_name().unwrap().to_str().unwrap()),
            "fd {}: {target}",
            3 + i
        );
    }
}

#[test]
fn preserved_fds_can_be_written_by_the_container() {
    let oci = Oci::new();
    let b = Bundle::new(&["/bin/sh", "-c", "echo via-fd3 >&3"]);
    let files = two_fd_files(&oci);
    let io = Io {
        extra_fds: files[..1].to_vec(),
        ..Default::default()
    };
    oci.container("fd3w")
        .run_with(&b, &["--preserve-fds", "1"], io)
        .ok();
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), "via-fd3\n");
}

#[test]
fn terminal_gives_a_controlling_pty_of_the_configured_size() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["info"]);
    b.process()["terminal"] = json!(true);
    b.process()["consoleSize"] = json!({"height": 33, "width": 101});
    let rx = common::ConsoleReceiver::new(&oci);
    let c = oci.container("tty");
    c.create_with(
        &b,
        &["--console-socket", rx.socket.to_str().unwrap()],
        Io::default(),
    )
    .ok();
    c.start().ok();
    c.wait_status("stopped");
    let text = rx.finish();
    let info: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert_eq!(info["isatty"], json!([true, true, true]));
    let tty = &info["tty"];
    assert!(
        tty["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("/dev/pts/")),
        "{tty}"
    );
    assert_eq!(tty["winsize"], json!({"rows": 33, "cols": 101}));
    // The process leads its own session and the pty is its controlling terminal.
    assert_eq!(info["sid"], info["pid"]);
    assert_eq!(tty["tcgetsid"], info["pid"]);
}

#[test]
fn terminal_without_a_console_socket_is_rejected_by_create() {
    let oci = Oci::new();
    let mut b = Bundle::probe(&["info"]);
    b.process()["terminal"] = json!(true);
    oci.container("ttynosock").create(&b).fails();
    assert!(oci.root_entries().is_empty());
}
