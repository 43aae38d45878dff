//! A real Debian: bookworm minbase with systemd, built with debootstrap from the host's
//! mirror, boots with its own init to `running` (or `degraded`) and shuts down cleanly.
//!
//! Gated on the mirror: it runs only where the mirror's Release file answers a HEAD request
//! within 5 seconds (it downloads about 60 MB and takes a minute or two).

mod server_common;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use server_common::{poll, unique_name, Jaula};

/// True when `{mirror}/dists/bookworm/Release` answers 200 to a HEAD request in time.
fn mirror_answers(mirror: &str) -> bool {
    let Some(rest) = mirror.strip_prefix("http://") else {
        return false;
    };
    let (host_port, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:80")
    };
    let host = host_port.split(':').next().unwrap_or(host_port);
    let Some(sock) = addr.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&sock, Duration::from_secs(5)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let req = format!(
        "HEAD /{path}/dists/bookworm/Release HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    let mut head = [0u8; 64];
    s.write_all(req.as_bytes()).is_ok()
        && s.read(&mut head).is_ok_and(|n| {
            String::from_utf8_lossy(&head[..n])
                .split_whitespace()
                .nth(1)
                == Some("200")
        })
}

#[test]
fn debian_bookworm_boots_systemd() {
    let mirror = jaula_server::build::default_mirror();
    if !mirror_answers(&mirror) {
        eprintln!("skipped: the Debian mirror {mirror} does not answer");
        return;
    }
    let j = Jaula::new();
    let name = unique_name("deb");
    let build = [
        "build",
        &name,
        "--method",
        "debootstrap",
        "--suite",
        "bookworm",
        "--variant",
        "minbase",
        "--init",
        "init",
    ];
    j.run_timeout(&build, Duration::from_secs(900)).ok();
    let rootfs = j.home().join(&name).join("rootfs");
    assert!(
        rootfs.join("lib/systemd/systemd").exists(),
        "systemd-sysv was not included"
    );
    j.run(&["start", &name]).ok();
    let state = poll(
        "systemd to finish booting",
        Duration::from_secs(120),
        || {
            let out = j.run(&["exec", &name, "--", "systemctl", "is-system-running"]);
            let s = out.stdout.trim().to_string();
            matches!(s.as_str(), "running" | "degraded").then_some(s)
        },
    );
    eprintln!("system state: {state}");
    assert_eq!(
        j.run(&["exec", &name, "--", "hostname"]).ok().stdout.trim(),
        name
    );
    let ps = j.run(&["ps", &name, "--json"]).ok().json();
    let cmds: Vec<String> = ps
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["command"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        cmds.iter().any(|c| c.contains("systemd-journald")),
        "{cmds:?}"
    );
    let comm = j.run(&["exec", &name, "--", "cat", "/proc/1/comm"]);
    assert_eq!(comm.ok().stdout.trim(), "systemd");
    // A clean shutdown: SIGRTMIN+3, no SIGKILL needed, exit code 0.
    let out = j.run(&["stop", &name, "--timeout", "60"]);
    out.ok();
    assert!(!out.stderr.contains("killed"), "{}", out.stderr);
    let status = j.run(&["status", &name]);
    assert_eq!(status.code(), 3);
    assert!(
        status.stdout.contains("last exit code 0"),
        "{}",
        status.stdout
    );
    j.run(&["destroy", &name, "--yes"]).ok();
    assert!(j.home_entries().is_empty());
}
