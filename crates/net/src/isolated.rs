//! Isolated mode (chbind): host addresses for the server plus eBPF programs on its cgroup.
//!
//! The addresses are added to the host device that routes them, so the server can bind
//! them; the `cgroup/sock_addr` programs from [`crate::progs`] then keep every socket of
//! the cgroup on those addresses. Programs are attached with the legacy `BPF_PROG_ATTACH`
//! and `BPF_F_ALLOW_MULTI`: they stay attached after this process exits, and coexist with
//! programs attached by others (a parent cgroup's, or another tool's).

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use jaula_sys::bpf::{self, AttachFlags, AttachType, BpfError, ProgType};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::asm::AsmError;
use crate::cidr::IpCidr;
use crate::netlink::{Netlink, NetlinkError};
use crate::plan::IsolatedConfig;
use crate::progs::AddrSet;
use crate::ServerContext;

/// Errors of isolated mode.
#[derive(Debug, thiserror::Error)]
pub enum IsolatedError {
    #[error("isolated mode needs at least one address")]
    NoAddress,
    #[error("address {0} cannot be a server address (unspecified or multicast)")]
    BadAddress(IpAddr),
    #[error("address {0} is listed twice")]
    Duplicate(IpAddr),
    #[error("address {0} is already used by another server")]
    InUse(IpAddr),
    #[error("address {addr} is already configured on host device {device:?}")]
    OnHost { addr: IpAddr, device: String },
    #[error("cgroup directory {0} does not exist")]
    NoCgroup(PathBuf),
    #[error("cannot open cgroup directory {path}")]
    OpenCgroup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("assembling the {0:?} program")]
    Assemble(Hook, #[source] AsmError),
    #[error("{hook:?} program on cgroup {path}")]
    Bpf {
        hook: Hook,
        path: PathBuf,
        #[source]
        source: BpfError,
    },
}

/// The six `cgroup/sock_addr` attach points isolated mode uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    Bind4,
    Bind6,
    Connect4,
    Connect6,
    Sendmsg4,
    Sendmsg6,
}

impl Hook {
    pub const ALL: [Hook; 6] = [
        Hook::Bind4,
        Hook::Bind6,
        Hook::Connect4,
        Hook::Connect6,
        Hook::Sendmsg4,
        Hook::Sendmsg6,
    ];

    pub fn attach_type(self) -> AttachType {
        match self {
            Hook::Bind4 => AttachType::CgroupInet4Bind,
            Hook::Bind6 => AttachType::CgroupInet6Bind,
            Hook::Connect4 => AttachType::CgroupInet4Connect,
            Hook::Connect6 => AttachType::CgroupInet6Connect,
            Hook::Sendmsg4 => AttachType::CgroupUdp4Sendmsg,
            Hook::Sendmsg6 => AttachType::CgroupUdp6Sendmsg,
        }
    }

    fn program(self, set: &AddrSet) -> Result<Vec<bpf::Insn>, AsmError> {
        match self {
            Hook::Bind4 => set.bind4(),
            Hook::Bind6 => set.bind6(),
            Hook::Connect4 => set.connect4(),
            Hook::Connect6 => set.connect6(),
            Hook::Sendmsg4 => set.sendmsg4(),
            Hook::Sendmsg6 => set.sendmsg6(),
        }
    }
}

/// An address isolated mode added to a host device (and must remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedAddress {
    pub device: String,
    pub cidr: IpCidr,
}

/// A program attached to the server's cgroup, by kernel program id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedProg {
    pub hook: Hook,
    pub id: u32,
}

/// What isolated mode created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolatedHandle {
    pub cgroup_dir: PathBuf,
    /// The server's addresses, default first.
    pub addresses: Vec<IpCidr>,
    pub added: Vec<AddedAddress>,
    pub programs: Vec<AttachedProg>,
}

/// An address and the host device it goes on.
struct Placement {
    cidr: IpCidr,
    index: u32,
    device: String,
}

/// Checks the addresses against the host and decides which device each goes on.
fn validate(
    cfg: &IsolatedConfig,
    ctx: &ServerContext<'_>,
    nl: &mut Netlink,
) -> Result<Vec<Placement>, IsolatedError> {
    if cfg.addresses.is_empty() {
        return Err(IsolatedError::NoAddress);
    }
    let host = nl.addresses()?;
    let explicit = match &cfg.device {
        Some(name) => Some((nl.require_link(name)?, name.clone())),
        None => None,
    };
    let mut out: Vec<Placement> = Vec::new();
    for cidr in &cfg.addresses {
        let ip = cidr.addr();
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(IsolatedError::BadAddress(ip));
        }
        if out.iter().any(|p| p.cidr.addr() == ip) {
            return Err(IsolatedError::Duplicate(ip));
        }
        if ctx.in_use.contains(&ip) {
            return Err(IsolatedError::InUse(ip));
        }
        if let Some(existing) = host.iter().find(|a| a.cidr.addr() == ip) {
            return Err(IsolatedError::OnHost {
                addr: ip,
                device: nl.link_name(existing.index)?,
            });
        }
        let (index, device) = match &explicit {
            Some((index, name)) => (*index, name.clone()),
            None => {
                let index = nl.route_oif(ip)?;
                (index, nl.link_name(index)?)
            }
        };
        out.push(Placement {
            cidr: *cidr,
            index,
            device,
        });
    }
    Ok(out)
}

/// The address set the programs enforce: loopback-class addresses are those in 127/8
/// (IPv4) and those placed on `lo` (IPv6, which has no loopback range beyond ::1).
fn addr_set(placements: &[Placement]) -> AddrSet {
    let mut set = AddrSet::default();
    for p in placements {
        match p.cidr.addr() {
            IpAddr::V4(v4) => {
                set.v4.push(v4);
                if v4.is_loopback() && set.v4_loopback.is_none() {
                    set.v4_loopback = Some(v4);
                }
            }
            IpAddr::V6(v6) => {
                set.v6.push(v6);
                if (v6.is_loopback() || p.device == "lo") && set.v6_loopback.is_none() {
                    set.v6_loopback = Some(v6);
                }
            }
        }
    }
    set
}

/// Validates, adds the addresses, loads and attaches the programs. On failure, removes
/// what it added.
pub(crate) fn setup(
    cfg: &IsolatedConfig,
    ctx: &ServerContext<'_>,
    cgroup: &Path,
) -> Result<IsolatedHandle, IsolatedError> {
    let mut nl = Netlink::open()?;
    let placements = validate(cfg, ctx, &mut nl)?;
    if !cgroup.is_dir() {
        return Err(IsolatedError::NoCgroup(cgroup.to_owned()));
    }
    let mut handle = IsolatedHandle {
        cgroup_dir: cgroup.to_owned(),
        addresses: cfg.addresses.clone(),
        added: Vec::new(),
        programs: Vec::new(),
    };
    match build(&mut nl, &placements, &mut handle) {
        Ok(()) => Ok(handle),
        Err(e) => {
            // Best effort: the original error matters more than a failed undo.
            let _ = teardown(&handle);
            Err(e)
        }
    }
}

fn build(
    nl: &mut Netlink,
    placements: &[Placement],
    handle: &mut IsolatedHandle,
) -> Result<(), IsolatedError> {
    for p in placements {
        nl.add_address(p.index, p.cidr)?;
        handle.added.push(AddedAddress {
            device: p.device.clone(),
            cidr: p.cidr,
        });
    }
    let set = addr_set(placements);
    let cgroup = open_cgroup(&handle.cgroup_dir)?;
    for hook in Hook::ALL {
        let insns = hook
            .program(&set)
            .map_err(|e| IsolatedError::Assemble(hook, e))?;
        let bpf_err = |source| IsolatedError::Bpf {
            hook,
            path: handle.cgroup_dir.clone(),
            source,
        };
        let attach = hook.attach_type();
        let prog = bpf::prog_load(ProgType::CgroupSockAddr, Some(attach), &insns, c"GPL")
            .map_err(bpf_err)?;
        let id = bpf::prog_info(prog.as_fd()).map_err(bpf_err)?.id;
        bpf::prog_attach(
            cgroup.as_fd(),
            prog.as_fd(),
            attach,
            AttachFlags::ALLOW_MULTI,
        )
        .map_err(bpf_err)?;
        handle.programs.push(AttachedProg { hook, id });
    }
    Ok(())
}

fn open_cgroup(path: &Path) -> Result<OwnedFd, IsolatedError> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| IsolatedError::OpenCgroup {
            path: path.to_owned(),
            source,
        })
}

/// Detaches the programs and removes the added addresses; returns every failure.
pub(crate) fn teardown(handle: &IsolatedHandle) -> Vec<IsolatedError> {
    let mut errors = Vec::new();
    if let Err(e) = detach_programs(handle) {
        errors.push(e);
    }
    if let Err(e) = remove_addresses(handle) {
        errors.push(e);
    }
    errors
}

fn detach_programs(handle: &IsolatedHandle) -> Result<(), IsolatedError> {
    if handle.programs.is_empty() || !handle.cgroup_dir.exists() {
        // A removed cgroup has dropped its programs already.
        return Ok(());
    }
    let cgroup = open_cgroup(&handle.cgroup_dir)?;
    for prog in &handle.programs {
        let attach = prog.hook.attach_type();
        let bpf_err = |source| IsolatedError::Bpf {
            hook: prog.hook,
            path: handle.cgroup_dir.clone(),
            source,
        };
        // Detach only what is still attached, and only ours (by id).
        let attached = bpf::prog_query(cgroup.as_fd(), attach).map_err(bpf_err)?;
        if !attached.contains(&prog.id) {
            continue;
        }
        let fd = bpf::prog_get_fd_by_id(prog.id).map_err(bpf_err)?;
        bpf::prog_detach(cgroup.as_fd(), fd.as_fd(), attach).map_err(bpf_err)?;
    }
    Ok(())
}

fn remove_addresses(handle: &IsolatedHandle) -> Result<(), IsolatedError> {
    let mut nl = Netlink::open()?;
    for added in &handle.added {
        let Some(index) = nl.link_index(&added.device)? else {
            continue;
        };
        match nl.del_address(index, added.cidr) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(Errno::EADDRNOTAVAIL) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(ip: &str, device: &str) -> Placement {
        Placement {
            cidr: ip.parse().unwrap(),
            index: 1,
            device: device.into(),
        }
    }

    #[test]
    fn loopback_class_addresses_are_found() {
        let set = addr_set(&[
            placement("192.0.2.5", "eth0"),
            placement("127.0.77.1", "lo"),
            placement("2001:db8::5", "eth0"),
            placement("fd00:77::1", "lo"),
        ]);
        assert_eq!(set.v4.len(), 2);
        assert_eq!(set.v4_loopback, Some("127.0.77.1".parse().unwrap()));
        assert_eq!(set.v6_loopback, Some("fd00:77::1".parse().unwrap()));
        assert_eq!(
            set.v6[0],
            "2001:db8::5".parse::<std::net::Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn hooks_map_to_sock_addr_attach_types() {
        let types: Vec<_> = Hook::ALL.iter().map(|h| h.attach_type()).collect();
        assert_eq!(types.len(), 6);
        assert!(types.contains(&AttachType::CgroupUdp6Sendmsg));
        assert_eq!(
            serde_json::to_string(&Hook::Connect6).unwrap(),
            "\"connect6\""
        );
    }
}
