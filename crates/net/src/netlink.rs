//! A small blocking rtnetlink client: links, addresses and routes of one network namespace.
//!
//! A netlink socket talks to the namespace it was created in, for its whole life. So a
//! client for another namespace is made by creating the socket on a short-lived thread that
//! first `setns`es into it ([`Netlink::open_in`]); the calling thread never changes namespace.

use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;
use nix::sched::CloneFlags;

use crate::cidr::IpCidr;

/// Errors of netlink requests. Each names the object the request was about.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a netlink socket")]
    Socket(#[source] std::io::Error),
    #[error("cannot enter the network namespace to open a netlink socket")]
    Setns(#[source] Errno),
    #[error("netlink i/o failed while {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("undecodable netlink reply while {what}: {detail}")]
    Decode { what: String, detail: String },
    #[error("kernel refused {what}")]
    Kernel {
        what: String,
        #[source]
        source: Errno,
    },
    #[error("network device {0:?} does not exist")]
    NoDevice(String),
    #[error("no route to {0}")]
    NoRoute(IpAddr),
}

impl NetlinkError {
    /// The kernel's errno, when the kernel refused the request.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            NetlinkError::Kernel { source, .. } => Some(*source),
            _ => None,
        }
    }
}

/// One address configured on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAddress {
    pub index: u32,
    pub cidr: IpCidr,
}

/// A connected rtnetlink socket.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").field("seq", &self.seq).finish()
    }
}

impl Netlink {
    /// A client for the calling thread's network namespace.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        socket.bind_auto().map_err(NetlinkError::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        Ok(Netlink { socket, seq: 0 })
    }

    /// A client for the network namespace `netns` (an open `/proc/PID/ns/net` or similar).
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Netlink, NetlinkError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                // Only this short-lived thread moves; the socket stays bound to `netns`.
                nix::sched::setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(NetlinkError::Setns)?;
                Netlink::open()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Sends one request and collects the replies until the ack or the end of the dump.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        let io = |source| NetlinkError::Io {
            what: what.to_owned(),
            source,
        };
        self.socket.send(&buf, 0).map_err(io)?;
        let mut replies = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full().map_err(io)?;
            let mut offset = 0;
            while offset < data.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                    .map_err(|e| NetlinkError::Decode {
                        what: what.to_owned(),
                        detail: e.to_string(),
                    })?;
                let len = reply.header.length as usize;
                if reply.header.sequence_number != self.seq {
                    // A late reply to an earlier request; not ours.
                    offset += len.max(1);
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(code) => Err(NetlinkError::Kernel {
                                what: what.to_owned(),
                                source: Errno::from_raw(-code.get()),
                            }),
                        }
                    }
                    NetlinkPayload::InnerMessage(m) => {
                        replies.push(m);
                        // A non-dump request without ACK ends with its single reply.
                        if flags & (NLM_F_DUMP | NLM_F_ACK) == 0 {
                            return Ok(replies);
                        }
                    }
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }

    /// Index of the link called `name`, or `None` if there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        let what = format!("looking up link {name:?}");
        match self.request(RouteNetlinkMessage::GetLink(msg), 0, &what) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Index of the link called `name`; a missing link is an error naming it.
    pub fn require_link(&mut self, name: &str) -> Result<u32, NetlinkError> {
        self.link_index(name)?
            .ok_or_else(|| NetlinkError::NoDevice(name.to_owned()))
    }

    /// Name of the link with index `index`.
    pub fn link_name(&mut self, index: u32) -> Result<String, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        let what = format!("looking up link index {index}");
        let replies = self.request(RouteNetlinkMessage::GetLink(msg), 0, &what)?;
        replies
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                }),
                _ => None,
            })
            .ok_or_else(|| NetlinkError::NoDevice(format!("#{index}")))
    }

    /// Every address of every link in the namespace.
    pub fn addresses(&mut self) -> Result<Vec<LinkAddress>, NetlinkError> {
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
            "listing addresses",
        )?;
        let mut out = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewAddress(m) = reply else {
                continue;
            };
            // IFA_LOCAL is the interface's own address on point-to-point links; prefer it.
            let local = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let address = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = local.or(address) {
                if let Ok(cidr) = IpCidr::new(ip, m.header.prefix_len) {
                    out.push(LinkAddress {
                        index: m.header.index,
                        cidr,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Index of the link the kernel would send traffic for `dst` through.
    pub fn route_oif(&mut self, dst: IpAddr) -> Result<u32, NetlinkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family(dst);
        msg.header.destination_prefix_length = full_prefix(dst);
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst)));
        let what = format!("looking up the route to {dst}");
        let replies = match self.request(RouteNetlinkMessage::GetRoute(msg), 0, &what) {
            Err(e) if matches!(e.errno(), Some(Errno::ENETUNREACH | Errno::EHOSTUNREACH)) => {
                return Err(NetlinkError::NoRoute(dst))
            }
            other => other?,
        };
        replies
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => {
                    r.attributes.into_iter().find_map(|a| match a {
                        RouteAttribute::Oif(i) => Some(i),
                        _ => None,
                    })
                }
                _ => None,
            })
            .ok_or(NetlinkError::NoRoute(dst))
    }

    fn address_message(index: u32, cidr: IpCidr) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = family(cidr.addr());
        msg.header.prefix_len = cidr.prefix();
        msg.header.index = index;
        msg.header.scope = if cidr.addr().is_loopback() {
            AddressScope::Host
        } else {
            AddressScope::Universe
        };
        msg.attributes.push(AddressAttribute::Local(cidr.addr()));
        msg.attributes.push(AddressAttribute::Address(cidr.addr()));
        msg
    }

    /// Adds `cidr` to link `index`. IPv6 addresses skip duplicate address detection, so
    /// they can be bound at once: jaula checks for duplicates itself before adding.
    pub fn add_address(&mut self, index: u32, cidr: IpCidr) -> Result<(), NetlinkError> {
        let mut msg = Self::address_message(index, cidr);
        if cidr.addr().is_ipv6() {
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        let what = format!("adding address {cidr} to link #{index}");
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &what,
        )?;
        Ok(())
    }

    /// Removes `cidr` from link `index`.
    pub fn del_address(&mut self, index: u32, cidr: IpCidr) -> Result<(), NetlinkError> {
        let msg = Self::address_message(index, cidr);
        let what = format!("removing address {cidr} from link #{index}");
        self.request(RouteNetlinkMessage::DelAddress(msg), NLM_F_ACK, &what)?;
        Ok(())
    }

    /// Brings link `index` up.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        let what = format!("bringing link #{index} up");
        self.request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK, &what)?;
        Ok(())
    }

    /// Creates a bridge called `name` and returns its index.
    pub fn create_bridge(&mut self, name: &str) -> Result<u32, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        let what = format!("creating bridge {name:?}");
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &what,
        )?;
        self.require_link(name)
    }

    /// Creates a veth pair: `host` here, enslaved to `master`, and `peer` created directly in
    /// the namespace `peer_netns`. Returns the index of the host end.
    pub fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<u32, NetlinkError> {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(spec.peer.to_owned()));
        peer.attributes
            .push(LinkAttribute::NetNsFd(std::os::fd::AsRawFd::as_raw_fd(
                &spec.peer_netns,
            )));
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(spec.host.to_owned()));
        msg.attributes.push(LinkAttribute::Controller(spec.master));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        let what = format!("creating veth pair {:?}/{:?}", spec.host, spec.peer);
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &what,
        )?;
        self.require_link(spec.host)
    }

    /// Deletes link `index` (for a veth, both ends go).
    pub fn del_link(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        let what = format!("deleting link #{index}");
        self.request(RouteNetlinkMessage::DelLink(msg), NLM_F_ACK, &what)?;
        Ok(())
    }

    /// Number of links enslaved to `master`.
    pub fn port_count(&mut self, master: u32) -> Result<usize, NetlinkError> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
            "listing links",
        )?;
        Ok(replies
            .iter()
            .filter(|m| match m {
                RouteNetlinkMessage::NewLink(l) => {
                    l.attributes.contains(&LinkAttribute::Controller(master))
                }
                _ => false,
            })
            .count())
    }

    /// Adds a default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: IpAddr) -> Result<(), NetlinkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family(gateway);
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
        let what = format!("adding a default route via {gateway}");
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &what,
        )?;
        Ok(())
    }
}

/// What [`Netlink::create_veth`] creates.
#[derive(Debug)]
pub struct VethSpec<'a> {
    /// Name of the end that stays in the calling namespace.
    pub host: &'a str,
    /// Name of the end created in `peer_netns`.
    pub peer: &'a str,
    /// Bridge the host end joins.
    pub master: u32,
    pub peer_netns: BorrowedFd<'a>,
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn full_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}
