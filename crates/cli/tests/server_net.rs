//! Isolated (chbind) networking end to end through `jaula`: two busybox web servers
//! both bind 0.0.0.0, each gets only its own loopback address, binds to the other's
//! address are refused, outgoing connections carry the server's address, and the
//! addresses are gone after stop. Loopback only.

mod server_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use server_common::{poll, unique_name, Jaula};

const PROBE: &str = env!("CARGO_BIN_EXE_jaula-probe");
const PORT: u16 = 18080;

/// GET / from `addr`, or None when nothing answers.
fn get(addr: &str) -> Option<String> {
    let sa: SocketAddr = format!("{addr}:{PORT}").parse().unwrap();
    let mut s = TcpStream::connect_timeout(&sa, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

fn lo_has(addr: &str) -> bool {
    let out = std::process::Command::new("ip")
        .args(["-o", "addr", "show", "dev", "lo"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains(&format!("{addr}/"))
}

fn web(j: &Jaula, name: &str, addr: &str) {
    let cmd = format!("httpd -f -p 0.0.0.0:{PORT} -h /www");
    j.busybox(
        name,
        &["--ip", addr, "--init", "command", "--command", &cmd],
    )
    .ok();
    let rootfs = j.home().join(name).join("rootfs");
    std::fs::create_dir_all(rootfs.join("www")).unwrap();
    std::fs::write(rootfs.join("www/index.html"), format!("page of {name}\n")).unwrap();
    std::fs::copy(PROBE, rootfs.join("bin/probe")).unwrap();
}

#[test]
fn two_isolated_web_servers_each_get_only_their_own_address() {
    let j = Jaula::new();
    let (a, b) = (unique_name("weba"), unique_name("webb"));
    let (addr_a, addr_b) = ("127.0.61.1", "127.0.61.2");
    web(&j, &a, addr_a);
    web(&j, &b, addr_b);
    j.run(&["start", &a, &b]).ok();
    assert!(
        lo_has(addr_a) && lo_has(addr_b),
        "addresses not added to lo"
    );

    let page_a = poll("web a answers", Duration::from_secs(10), || get(addr_a));
    let page_b = poll("web b answers", Duration::from_secs(10), || get(addr_b));
    assert!(page_a.contains(&format!("page of {a}")), "{page_a}");
    assert!(page_b.contains(&format!("page of {b}")), "{page_b}");
    assert!(
        get("127.0.0.1").is_none(),
        "the wildcard bind reached 127.0.0.1"
    );

    // Inside a, binding b's address is refused.
    let out = j.run(&["exec", &a, "--", "/bin/probe", "bind", addr_b, "18091"]);
    assert_ne!(
        out.code(),
        0,
        "bind to another server's address succeeded: {out:?}"
    );

    // An outgoing connection from a carries a's address.
    let listener = TcpListener::bind("127.0.62.9:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let out = j.run(&[
        "exec",
        &a,
        "--",
        "/bin/probe",
        "connect",
        "127.0.62.9",
        &port,
    ]);
    out.ok();
    let (_conn, peer) = listener.accept().unwrap();
    assert_eq!(peer.ip().to_string(), addr_a, "source address not pinned");

    j.run(&["stop", &a, &b, "--timeout", "1"]).ok();
    assert!(
        !lo_has(addr_a) && !lo_has(addr_b),
        "addresses left on lo after stop"
    );
}
