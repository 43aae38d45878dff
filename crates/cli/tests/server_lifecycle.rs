//! `jaula` lifecycle as root on the real kernel: busybox and host servers side by side, each
//! seeing only its own processes and hostname; exec exit codes; list and ps rows and JSON;
//! stop of a server that ignores SIGTERM; destroy.

mod server_common;

use std::time::{Duration, Instant};

use server_common::{cgroup_dirs, pid_alive, poll, unique_name, Jaula};

#[test]
fn busybox_and_host_servers_run_side_by_side() {
    let j = Jaula::new();
    let bb = unique_name("bb");
    let hs = unique_name("hs");
    j.busybox(&bb, &["--service", "sleep 1001"]).ok();
    j.run(&[
        "build",
        &hs,
        "--method",
        "host",
        "--service",
        "sleep 1002",
        "--hostname",
        "hostsrv",
    ])
    .ok();
    j.run(&["start", &bb, &hs]).ok();
    assert_eq!(j.run(&["status", &bb]).ok().code(), 0);

    // Each sees its own hostname.
    assert_eq!(
        j.run(&["exec", &bb, "--", "hostname"]).ok().stdout.trim(),
        bb
    );
    assert_eq!(
        j.run(&["exec", &hs, "--", "hostname"]).ok().stdout.trim(),
        "hostsrv"
    );

    // Each sees only its own processes.
    let ps_bb = j
        .run(&["exec", &bb, "--", "ps", "-o", "pid,args"])
        .ok()
        .stdout
        .clone();
    assert!(ps_bb.contains("sleep 1001"), "{ps_bb}");
    assert!(!ps_bb.contains("sleep 1002"), "{ps_bb}");
    let ps_hs = j
        .run(&["exec", &hs, "--", "ps", "-eo", "pid,args"])
        .ok()
        .stdout
        .clone();
    assert!(ps_hs.contains("sleep 1002"), "{ps_hs}");
    assert!(!ps_hs.contains("sleep 1001"), "{ps_hs}");
    assert!(
        !ps_hs.contains("server_lifecycle"),
        "host processes leak into the server: {ps_hs}"
    );

    // Exit codes pass back; arguments arrive unchanged; -u/-w/-e apply.
    assert_eq!(j.run(&["exec", &bb, "--", "sh", "-c", "exit 7"]).code(), 7);
    assert_eq!(j.run(&["exec", &bb, "--", "true"]).ok().code(), 0);
    let who = j.run(&[
        "exec",
        &bb,
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "-e",
        "X=y z",
        "--",
        "sh",
        "-c",
        "id -u; pwd; echo \"$X\"",
    ]);
    assert_eq!(who.ok().stdout, "65534\n/tmp\ny z\n");
    j.run(&["exec", &bb, "-u", "nosuchuser", "--", "true"])
        .fails_with("nosuchuser");

    // list: one row per context, the host as context 0.
    let row = j.list_row(&bb).expect("list row");
    assert_eq!(row["state"], "running");
    assert_eq!(row["kind"], "server");
    assert!(row["ctx"].as_u64().unwrap() >= 40000);
    assert!(row["proc"].as_u64().unwrap() >= 3, "{row}");
    assert!(row["rss"].as_u64().unwrap() > 0);
    let host = j.list_row("host").unwrap();
    assert_eq!(host["ctx"], 0);
    let table = j.run(&["list"]).ok().stdout.clone();
    let header = table.lines().next().unwrap();
    for col in [
        "CTX", "PROC", "VSZ", "RSS", "userTIME", "sysTIME", "UPTIME", "NAME", "STATE", "IP",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let line = table.lines().find(|l| l.contains(&bb)).unwrap();
    assert!(line.contains("running"), "{line}");

    // ps: the server's processes carry its context and name; host processes are context 0.
    let ps = j.run(&["ps", "--json"]).ok().json();
    let rows = ps.as_array().unwrap();
    let sleep = rows
        .iter()
        .find(|r| r["command"] == "sleep 1001")
        .expect("sleep 1001 in ps");
    assert_eq!(sleep["name"], bb.as_str());
    assert_eq!(sleep["ctx"], row["ctx"]);
    let me = rows
        .iter()
        .find(|r| r["pid"] == std::process::id())
        .expect("test process in ps");
    assert_eq!(
        (me["ctx"].as_u64(), me["name"].as_str()),
        (Some(0), Some("host"))
    );
    let only = j.run(&["ps", &hs, "--json"]).ok().json();
    assert!(only
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["name"] == hs.as_str()));
    assert!(j
        .run(&["ps"])
        .ok()
        .stdout
        .lines()
        .next()
        .unwrap()
        .contains("CTX"));

    // kill by in-server pid.
    let vpid = sleep["vpid"].as_i64().unwrap().to_string();
    j.run(&["kill", &bb, "-s", "KILL", &vpid]).ok();
    let host_pid = sleep["pid"].as_i64().unwrap();
    poll("killed sleep", Duration::from_secs(5), || {
        (!pid_alive(host_pid)).then_some(())
    });

    j.run(&["stop", &bb, &hs]).ok();
    assert_eq!(j.run(&["status", &bb]).code(), 3);
    assert_eq!(j.list_row(&hs).unwrap()["state"], "stopped");
    j.run(&["destroy", &bb, "--yes"]).ok();
    j.run(&["destroy", &hs, "--yes"]).ok();
    assert!(j.home_entries().is_empty(), "{:?}", j.home_entries());
    assert!(cgroup_dirs(&bb).is_empty(), "{:?}", cgroup_dirs(&bb));
}

#[test]
fn stop_kills_a_server_that_ignores_sigterm() {
    let j = Jaula::new();
    let name = unique_name("stubborn");
    j.busybox(
        &name,
        &["--service", "trap '' TERM; while :; do sleep 1; done"],
    )
    .ok();
    j.run(&["start", &name]).ok();
    let pid = j.list_row(&name).unwrap()["pid"].as_i64().unwrap();
    let t = Instant::now();
    let out = j.run(&["stop", &name, "--timeout", "1"]);
    out.ok();
    assert!(out.stderr.contains("killed"), "{}", out.stderr);
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert!(!pid_alive(pid));
    assert_eq!(j.run(&["status", &name]).code(), 3);
    // A command-style PID 1 has no SIGTERM handler, so the kernel ignores it too.
    let cmd = unique_name("cmd");
    j.busybox(&cmd, &["--init", "command", "--command", "sleep 1000"])
        .ok();
    j.run(&["start", &cmd]).ok();
    let out = j.run(&["stop", &cmd, "-t", "1"]);
    assert!(out.ok().stderr.contains("killed"), "{}", out.stderr);
    j.run(&["destroy", &name, "--yes"]).ok();
    j.run(&["destroy", &cmd, "--yes"]).ok();
    assert!(cgroup_dirs(&name).is_empty());
}

#[test]
fn a_server_outlives_its_jaula_processes() {
    let j = Jaula::new();
    let name = unique_name("survivor");
    j.busybox(&name, &["--service", "sleep 1003"]).ok();
    j.run(&["start", &name]).ok();
    // Killing the supervisor changes nothing about the server's state.
    let sup = supervisor_pid(&j, &name).expect("supervisor");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    poll("supervisor gone", Duration::from_secs(5), || {
        (!pid_alive(i64::from(sup))).then_some(())
    });
    assert_eq!(j.run(&["status", &name]).code(), 0);
    assert_eq!(
        j.run(&["start", &name])
            .fails_with("already running")
            .code(),
        1
    );
    // The init exits by itself: status follows the kernel, and start cleans the remains.
    j.run(&["kill", &name, "-s", "KILL"]).ok();
    poll("server stopped", Duration::from_secs(5), || {
        (j.run(&["status", &name]).code() == 3).then_some(())
    });
    j.run(&["start", &name]).ok();
    assert_eq!(j.run(&["status", &name]).code(), 0);
    j.run(&["restart", &name]).ok();
    assert_eq!(j.run(&["status", &name]).code(), 0);
    j.run(&["destroy", &name, "--yes", "--force"]).ok();
    assert!(j.home_entries().is_empty());
}

#[test]
fn start_all_follows_marks_in_context_order() {
    let j = Jaula::new();
    let a = unique_name("auto");
    let b = unique_name("manual");
    let c = unique_name("web");
    j.busybox(&a, &["--mark", "autostart", "--context", "40010"])
        .ok();
    j.busybox(&b, &["--context", "40005"]).ok();
    j.busybox(
        &c,
        &["--mark", "autostart", "--mark", "web", "--context", "40002"],
    )
    .ok();
    let out = j.run(&["start", "--all"]);
    let started: Vec<&str> = out.ok().stdout.lines().collect();
    assert_eq!(started, [format!("started {c}"), format!("started {a}")]);
    assert_eq!(j.run(&["status", &b]).code(), 3);
    j.run(&["start", "--all", "--mark", "web"]).ok();
    j.run(&["stop", "--all"]).ok();
    for n in [&a, &b, &c] {
        assert_eq!(j.run(&["status", n]).code(), 3);
    }
}

#[test]
fn logs_are_captured_and_capped() {
    let j = Jaula::new();
    let name = unique_name("chatty");
    // ~1.5 MiB of output, then a marker.
    let svc =
        "i=0; while [ $i -lt 3000 ]; do printf '%0500d\\n' $i; i=$((i+1)); done; echo done-writing";
    j.busybox(&name, &["--service", svc]).ok();
    j.run(&["start", &name]).ok();
    poll("log marker", Duration::from_secs(30), || {
        j.run(&["logs", &name])
            .stdout
            .contains("done-writing")
            .then_some(())
    });
    let dir = j.home().join(&name);
    let cur = std::fs::metadata(dir.join("console.log")).unwrap().len();
    let old = std::fs::metadata(dir.join("console.log.1")).unwrap().len();
    assert!(cur <= (1 << 20) + 256 * 1024, "console.log is {cur} bytes");
    assert!(old > 0 && old <= 1 << 20, "console.log.1 is {old} bytes");
    j.run(&["stop", &name]).ok();
}

/// The pid of the `jaula __supervise NAME` process.
fn supervisor_pid(j: &Jaula, name: &str) -> Option<i32> {
    let home = j.home().to_string_lossy().into_owned();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_sup = args.iter().any(|a| a == "__supervise")
            && args.iter().any(|a| a == name)
            && args.contains(&home);
        is_sup.then_some(pid)
    })
}

#[test]
fn oci_containers_show_up_in_list_and_ps() {
    let j = Jaula::new();
    let base = unique_name("base");
    j.busybox(&base, &["--privileged"]).ok();
    // A jaula-oci container in the same state root, on a copy of that rootfs.
    let bundle = j.scratch().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    let oci = env!("CARGO_BIN_EXE_jaula-oci");
    let st = std::process::Command::new(oci)
        .arg("spec")
        .current_dir(&bundle)
        .status()
        .unwrap();
    assert!(st.success());
    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["root"]["path"] = j.home().join(&base).join("rootfs").to_string_lossy().into();
    cfg["process"]["terminal"] = false.into();
    cfg["process"]["args"] = serde_json::json!(["sleep", "1004"]);
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let id = unique_name("oci");
    let run = |args: &[&str]| {
        std::process::Command::new(oci)
            .arg("--root")
            .arg(j.root())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    };
    assert!(run(&["run", "-d", "--bundle", &bundle.to_string_lossy(), &id]).success());
    let row = j.list_row(&id).expect("OCI container in list");
    assert_eq!(row["kind"], "oci");
    assert!(row["ctx"].is_null());
    assert_eq!(row["state"], "running");
    let table = j.run(&["list"]).ok().stdout.clone();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("    -") && l.contains(&id)),
        "{table}"
    );
    let ps = j.run(&["ps", &id, "--json"]).ok().json();
    assert!(
        ps.as_array()
            .unwrap()
            .iter()
            .any(|r| r["command"] == "sleep 1004"),
        "{ps}"
    );
    assert!(run(&["delete", "-f", &id]).success());
    assert!(j.list_row(&id).is_none());
}

#[test]
fn enter_and_exec_tty_use_a_pty() {
    let j = Jaula::new();
    let name = unique_name("tty");
    j.busybox(&name, &[]).ok();
    j.run(&["start", &name]).ok();
    // `script` gives jaula a terminal; the shell is /etc/passwd's (busybox sh, as a login
    // shell) and its exit code comes back.
    let jaula = |args: &str| {
        format!(
            "{} --home {} --root {} {args}",
            server_common::JAULA,
            j.home().display(),
            j.root().display()
        )
    };
    let script = |cmdline: String, input: &str| {
        let mut c = std::process::Command::new("script");
        c.args(["-eqc", &cmdline, "/dev/null"]);
        c.stdin(std::process::Stdio::piped());
        c.stdout(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = script(
        jaula(&format!("enter {name}")),
        "echo in-$HOME-$0; tty; exit 3\n",
    );
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("in-/root-"), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    let (code, out) = script(jaula(&format!("exec -t {name} -- tty")), "");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    // Without -t there is no terminal.
    assert_eq!(j.run(&["exec", &name, "--", "tty"]).code(), 1);
    j.run(&["stop", &name]).ok();
}

#[test]
fn minimal_init_runs_rc_local_and_reaps_orphans() {
    let j = Jaula::new();
    let name = unique_name("rc");
    // The service leaves an orphan that exits at once: only PID 1 can reap it.
    j.busybox(
        &name,
        &["--service", "sh -c 'sleep 0.1 &' ; exec sleep 1005"],
    )
    .ok();
    let rc = j.home().join(&name).join("rootfs/etc/rc.local");
    std::fs::write(
        &rc,
        "#!/bin/sh\necho \"rc.local ran with $1\" > /tmp/rc-marker\n",
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    j.run(&["start", &name]).ok();
    poll("rc.local marker", Duration::from_secs(5), || {
        let out = j.run(&["exec", &name, "--", "cat", "/tmp/rc-marker"]);
        (out.stdout == "rc.local ran with start\n").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let ps = j.run(&["ps", &name, "--json"]).ok().json();
    let rows = ps.as_array().unwrap();
    assert!(rows.iter().any(|r| r["command"] == "sleep 1005"), "{ps}");
    assert!(rows.iter().all(|r| r["stat"] != "Z"), "zombie left: {ps}");
    // The stop goes through PID 1 to the services; all exit, the server reports code 0.
    let out = j.run(&["stop", &name]);
    assert!(!out.ok().stderr.contains("killed"), "{}", out.stderr);
    assert!(j
        .run(&["status", &name])
        .stdout
        .contains("last exit code 0"));
}
