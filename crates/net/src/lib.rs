//! Networking: netlink, eBPF bind isolation, veth/bridge, NAT.
