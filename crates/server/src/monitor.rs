//! The spectator views: `list` (vserver-stat) and `ps` (vps). Context 0, the host, sees
//! every context; the numbers come from the kernel (cgroup membership, `/proc/PID/stat`).

use std::collections::HashMap;
use std::path::Path;

use nix::unistd::{sysconf, SysconfVar};
use serde::Serialize;

use crate::home::Server;
use crate::run::{Manager, RunError, RunState};
use crate::spec::{ANNOTATION_CONTEXT, ANNOTATION_SERVER};

/// Why a view could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    #[error("cannot list containers in the state directory")]
    Runtime(#[source] jaula_runtime::Error),
    #[error("no server or container named {0:?}")]
    Unknown(String),
    #[error("cannot read /proc")]
    Proc(#[source] std::io::Error),
}

/// What a row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Context 0.
    Host,
    /// A `jaula` server.
    Server,
    /// A container made through `jaula-oci`.
    Oci,
}

/// One `list` row.
#[derive(Debug, Clone, Serialize)]
pub struct ListRow {
    /// Context id; `None` for OCI containers, which have none.
    pub ctx: Option<u32>,
    pub name: String,
    pub kind: Kind,
    pub state: String,
    /// Host pid of the init.
    pub pid: Option<i32>,
    /// Number of processes (the PROC column).
    #[serde(rename = "proc")]
    pub procs: usize,
    /// Bytes.
    pub vsz: u64,
    pub rss: u64,
    /// Seconds of CPU, including reaped children.
    pub user_time: f64,
    pub sys_time: f64,
    /// Seconds since the init started (the host: since boot).
    pub uptime: Option<u64>,
    /// Addresses (the IP column).
    #[serde(rename = "ip")]
    pub ips: Vec<String>,
}

/// One `ps` row.
#[derive(Debug, Clone, Serialize)]
pub struct PsRow {
    pub pid: i32,
    /// The pid as the server sees it.
    pub vpid: i32,
    /// Context id: 0 for the host, `None` for OCI containers.
    pub ctx: Option<u32>,
    pub name: String,
    pub user: String,
    pub vsz: u64,
    pub rss: u64,
    pub stat: String,
    /// Seconds of CPU.
    pub time: f64,
    pub command: String,
}

/// What `/proc/PID/stat` and `/proc/PID/status` say about one process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcInfo {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    /// Clock ticks.
    pub utime: u64,
    pub stime: u64,
    pub cutime: u64,
    pub cstime: u64,
    pub starttime: u64,
    pub vsize: u64,
    /// Pages.
    pub rss: u64,
}

/// Parses `/proc/PID/stat`; the command name may hold spaces and parentheses.
pub fn parse_stat(text: &str) -> Option<ProcInfo> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_string();
    let f: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // f[0] is field 3 (state) of proc(5).
    let n = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some(ProcInfo {
        pid,
        comm,
        state: f.first()?.chars().next()?,
        utime: n(14)?,
        stime: n(15)?,
        cutime: n(16)?,
        cstime: n(17)?,
        starttime: n(22)?,
        vsize: n(23)?,
        rss: n(24)?,
    })
}

fn proc_info(pid: i32) -> Option<ProcInfo> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Clock ticks per second and page size.
fn units() -> (u64, u64) {
    let tick = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as u64;
    let page = sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    (tick.max(1), page)
}

/// Seconds since boot.
fn boot_uptime() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Sums a set of processes into the numeric columns of a row.
#[derive(Debug, Default)]
struct Totals {
    procs: usize,
    vsz: u64,
    rss_pages: u64,
    user_ticks: u64,
    sys_ticks: u64,
}

impl Totals {
    fn add(&mut self, p: &ProcInfo) {
        self.procs += 1;
        self.vsz += p.vsize;
        self.rss_pages += p.rss;
        self.user_ticks += p.utime + p.cutime;
        self.sys_ticks += p.stime + p.cstime;
    }
}

/// A container the runtime knows: its name, cgroup and annotations.
struct Container {
    state: jaula_spec::State,
    cgroup: String,
}

fn containers(m: &Manager) -> Result<Vec<Container>, MonitorError> {
    let states = m.runtime.list().map_err(MonitorError::Runtime)?;
    Ok(states
        .into_iter()
        .filter_map(|state| {
            let cgroup = m.runtime.record(&state.id).ok()?.cgroup_path;
            Some(Container { state, cgroup })
        })
        .collect())
}

/// Every context: the host, then servers in context order, then OCI containers.
pub fn list(m: &Manager) -> Result<Vec<ListRow>, MonitorError> {
    let (tick, page) = units();
    let servers = m.home.servers()?;
    let conts = containers(m)?;
    let by_name: HashMap<&str, &Container> =
        conts.iter().map(|c| (c.state.id.as_str(), c)).collect();
    let membership = membership(&conts);
    let mut host = Totals::default();
    let mut per_container: HashMap<String, Totals> = HashMap::new();
    for p in all_pids() {
        let Some(info) = proc_info(p) else { continue };
        match container_of(p, &membership) {
            Some(name) => per_container.entry(name).or_default().add(&info),
            None => host.add(&info),
        }
    }
    let now = boot_uptime();
    let row = |ctx, name: &str, kind, state: String, pid: Option<i32>, t: Option<&Totals>, ips| {
        let empty = Totals::default();
        let t = t.unwrap_or(&empty);
        let uptime = match (kind, pid.and_then(proc_info), now) {
            (Kind::Host, _, Some(up)) => Some(up as u64),
            (_, Some(p), Some(up)) => Some((up - p.starttime as f64 / tick as f64).max(0.0) as u64),
            _ => None,
        };
        ListRow {
            ctx,
            name: name.into(),
            kind,
            state,
            pid,
            procs: t.procs,
            vsz: t.vsz,
            rss: t.rss_pages * page,
            user_time: t.user_ticks as f64 / tick as f64,
            sys_time: t.sys_ticks as f64 / tick as f64,
            uptime,
            ips,
        }
    };
    let mut rows = vec![row(
        Some(0),
        "host",
        Kind::Host,
        "running".into(),
        None,
        Some(&host),
        Vec::new(),
    )];
    for s in &servers {
        let c = by_name.get(s.name.as_str());
        let state = c.map_or(RunState::Stopped.as_str().to_string(), |c| {
            c.state.status.to_string()
        });
        let pid = c
            .and_then(|c| c.state.pid)
            .filter(|_| state == "running" || state == "paused");
        rows.push(row(
            Some(s.config.context),
            &s.name,
            Kind::Server,
            state,
            pid,
            per_container.get(&s.name),
            server_ips(s),
        ));
    }
    for c in &conts {
        if servers.iter().any(|s| s.name == c.state.id) {
            continue;
        }
        let st = &c.state;
        let ctx = st
            .annotations
            .get(ANNOTATION_CONTEXT)
            .and_then(|v| v.parse().ok());
        let kind = if st.annotations.contains_key(ANNOTATION_SERVER) {
            Kind::Server
        } else {
            Kind::Oci
        };
        rows.push(row(
            ctx,
            &st.id,
            kind,
            st.status.to_string(),
            st.pid,
            per_container.get(&st.id),
            Vec::new(),
        ));
    }
    Ok(rows)
}

/// The server's addresses: those its network actually holds, else the configured ones.
fn server_ips(s: &Server) -> Vec<String> {
    let recorded = std::fs::read(s.run_dir().join("net.json"))
        .ok()
        .and_then(|t| serde_json::from_slice::<jaula_net::NetHandle>(&t).ok())
        .map(|h| h.addresses());
    match recorded {
        Some(a) if !a.is_empty() => a.iter().map(|a| a.to_string()).collect(),
        _ => s
            .config
            .network
            .addresses
            .iter()
            .map(|c| c.addr.to_string())
            .collect(),
    }
}

/// (cgroup path without leading slash, container name).
type Membership = Vec<(String, String)>;

fn membership(conts: &[Container]) -> Membership {
    conts
        .iter()
        .map(|c| (c.cgroup.trim_matches('/').to_string(), c.state.id.clone()))
        .collect()
}

fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

/// The container whose cgroup holds `pid`, from `/proc/PID/cgroup`.
fn container_of(pid: i32, membership: &Membership) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    cgroup_owner(&text, membership)
}

/// Matches the paths of a `/proc/PID/cgroup` text against the containers' cgroups.
pub fn cgroup_owner(text: &str, membership: &Membership) -> Option<String> {
    for line in text.lines() {
        let path = line.splitn(3, ':').nth(2)?.trim_matches('/');
        for (cg, name) in membership {
            let inside = path == cg
                || path
                    .strip_prefix(cg.as_str())
                    .is_some_and(|r| r.starts_with('/'));
            if inside {
                return Some(name.clone());
            }
        }
    }
    None
}

/// Every process of every context (or of `only`), host processes as context 0.
pub fn ps(m: &Manager, only: Option<&str>) -> Result<Vec<PsRow>, MonitorError> {
    let (tick, page) = units();
    let servers: HashMap<String, Server> = m
        .home
        .servers()?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let conts = containers(m)?;
    if let Some(n) = only {
        let known = n == "host" || servers.contains_key(n) || conts.iter().any(|c| c.state.id == n);
        if !known {
            return Err(MonitorError::Unknown(n.into()));
        }
    }
    let ctx_of: HashMap<&str, Option<u32>> = conts
        .iter()
        .map(|c| {
            let ctx = servers
                .get(&c.state.id)
                .map(|s| s.config.context)
                .or_else(|| {
                    c.state
                        .annotations
                        .get(ANNOTATION_CONTEXT)
                        .and_then(|v| v.parse().ok())
                });
            (c.state.id.as_str(), ctx)
        })
        .collect();
    let membership = membership(&conts);
    let mut users = UserNames::default();
    let mut rows = Vec::new();
    for pid in all_pids() {
        let Some(info) = proc_info(pid) else { continue };
        let owner = container_of(pid, &membership);
        let name = owner.clone().unwrap_or_else(|| "host".into());
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let ctx = match &owner {
            Some(n) => ctx_of.get(n.as_str()).copied().flatten(),
            None => Some(0),
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let uid = status_field(&status, "Uid:").unwrap_or(0);
        let vpid = status_field(&status, "NSpid:").map_or(pid, |v| v as i32);
        let user = users.name(uid, owner.as_deref().and_then(|n| servers.get(n)));
        rows.push(PsRow {
            pid,
            vpid,
            ctx,
            name,
            user,
            vsz: info.vsize,
            rss: info.rss * page,
            stat: info.state.to_string(),
            time: (info.utime + info.stime) as f64 / tick as f64,
            command: command_line(pid).unwrap_or_else(|| format!("[{}]", info.comm)),
        });
    }
    Ok(rows)
}

/// The last number of a `/proc/PID/status` field (for `NSpid:`, the innermost pid; for
/// `Uid:`, the first — the real uid).
fn status_field(status: &str, key: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let mut nums = line[key.len()..].split_whitespace();
    if key == "NSpid:" {
        nums.last()?.parse().ok()
    } else {
        nums.next()?.parse().ok()
    }
}

fn command_line(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    let parts: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    Some(parts.join(" "))
}

/// User names: the host's for host processes, the server's own for a server's.
#[derive(Default)]
struct UserNames {
    cache: HashMap<(String, u32), String>,
}

impl UserNames {
    fn name(&mut self, host_uid: u32, server: Option<&Server>) -> String {
        let (key, rootfs, uid) = match server {
            Some(s) => {
                let base = crate::idmap::host_base(&s.config);
                (s.name.clone(), s.rootfs(), host_uid.wrapping_sub(base))
            }
            None => (String::new(), "/".into(), host_uid),
        };
        self.cache
            .entry((key, host_uid))
            .or_insert_with(|| lookup_name(&rootfs, uid).unwrap_or_else(|| uid.to_string()))
            .clone()
    }
}

fn lookup_name(rootfs: &Path, uid: u32) -> Option<String> {
    let text = std::fs::read_to_string(rootfs.join("etc/passwd")).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names() {
        let text = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 5000 10485760 256 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let p = parse_stat(text).unwrap();
        assert_eq!(p.pid, 1234);
        assert_eq!(p.comm, "a) b (c)");
        assert_eq!(p.state, 'S');
        assert_eq!((p.utime, p.stime, p.cutime, p.cstime), (7, 3, 2, 1));
        assert_eq!((p.starttime, p.vsize, p.rss), (5000, 10_485_760, 256));
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn own_stat_parses() {
        let me = std::process::id() as i32;
        let p = proc_info(me).unwrap();
        assert_eq!(p.pid, me);
        assert!(p.vsize > 0);
    }

    #[test]
    fn cgroup_paths_map_to_containers() {
        let m: Membership = vec![
            ("jaula/web1".into(), "web1".into()),
            ("jaula/web".into(), "web".into()),
        ];
        let v1 = "12:pids:/jaula/web1\n11:memory:/jaula/web1\n0::/\n";
        assert_eq!(cgroup_owner(v1, &m).as_deref(), Some("web1"));
        let nested = "0::/jaula/web/init.scope\n";
        assert_eq!(cgroup_owner(nested, &m).as_deref(), Some("web"));
        assert_eq!(cgroup_owner("0::/jaula/web10\n", &m), None);
        assert_eq!(cgroup_owner("0::/user.slice\n", &m), None);
    }

    #[test]
    fn status_fields() {
        let st = "Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nNSpid:\t4242\t7\n";
        assert_eq!(status_field(st, "Uid:"), Some(1000));
        assert_eq!(status_field(st, "NSpid:"), Some(7));
    }

    #[test]
    fn host_processes_are_context_zero_in_totals() {
        let mut t = Totals::default();
        t.add(&ProcInfo {
            utime: 5,
            cutime: 1,
            vsize: 10,
            rss: 2,
            ..Default::default()
        });
        assert_eq!((t.procs, t.user_ticks, t.vsz, t.rss_pages), (1, 6, 10, 2));
    }
}
