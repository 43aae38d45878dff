//! Isolated mode with a real server process: this test binary re-executes itself as a
//! child, the parent puts the child into the server's cgroup before the child creates any
//! socket, and then checks the child's sockets from outside (connects, `/proc/net/tcp`).
//!
//! It has its own `main` (no libtest harness) so the child mode needs no dummy test.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use jaula_net::{setup, teardown, IsolatedConfig, NetHandle, NetMode, ServerContext};
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrIn};

const SERVER: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 2);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("probe") {
        probe(&args[2], &args[3]);
    } else {
        parent();
        println!("test isolated_child_process ... ok");
    }
}

/// The "server": waits for the go-ahead (it is in the cgroup by then), makes its sockets,
/// reports, and keeps them open until its stdin closes.
fn probe(tcp_to: &str, udp_to: &str) {
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line).expect("read go");
    let listener = TcpListener::bind("0.0.0.0:0").expect("bind wildcard");
    println!("listen {}", listener.local_addr().unwrap());
    let other = TcpListener::bind((OTHER, 0))
        .map(|_| 0)
        .unwrap_or_else(|e| e.raw_os_error().unwrap_or(-1));
    println!("other {other}");
    let mut out = TcpStream::connect(tcp_to).expect("connect out");
    out.write_all(b"ok").unwrap();
    let udp: SocketAddr = udp_to.parse().unwrap();
    let SocketAddr::V4(udp) = udp else {
        panic!("{udp}")
    };
    let fd: OwnedFd = socket::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    socket::sendto(
        fd.as_raw_fd(),
        b"hi",
        &SockaddrIn::from(udp),
        MsgFlags::empty(),
    )
    .expect("sendto");
    println!("done");
    std::io::stdout().flush().unwrap();
    let mut rest = Vec::new();
    let _ = stdin.read_to_end(&mut rest);
    drop(listener);
}

/// Kills and reaps the child if the test fails midway.
struct Probe {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

struct Cleanup {
    cgroup: PathBuf,
    handle: Option<NetHandle>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = teardown(&h);
        }
        let _ = fs::remove_dir(&self.cgroup);
    }
}

/// Whether `/proc/net/tcp` of this namespace has a listener on `port`, and its address.
fn listening_on(port: u16) -> Vec<Ipv4Addr> {
    let table = fs::read_to_string("/proc/self/net/tcp").expect("read /proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (addr, p) = f.get(1)?.split_once(':')?;
            let listening = f.get(3) == Some(&"0A");
            let raw = u32::from_str_radix(addr, 16).ok()?;
            (listening && u16::from_str_radix(p, 16).ok()? == port)
                .then(|| Ipv4Addr::from(raw.to_ne_bytes()))
        })
        .collect()
}

fn parent() {
    common::private_host_netns();
    let cgroup = PathBuf::from("/sys/fs/cgroup/unified").join(common::unique("jaula-test-net-"));
    fs::create_dir(&cgroup).expect("create test cgroup");
    let mut cleanup = Cleanup {
        cgroup: cgroup.clone(),
        handle: None,
    };
    let mode = NetMode::Isolated(IsolatedConfig {
        addresses: vec![SERVER.to_string().parse().unwrap()],
        device: None,
    });
    let ctx = ServerContext {
        name: "childtest",
        ctx_id: 78,
        cgroup_dir: Some(&cgroup),
        netns: None,
        in_use: &[],
    };
    cleanup.handle = Some(setup(&mode, &ctx).expect("setup isolated"));

    let out = TcpListener::bind("127.0.0.5:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.5:0").unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "probe",
            &out.local_addr().unwrap().to_string(),
            &udp.local_addr().unwrap().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn probe");
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    let mut probe = Probe { child, stdin };
    fs::write(cgroup.join("cgroup.procs"), probe.child.id().to_string())
        .expect("move probe into cgroup");
    probe.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();

    let mut lines = BufReader::new(stdout)
        .lines()
        .map(|l| l.expect("probe output"));
    let listen: SocketAddr = lines
        .next()
        .unwrap()
        .strip_prefix("listen ")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(listen.ip(), IpAddr::V4(SERVER), "wildcard bind rewritten");
    assert_eq!(
        lines.next().unwrap(),
        format!("other {}", libc::EPERM),
        "foreign bind refused"
    );
    assert_eq!(lines.next().unwrap(), "done");

    // From outside: the probe listens on the server address only.
    assert_eq!(listening_on(listen.port()), vec![SERVER]);
    TcpStream::connect((SERVER, listen.port())).expect("reach the probe");
    let e = TcpStream::connect((OTHER, listen.port())).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    // Its outgoing traffic carries the server address.
    let (_, peer) = out.accept().unwrap();
    assert_eq!(peer.ip(), IpAddr::V4(SERVER));
    let mut buf = [0u8; 4];
    assert_eq!(udp.recv_from(&mut buf).unwrap().1.ip(), IpAddr::V4(SERVER));

    drop(probe.stdin.take());
    assert!(
        probe.child.wait().unwrap().success(),
        "probe exited cleanly"
    );
}
