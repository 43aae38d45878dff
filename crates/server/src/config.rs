//! `server.toml`: the definition of one virtual server, its parsing and its validation.
//!
//! Parsing is strict (unknown keys are errors) and every error names the file, the line and
//! the key, because an admin edits this file by hand. Values that need checking (sizes, CPU
//! counts, addresses) are typed, so a bad value is caught while parsing, where its position
//! is known; checks that span several keys run after parsing and locate the key in the text.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::{ByteSize, Cpus};

/// The file name of a server definition inside its directory.
pub const FILE_NAME: &str = "server.toml";

/// The lowest and highest context ids a server may have. 0 is the host and 1 the spectator,
/// as in Linux-VServer; the top is where `ctx << 16` still leaves 65536 user ids below
/// `u32::MAX` (the id that means "no id").
pub const MIN_CONTEXT: u32 = 2;
pub const MAX_CONTEXT: u32 = 65534;
/// Where automatic allocation starts, as util-vserver's dynamic contexts did.
pub const FIRST_AUTO_CONTEXT: u32 = 40000;

/// Why a `server.toml` could not be read, parsed or accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: key {key}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialize the definition for {path}")]
    Serialize {
        path: PathBuf,
        #[source]
        source: toml::ser::Error,
    },
}

/// One server's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The context id: unique among servers, shown by `list` and used for the uid range.
    pub context: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Free-form marks; `autostart` is the one `start --all` uses by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<String>,
    #[serde(default)]
    pub init: InitConfig,
    #[serde(default, skip_serializing_if = "is_default")]
    pub network: NetworkConfig,
    #[serde(default, skip_serializing_if = "is_default")]
    pub limits: Limits,
    #[serde(default)]
    pub security: Security,
    #[serde(default, rename = "mount", skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountConfig>,
}

/// How the server's first process is chosen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    #[serde(default)]
    pub style: InitStyle,
    /// `command`: the command (required). `init`: the init program (default `/sbin/init`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// `minimal`: shell command lines started in the background after `/etc/rc.local`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Overrides the style's stop signal (a name such as `SIGTERM` or `RTMIN+3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL when `--timeout` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
}

/// The init styles of the issue: the distribution's init, jaula's reaper, or one command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitStyle {
    Init,
    #[default]
    Minimal,
    Command,
}

impl FromStr for InitStyle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "init" => Ok(InitStyle::Init),
            "minimal" => Ok(InitStyle::Minimal),
            "command" => Ok(InitStyle::Command),
            _ => Err(format!(
                "unknown init style {s:?} (expected init, minimal or command)"
            )),
        }
    }
}

impl fmt::Display for InitStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InitStyle::Init => "init",
            InitStyle::Minimal => "minimal",
            InitStyle::Command => "command",
        })
    }
}

/// The network of a server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Unset: `isolated` when there are addresses, `none` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<NetMode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Cidr>,
    /// `veth`: `HOSTPORT:PORT[/tcp|/udp]` forwards from the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<Publish>,
    /// `veth`: the host bridge (default `jaula0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// `isolated`: the host device the addresses go on (default: the one that routes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// `veth`: masquerade the server's outgoing traffic behind the host.
    #[serde(default, skip_serializing_if = "is_false")]
    pub masquerade: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Empty tables are left out of a written `server.toml`.
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl NetworkConfig {
    /// The mode in force, applying the default.
    pub fn effective_mode(&self) -> NetMode {
        self.mode.unwrap_or(if self.addresses.is_empty() {
            NetMode::None
        } else {
            NetMode::Isolated
        })
    }
}

/// `isolated` (chbind on the host stack), `veth` (own stack), `none` (loopback), `host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    Isolated,
    Veth,
    None,
    Host,
}

impl FromStr for NetMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "isolated" => Ok(NetMode::Isolated),
            "veth" => Ok(NetMode::Veth),
            "none" => Ok(NetMode::None),
            "host" => Ok(NetMode::Host),
            _ => Err(format!(
                "unknown network mode {s:?} (expected isolated, veth, none or host)"
            )),
        }
    }
}

impl fmt::Display for NetMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetMode::Isolated => "isolated",
            NetMode::Veth => "veth",
            NetMode::None => "none",
            NetMode::Host => "host",
        })
    }
}

/// An address with its prefix length; a bare address is a host route (/32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid address {s:?} (expected ADDR or ADDR/PREFIX)");
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
        };
        if prefix > max || addr.is_unspecified() || addr.is_multicast() {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A published port: traffic to the host's `host_port` goes to the server's `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    pub host_port: u16,
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl FromStr for Publish {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid published port {s:?} (expected HOSTPORT:PORT[/tcp|/udp])");
        let (ports, protocol) = match s.rsplit_once('/') {
            Some((p, "tcp")) => (p, Protocol::Tcp),
            Some((p, "udp")) => (p, Protocol::Udp),
            Some(_) => return Err(bad()),
            None => (s, Protocol::Tcp),
        };
        let (h, c) = ports.split_once(':').ok_or_else(bad)?;
        let host_port: u16 = h.parse().map_err(|_| bad())?;
        let port: u16 = c.parse().map_err(|_| bad())?;
        if host_port == 0 || port == 0 {
            return Err(bad());
        }
        Ok(Publish {
            host_port,
            port,
            protocol,
        })
    }
}

impl fmt::Display for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        write!(f, "{}:{}/{proto}", self.host_port, self.port)
    }
}

/// Serializes a `FromStr + Display` type as its string form.
macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(Cidr);
string_serde!(Publish);

/// Resource limits, each enforced by a cgroup controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Cpus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
}

/// The server's security settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// `true` runs the server without a user namespace: its root is the host's root.
    #[serde(default)]
    pub privileged: bool,
    /// The exact capability set; unset means [`crate::spec::DEFAULT_CAPABILITIES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub seccomp: SeccompChoice,
}

/// Which seccomp filter the server gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompChoice {
    /// jaula's default profile (Docker-like allow list).
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// An OCI `linux.seccomp` JSON document.
    Profile(PathBuf),
}

impl FromStr for SeccompChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" => Ok(SeccompChoice::Default),
            "unconfined" => Ok(SeccompChoice::Unconfined),
            p if p.starts_with('/') => Ok(SeccompChoice::Profile(p.into())),
            _ => Err(format!(
                "invalid seccomp setting {s:?} (expected \"default\", \"unconfined\" or an absolute path to a profile)"
            )),
        }
    }
}

impl fmt::Display for SeccompChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeccompChoice::Default => f.write_str("default"),
            SeccompChoice::Unconfined => f.write_str("unconfined"),
            SeccompChoice::Profile(p) => write!(f, "{}", p.display()),
        }
    }
}
string_serde!(SeccompChoice);

/// An extra mount; `type = "bind"` (the default) binds a host path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountConfig {
    pub source: PathBuf,
    pub destination: PathBuf,
    #[serde(default = "bind", rename = "type")]
    pub typ: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

fn bind() -> String {
    "bind".into()
}

/// Capability names the kernel knows (without the `CAP_` prefix).
pub const KNOWN_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// `CAP_X` for `x`, `X` or `CAP_X`; `None` for a name the kernel does not know.
pub fn normalize_capability(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    KNOWN_CAPABILITIES
        .contains(&bare)
        .then(|| format!("CAP_{bare}"))
}

impl ServerConfig {
    /// A definition with defaults and the given context id.
    pub fn new(context: u32) -> ServerConfig {
        ServerConfig {
            context,
            hostname: None,
            marks: Vec::new(),
            init: InitConfig::default(),
            network: NetworkConfig::default(),
            limits: Limits::default(),
            security: Security::default(),
            mounts: Vec::new(),
        }
    }

    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates `text`; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<ServerConfig, ConfigError> {
        let cfg: ServerConfig = toml::from_str(text).map_err(|e| {
            let (line, key) = locate_error(text, e.span(), e.message());
            ConfigError::Invalid {
                path: path.into(),
                line,
                key,
                message: e.message().trim().to_string(),
            }
        })?;
        cfg.validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.into(),
                line: line_of_key(text, &key),
                key,
                message,
            })?;
        Ok(cfg)
    }

    /// The TOML text of this definition.
    pub fn to_toml(&self, path: &Path) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|source| ConfigError::Serialize {
            path: path.into(),
            source,
        })
    }

    /// Writes the definition atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = self.to_toml(path)?;
        let write_err = |source| ConfigError::Write {
            path: path.into(),
            source,
        };
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(write_err)?;
        std::fs::rename(&tmp, path).map_err(write_err)
    }

    /// Checks that involve several keys or ranges; the error is `(dotted key, message)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((k.to_string(), m));
        if !(MIN_CONTEXT..=MAX_CONTEXT).contains(&self.context) {
            return err(
                "context",
                format!("{} is outside {MIN_CONTEXT}..={MAX_CONTEXT}", self.context),
            );
        }
        if let Some(h) = &self.hostname {
            if !valid_hostname(h) {
                return err("hostname", format!("invalid hostname {h:?}"));
            }
        }
        for m in &self.marks {
            if m.is_empty()
                || !m
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
            {
                return err(
                    "marks",
                    format!("invalid mark {m:?} (letters, digits, _ and -)"),
                );
            }
        }
        self.validate_init()?;
        self.validate_network()?;
        self.validate_security()?;
        self.validate_mounts()
    }

    fn validate_init(&self) -> Result<(), (String, String)> {
        let init = &self.init;
        match init.style {
            InitStyle::Command if init.command.is_empty() => Err((
                "init.command".into(),
                "init style \"command\" needs a command".into(),
            )),
            InitStyle::Minimal if !init.command.is_empty() => Err((
                "init.command".into(),
                "init style \"minimal\" takes no command; list programs in init.services".into(),
            )),
            InitStyle::Init | InitStyle::Command if !init.services.is_empty() => Err((
                "init.services".into(),
                format!(
                    "init style {:?} takes no services; only \"minimal\" runs them",
                    init.style.to_string()
                ),
            )),
            _ => match &init.stop_signal {
                Some(s) if crate::signal::parse(s).is_none() => {
                    Err(("init.stop_signal".into(), format!("unknown signal {s:?}")))
                }
                _ => Ok(()),
            },
        }
    }

    fn validate_network(&self) -> Result<(), (String, String)> {
        let net = &self.network;
        let mode = net.effective_mode();
        let key = |k: &str| format!("network.{k}");
        match mode {
            NetMode::Isolated if net.addresses.is_empty() => {
                return Err((
                    key("mode"),
                    "mode \"isolated\" needs at least one address".into(),
                ))
            }
            NetMode::None | NetMode::Host if !net.addresses.is_empty() => {
                return Err((
                    key("addresses"),
                    format!("mode \"{mode}\" takes no addresses"),
                ))
            }
            _ => {}
        }
        if mode != NetMode::Veth && !net.publish.is_empty() {
            return Err((key("publish"), "published ports need mode \"veth\"".into()));
        }
        if mode != NetMode::Veth && net.bridge.is_some() {
            return Err((key("bridge"), "a bridge needs mode \"veth\"".into()));
        }
        if mode != NetMode::Veth && net.masquerade {
            return Err((key("masquerade"), "masquerading needs mode \"veth\"".into()));
        }
        if mode != NetMode::Isolated && net.device.is_some() {
            return Err((key("device"), "a device needs mode \"isolated\"".into()));
        }
        for (i, a) in net.addresses.iter().enumerate() {
            if net.addresses[..i].iter().any(|b| b.addr == a.addr) {
                return Err((
                    key("addresses"),
                    format!("address {} is listed twice", a.addr),
                ));
            }
        }
        Ok(())
    }

    fn validate_security(&self) -> Result<(), (String, String)> {
        for c in self.security.capabilities.iter().flatten() {
            if normalize_capability(c).is_none() {
                return Err((
                    "security.capabilities".into(),
                    format!("unknown capability {c:?}"),
                ));
            }
        }
        Ok(())
    }

    fn validate_mounts(&self) -> Result<(), (String, String)> {
        for m in &self.mounts {
            let dest_ok = m.destination.is_absolute()
                && !m.destination.components().any(|c| c.as_os_str() == "..");
            if !dest_ok {
                return Err((
                    "mount.destination".into(),
                    format!(
                        "{} must be an absolute path without \"..\"",
                        m.destination.display()
                    ),
                ));
            }
            if m.typ == "bind" && !m.source.is_absolute() {
                return Err((
                    "mount.source".into(),
                    format!(
                        "bind source {} must be an absolute path",
                        m.source.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The hostname in force: the configured one or the server's name.
    pub fn hostname_or<'a>(&'a self, name: &'a str) -> &'a str {
        self.hostname.as_deref().unwrap_or(name)
    }

    /// True when the server carries `mark`.
    pub fn has_mark(&self, mark: &str) -> bool {
        self.marks.iter().any(|m| m == mark)
    }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
pub fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The 1-based line and the dotted key an error span points into.
fn locate_error(
    text: &str,
    span: Option<std::ops::Range<usize>>,
    message: &str,
) -> (usize, String) {
    let Some(span) = span else {
        return (
            1,
            missing_field(message).unwrap_or_else(|| "(document)".into()),
        );
    };
    let start = span.start.min(text.len());
    let line = text[..start].matches('\n').count() + 1;
    let table = table_at(text, line);
    let line_text = text.lines().nth(line - 1).unwrap_or("");
    let key = if let Some(field) = missing_field(message) {
        join_key(&table, &field)
    } else if let Some(k) = key_of_line(line_text) {
        join_key(&table, &k)
    } else if table.is_empty() {
        "(document)".into()
    } else {
        table
    };
    (line, key)
}

/// The field named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.split("missing field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

fn join_key(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.into()
    } else {
        format!("{table}.{key}")
    }
}

/// The key assigned on a `key = value` line.
fn key_of_line(line: &str) -> Option<String> {
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty() && !k.starts_with('[') && !k.starts_with('#')).then(|| k.to_string())
}

/// The `[table]` or `[[table]]` header in force at 1-based `line`.
fn table_at(text: &str, line: usize) -> String {
    text.lines()
        .take(line)
        .filter_map(table_header)
        .last()
        .unwrap_or_default()
}

fn table_header(line: &str) -> Option<String> {
    let t = line.trim();
    if !t.starts_with('[') {
        return None;
    }
    let inner = t.trim_start_matches('[');
    let end = inner.find(']')?;
    Some(inner[..end].trim().to_string())
}

/// The 1-based line where dotted `key` is assigned (or its table starts), 1 if not found.
fn line_of_key(text: &str, key: &str) -> usize {
    let (table, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let mut current = String::new();
    let mut table_line = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(t) = table_header(line) {
            current = t;
            if current == table && table_line.is_none() {
                table_line = Some(i + 1);
            }
            continue;
        }
        if current == table && key_of_line(line).as_deref() == Some(leaf) {
            return i + 1;
        }
    }
    table_line.unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
        ServerConfig::parse(text, Path::new("/h/web/server.toml"))
    }

    fn invalid(text: &str) -> (usize, String, String) {
        match parse(text).unwrap_err() {
            ConfigError::Invalid {
                line, key, message, ..
            } => (line, key, message),
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn full_definition_round_trips() {
        let text = r#"
context = 40001
hostname = "web.example"
marks = ["autostart"]

[init]
style = "minimal"
services = ["httpd -f -p 8080"]

[network]
addresses = ["127.0.1.1", "fd00::1/64"]

[limits]
memory = "512M"
cpus = 1.5
pids = 100

[security]
capabilities = ["CHOWN", "cap_kill"]
seccomp = "default"

[[mount]]
source = "/srv/data"
destination = "/data"
options = ["ro"]
"#;
        let cfg = parse(text).unwrap();
        assert_eq!(cfg.context, 40001);
        assert_eq!(cfg.network.effective_mode(), NetMode::Isolated);
        assert_eq!(cfg.network.addresses[0].to_string(), "127.0.1.1/32");
        assert_eq!(cfg.limits.memory, Some(ByteSize(512 << 20)));
        assert_eq!(cfg.limits.cpus, Some(Cpus(1500)));
        assert_eq!(cfg.mounts[0].typ, "bind");
        let again = parse(&cfg.to_toml(Path::new("x")).unwrap()).unwrap();
        assert_eq!(again, cfg);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let (line, key, msg) = invalid("context = 40000\n[limits]\nmemroy = \"1G\"\n");
        assert_eq!((line, key.as_str()), (3, "limits.memroy"));
        assert!(msg.contains("unknown field"), "{msg}");
    }

    #[test]
    fn bad_value_names_line_and_key() {
        let (line, key, msg) = invalid("context = 40000\n\n[limits]\nmemory = \"lots\"\n");
        assert_eq!((line, key.as_str()), (4, "limits.memory"));
        assert!(msg.contains("lots"), "{msg}");
        let (line, key, _) = invalid("context = 40000\n[network]\naddresses = [\"1.2.3\"]\n");
        assert_eq!((line, key.as_str()), (3, "network.addresses"));
    }

    #[test]
    fn missing_context_is_named() {
        let (_, key, _) = invalid("hostname = \"a\"\n");
        assert_eq!(key, "context");
    }

    #[test]
    fn error_display_has_file_line_key() {
        let e = parse("context = 40000\n[init]\nstyle = \"upstart\"\n").unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("/h/web/server.toml:3: key init.style:"),
            "{s}"
        );
    }

    #[test]
    fn cross_key_checks_locate_the_key() {
        let (line, key, _) = invalid("context = 40000\n\n[init]\nstyle = \"command\"\n");
        assert_eq!(key, "init.command");
        assert_eq!(line, 3);
        let (line, key, _) = invalid("context = 7\nhostname = \"-x\"\n");
        assert_eq!((line, key.as_str()), (2, "hostname"));
        let (line, key, _) = invalid("context = 70000\n");
        assert_eq!((line, key.as_str()), (1, "context"));
    }

    #[test]
    fn network_mode_rules() {
        assert!(parse("context = 40000\n[network]\nmode = \"isolated\"\n").is_err());
        assert!(
            parse("context = 40000\n[network]\nmode = \"host\"\naddresses=[\"10.0.0.1\"]\n")
                .is_err()
        );
        assert!(parse("context = 40000\n[network]\npublish = [\"80:80\"]\n").is_err());
        let cfg = parse("context = 40000\n[network]\nmode = \"veth\"\npublish = [\"8080:80\"]\n")
            .unwrap();
        assert_eq!(cfg.network.publish[0].to_string(), "8080:80/tcp");
        assert_eq!(
            parse("context = 40000\n").unwrap().network.effective_mode(),
            NetMode::None
        );
    }

    #[test]
    fn capabilities_are_checked() {
        assert_eq!(
            normalize_capability("net_raw").as_deref(),
            Some("CAP_NET_RAW")
        );
        assert_eq!(normalize_capability("CAP_BPF").as_deref(), Some("CAP_BPF"));
        assert_eq!(normalize_capability("FLY"), None);
        let (_, key, _) = invalid("context = 40000\n[security]\ncapabilities = [\"FLY\"]\n");
        assert_eq!(key, "security.capabilities");
    }

    #[test]
    fn cidr_and_publish_parse() {
        assert_eq!("10.1.2.3/24".parse::<Cidr>().unwrap().prefix, 24);
        assert_eq!("::1".parse::<Cidr>().unwrap().prefix, 128);
        for bad in ["10.0.0.1/33", "0.0.0.0", "x", "10.0.0.1/", "224.0.0.1"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(
            "53:53/udp".parse::<Publish>().unwrap().protocol,
            Protocol::Udp
        );
        for bad in ["80", "0:80", "80:80/sctp", "a:b"] {
            assert!(bad.parse::<Publish>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hostnames() {
        assert!(valid_hostname("a-b.example"));
        assert!(!valid_hostname("a_b"));
        assert!(!valid_hostname("a..b"));
    }
}
