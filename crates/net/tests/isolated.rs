//! Isolated mode end to end: addresses, eBPF programs on a real cgroup v2 directory, and
//! sockets of a process inside that cgroup, checked from outside.
//!
//! The test runs in a private network namespace (so `lo` of the host is never touched)
//! and moves this test process itself into the cgroup while it creates the "server"
//! sockets: cgroup sock_addr programs act on a socket according to the cgroup of the
//! process that created it, so this is what a server process experiences. This file holds
//! one test only, since the whole process moves.

mod common;

use std::fs;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use jaula_net::netlink::Netlink;
use jaula_net::{
    setup, teardown, HandleState, Hook, IsolatedConfig, NetHandle, NetMode, ServerContext,
};
use jaula_sys::bpf;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrIn, SockaddrIn6,
};

const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// A cgroup v2 directory for the test, removed on drop.
struct CgroupDir {
    path: PathBuf,
}

impl CgroupDir {
    fn create() -> CgroupDir {
        let path = PathBuf::from(UNIFIED).join(common::unique("jaula-test-net-"));
        fs::create_dir(&path).expect("create test cgroup");
        CgroupDir { path }
    }

    /// Moves this process into the cgroup until the guard drops.
    fn enter(&self) -> Inside {
        let own = fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
        let back = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .expect("unified cgroup line")
            .trim_start_matches('/')
            .to_owned();
        fs::write(
            self.path.join("cgroup.procs"),
            std::process::id().to_string(),
        )
        .expect("enter test cgroup");
        Inside {
            back: PathBuf::from(UNIFIED).join(back),
        }
    }
}

impl Drop for CgroupDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}

struct Inside {
    back: PathBuf,
}

impl Drop for Inside {
    fn drop(&mut self) {
        fs::write(
            self.back.join("cgroup.procs"),
            std::process::id().to_string(),
        )
        .expect("leave test cgroup");
    }
}

/// Tears the network down on drop, so a failing assertion leaves nothing behind.
struct Torn(Option<NetHandle>);

impl Drop for Torn {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = teardown(&h);
        }
    }
}

const SERVER4: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 1);
const OTHER4: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 2);

fn server6() -> Ipv6Addr {
    "fd00:77::1".parse().unwrap()
}

fn is_eperm(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EPERM)
}

/// Sends one datagram from a socket that was never bound, so only the sendmsg program can
/// choose its source address.
fn send_unbound(family: AddressFamily, to: SocketAddr) {
    let fd: OwnedFd = socket::socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .expect("udp socket");
    let sent = match to {
        SocketAddr::V4(a) => socket::sendto(
            fd.as_raw_fd(),
            b"hi",
            &SockaddrIn::from(a),
            MsgFlags::empty(),
        ),
        SocketAddr::V6(a) => socket::sendto(
            fd.as_raw_fd(),
            b"hi",
            &SockaddrIn6::from(a),
            MsgFlags::empty(),
        ),
    };
    sent.expect("sendto");
}

fn accept_peer(l: &TcpListener) -> IpAddr {
    let (mut s, peer) = l.accept().expect("accept");
    let mut buf = [0u8; 2];
    s.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"ok");
    peer.ip()
}

#[test]
fn isolated_mode_end_to_end() {
    common::private_host_netns();
    let cg = CgroupDir::create();
    let mode = NetMode::Isolated(IsolatedConfig {
        addresses: vec!["127.0.77.1".parse().unwrap(), "fd00:77::1".parse().unwrap()],
        device: Some("lo".into()),
    });
    let ctx = ServerContext {
        name: "isotest",
        ctx_id: 77,
        cgroup_dir: Some(&cg.path),
        netns: None,
        in_use: &[],
    };
    let handle = Torn(Some(setup(&mode, &ctx).expect("setup isolated")));
    let h = handle.0.clone().unwrap();
    let HandleState::Isolated(iso) = &h.state else {
        panic!("wrong handle {h:?}")
    };
    assert_eq!(iso.added.len(), 2);
    assert_eq!(iso.programs.len(), 6);

    // The host side, outside the cgroup.
    let out4 = TcpListener::bind("127.0.0.5:0").unwrap();
    let out6 = TcpListener::bind("[::]:0").unwrap();
    let udp4 = UdpSocket::bind("127.0.0.5:0").unwrap();
    let udp6 = UdpSocket::bind("[::]:0").unwrap();

    let (any4, lo4, any6, lo6, _c4, _c6, looped);
    {
        let _inside = cg.enter();
        any4 = TcpListener::bind("0.0.0.0:0").unwrap();
        lo4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let e = TcpListener::bind((OTHER4, 0)).unwrap_err();
        assert!(is_eperm(&e), "bind to a foreign address: {e}");
        any6 = TcpListener::bind("[::]:0").unwrap();
        lo6 = TcpListener::bind("[::1]:0").unwrap();
        let e = TcpListener::bind("[fd00:77::2]:0").unwrap_err();
        assert!(is_eperm(&e), "bind6 to a foreign address: {e}");

        // Outgoing: the source is pinned; localhost is the server's own address.
        let mut c4 = TcpStream::connect(out4.local_addr().unwrap()).unwrap();
        std::io::Write::write_all(&mut c4, b"ok").unwrap();
        let port6 = out6.local_addr().unwrap().port();
        let mut c6 = TcpStream::connect(("::1", port6)).unwrap();
        std::io::Write::write_all(&mut c6, b"ok").unwrap();
        looped = TcpStream::connect(("127.0.0.1", any4.local_addr().unwrap().port())).unwrap();
        send_unbound(AddressFamily::Inet, udp4.local_addr().unwrap());
        send_unbound(
            AddressFamily::Inet6,
            SocketAddr::from((Ipv6Addr::LOCALHOST, udp6.local_addr().unwrap().port())),
        );
        (_c4, _c6) = (c4, c6);
    }

    // Listening sockets sit on the server's addresses only.
    assert_eq!(any4.local_addr().unwrap().ip(), IpAddr::V4(SERVER4));
    assert_eq!(lo4.local_addr().unwrap().ip(), IpAddr::V4(SERVER4));
    assert_eq!(any6.local_addr().unwrap().ip(), IpAddr::V6(server6()));
    assert_eq!(lo6.local_addr().unwrap().ip(), IpAddr::V6(server6()));
    let port = any4.local_addr().unwrap().port();
    let refused = TcpStream::connect((OTHER4, port)).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    TcpStream::connect((SERVER4, port)).expect("server address reachable");

    // Connections and datagrams arrive from the server's addresses.
    assert_eq!(accept_peer(&out4), IpAddr::V4(SERVER4));
    assert_eq!(accept_peer(&out6), IpAddr::V6(server6()));
    assert_eq!(looped.peer_addr().unwrap().ip(), IpAddr::V4(SERVER4));
    let mut buf = [0u8; 8];
    assert_eq!(
        udp4.recv_from(&mut buf).unwrap().1.ip(),
        IpAddr::V4(SERVER4)
    );
    let (_, from6) = udp6.recv_from(&mut buf).unwrap();
    assert_eq!(from6.ip(), IpAddr::V6(server6()));

    // Outside the cgroup nothing is restricted.
    TcpListener::bind((OTHER4, 0)).expect("host binds freely");

    // The programs stay attached after our fds are gone, and teardown removes exactly them.
    let cgfd = OwnedFd::from(fs::File::open(&cg.path).unwrap());
    for p in &iso.programs {
        let ids = bpf::prog_query(cgfd.as_fd(), p.hook.attach_type()).unwrap();
        assert!(ids.contains(&p.id), "{:?} {} not in {ids:?}", p.hook, p.id);
    }
    teardown(&h).expect("teardown");
    for hook in Hook::ALL {
        assert!(bpf::prog_query(cgfd.as_fd(), hook.attach_type())
            .unwrap()
            .is_empty());
    }
    let left = Netlink::open().unwrap().addresses().unwrap();
    for ip in [IpAddr::V4(SERVER4), IpAddr::V6(server6())] {
        assert!(
            !left.iter().any(|a| a.cidr.addr() == ip),
            "{ip} still configured"
        );
    }
    // A second teardown finds nothing to do.
    teardown(&h).expect("idempotent teardown");
}
