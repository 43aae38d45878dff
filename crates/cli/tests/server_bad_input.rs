//! Every bad input gets one clear line, a non-zero exit, and leaves nothing half-made.

mod server_common;

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use server_common::{poll, unique_name, Jaula};

#[test]
fn unknown_servers_are_named() {
    let j = Jaula::new();
    for verb in [
        vec!["start"],
        vec!["stop"],
        vec!["status"],
        vec!["destroy", "--yes"],
        vec!["logs"],
        vec!["kill"],
        vec!["enter"],
        vec!["restart"],
    ] {
        let mut args = verb.clone();
        args.insert(1, "ghost");
        let out = j.run(&args);
        out.fails_with("no server named \"ghost\"");
    }
    j.run(&["exec", "ghost", "--", "true"]).fails_with("ghost");
    j.run(&["ps", "ghost"]).fails_with("ghost");
    j.run(&["build", "x", "--method", "clone", "--source", "ghost"])
        .fails_with("ghost");
    assert!(j.home_entries().is_empty());
}

#[test]
fn bad_names_are_refused() {
    let j = Jaula::new();
    for bad in ["Web", "_x", "a/b", "a..b", ".hidden", "a b", "x\u{e9}"] {
        j.run(&["build", bad, "--method", "host"])
            .fails_with("invalid server name");
        j.run(&["start", bad]).fails_with("invalid server name");
    }
    assert!(j.home_entries().is_empty());
}

#[test]
fn existing_names_ids_and_addresses_are_refused() {
    let j = Jaula::new();
    let a = unique_name("a");
    j.run(&[
        "build",
        &a,
        "--method",
        "host",
        "--ip",
        "127.0.77.1",
        "--context",
        "40123",
    ])
    .ok();
    let before = j.home_entries();
    j.run(&["build", &a, "--method", "busybox"])
        .fails_with("already exists");
    let b = unique_name("b");
    j.run(&["build", &b, "--method", "busybox", "--context", "40123"])
        .fails_with("context id 40123 is already used");
    j.run(&["build", &b, "--method", "busybox", "--ip", "127.0.77.1/8"])
        .fails_with("address 127.0.77.1 is already used");
    j.run(&["build", &b, "--method", "busybox", "--ip", "300.1.1.1"])
        .fails_with("300.1.1.1");
    j.run(&["build", &b, "--method", "busybox", "--memory", "lots"])
        .fails_with("lots");
    j.run(&["build", &b, "--method", "busybox", "--init", "command"])
        .fails_with("init.command");
    assert_eq!(j.home_entries(), before);
}

#[test]
fn missing_or_non_directory_rootfs() {
    let j = Jaula::new();
    j.run(&[
        "build",
        "x",
        "--method",
        "dir",
        "--source",
        "/nonexistent/dir",
    ])
    .fails_with("/nonexistent/dir does not exist");
    j.run(&["build", "x", "--method", "dir", "--source", "/etc/hostname"])
        .fails_with("is not a directory");
    j.run(&[
        "build",
        "x",
        "--method",
        "tar",
        "--source",
        "/nonexistent.tar",
    ])
    .fails_with("does not exist");
    assert!(j.home_entries().is_empty());
    let name = unique_name("norootfs");
    j.busybox(&name, &[]).ok();
    let rootfs = j.home().join(&name).join("rootfs");
    std::fs::rename(&rootfs, j.scratch().join("saved")).unwrap();
    j.run(&["start", &name]).fails_with("rootfs");
    std::fs::write(&rootfs, "not a dir").unwrap();
    j.run(&["start", &name]).fails_with("is not a directory");
    assert_eq!(j.run(&["status", &name]).code(), 3);
}

#[test]
fn broken_server_toml_names_file_line_and_key() {
    let j = Jaula::new();
    let name = unique_name("broken");
    j.busybox(&name, &[]).ok();
    let path = j.home().join(&name).join("server.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines = text.lines().count();
    std::fs::write(&path, format!("{text}\n[limits]\nmemroy = \"1G\"\n")).unwrap();
    let out = j.run(&["start", &name]);
    let want = format!("server.toml:{}: key limits.memroy", lines + 3);
    out.fails_with(&want);
    assert!(
        out.stderr.contains(&path.to_string_lossy().into_owned()),
        "{}",
        out.stderr
    );
    // A server whose definition is broken can still be destroyed.
    j.run(&["destroy", &name, "--yes"]).ok();
    assert!(j.home_entries().is_empty());
}

#[test]
fn failing_debootstrap_leaves_nothing() {
    let j = Jaula::new();
    // Nothing listens on port 9 (discard) of this loopback address: retrieval fails at once.
    let out = j.run(&[
        "build",
        "deb",
        "--method",
        "debootstrap",
        "--suite",
        "bookworm",
        "--mirror",
        "http://127.0.0.1:9/debian",
    ]);
    out.fails_with("debootstrap failed");
    assert!(j.home_entries().is_empty(), "{:?}", j.home_entries());
}

#[test]
fn interrupted_build_leaves_nothing() {
    let j = Jaula::new();
    // A mirror that accepts and never answers keeps debootstrap waiting until we interrupt.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(4).flatten() {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(30));
        drop(held);
    });
    let mirror = format!("http://127.0.0.1:{port}/debian");
    let mut child = j
        .command(&[
            "build",
            "slow",
            "--method",
            "debootstrap",
            "--suite",
            "bookworm",
            "--mirror",
            &mirror,
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    poll("staging dir", Duration::from_secs(20), || {
        j.home_entries()
            .iter()
            .any(|e| e.starts_with(".build-slow-"))
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = server_common::wait_timeout(&mut child, Duration::from_secs(20))
        .expect("build ends after SIGINT");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(j.home_entries().is_empty(), "{:?}", j.home_entries());
    drop(hold);
}

#[test]
fn destroy_refuses_running_servers_and_non_tty_without_yes() {
    let j = Jaula::new();
    let name = unique_name("keep");
    j.busybox(&name, &[]).ok();
    j.run(&["destroy", &name]).fails_with("--yes");
    j.run(&["start", &name]).ok();
    j.run(&["destroy", &name, "--yes"]).fails_with("is running");
    assert_eq!(j.run(&["status", &name]).code(), 0);
    j.run(&["destroy", &name, "--yes", "--force"]).ok();
    assert!(j.home_entries().is_empty());
    j.run(&["status", &name]).fails_with("no server named");
}

#[test]
fn rootfs_under_private_directories_starts() {
    let j = Jaula::new();
    // The runtime mounts the rootfs from the host side, so no directory above it has to
    // let the server's unprivileged root through: 0700 ancestors are fine (and safer).
    let outer = j.scratch().join("private");
    std::fs::create_dir(&outer).unwrap();
    let home = outer.join("home");
    let name = unique_name("hidden");
    let run = |args: &[&str]| {
        let mut c = std::process::Command::new(server_common::JAULA);
        c.arg("--home")
            .arg(&home)
            .arg("--root")
            .arg(j.root())
            .args(args);
        j.run_cmd(c, args)
    };
    run(&["build", &name, "--method", "busybox"]).ok();
    std::fs::set_permissions(&outer, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    run(&["start", &name]).ok();
    assert_eq!(run(&["exec", &name, "--", "sh", "-c", "exit 6"]).code(), 6);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&outer).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "start must not open up directories");
    run(&["destroy", &name, "--yes", "--force"]).ok();
}
