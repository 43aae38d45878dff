//! Capability names -> bit masks for the five sets.

use super::{invalid, R};

/// Capability names indexed by number (linux/capability.h).
pub const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Number of a capability name (with or without the `CAP_` prefix, any case).
pub fn cap_number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CAP_NAMES.iter().position(|n| *n == full).map(|i| i as u32)
}

/// The five sets as bit masks. `None` (no `capabilities` object) leaves the
/// process's capabilities as they are, as runc does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub given: bool,
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

fn mask(key: &str, names: Option<&Vec<String>>) -> R<u64> {
    let mut m = 0u64;
    for n in names.into_iter().flatten() {
        let bit = cap_number(n).ok_or_else(|| invalid(key, format!("unknown capability {n:?}")))?;
        m |= 1 << bit;
    }
    Ok(m)
}

impl CapSets {
    pub fn from_spec(c: Option<&jaula_spec::Capabilities>) -> R<CapSets> {
        let Some(c) = c else {
            return Ok(CapSets::default());
        };
        let sets = CapSets {
            given: true,
            bounding: mask("process.capabilities.bounding", c.bounding.as_ref())?,
            effective: mask("process.capabilities.effective", c.effective.as_ref())?,
            inheritable: mask("process.capabilities.inheritable", c.inheritable.as_ref())?,
            permitted: mask("process.capabilities.permitted", c.permitted.as_ref())?,
            ambient: mask("process.capabilities.ambient", c.ambient.as_ref())?,
        };
        Ok(sets)
    }

    /// Names of the capabilities in a mask, for `features` and messages.
    pub fn names(mask: u64) -> Vec<&'static str> {
        (0..CAP_NAMES.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| CAP_NAMES[i])
            .collect()
    }
}
