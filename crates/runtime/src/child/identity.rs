//! Who the process is: limits, user and groups, capabilities, no_new_privs, seccomp.
//!
//! Order matters. The bounding set is trimmed while CAP_SETPCAP is still held;
//! uid/gid change with KEEPCAPS so the permitted set survives; seccomp comes last,
//! unless no_new_privs is off, in which case it must be loaded while
//! CAP_SYS_ADMIN is still held (the kernel requires one or the other).

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};

use super::{fail, Step};
use crate::plan::Plan;
use crate::sync::{Channel, FromChild};

/// rlimits and oom_score_adj, set while we are still fully privileged.
pub fn limits(plan: &Plan) -> Step<()> {
    for &(res, soft, hard) in &plan.process.rlimits {
        set_rlimit_capped(res, soft, hard).map_err(fail(format!("set rlimit {res}")))?;
    }
    if let Some(adj) = plan.process.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| format!("set oom_score_adj {adj}: {e}"))?;
    }
    if let Some(p) = plan.process.personality {
        jaula_sys::process::set_personality(p).map_err(fail("set personality"))?;
    }
    Ok(())
}

/// Sets a limit; a hard limit above ours that we may not raise (no CAP_SYS_RESOURCE,
/// as with Podman's default nofile/nproc on such hosts) is capped at our own hard
/// limit instead of failing: the container gets less than asked, never more.
fn set_rlimit_capped(res: i32, soft: u64, hard: u64) -> Result<(), nix::errno::Errno> {
    match jaula_sys::process::set_rlimit(res, soft, hard) {
        Err(nix::errno::Errno::EPERM) => {
            let (_, ours) = jaula_sys::process::get_rlimit(res)?;
            if hard <= ours {
                return Err(nix::errno::Errno::EPERM);
            }
            jaula_sys::process::set_rlimit(res, soft.min(ours), ours)
        }
        r => r,
    }
}

/// Loads a user-notification filter before `create` returns and hands the
/// listener to the runtime, which passes it to `listenerPath`.
pub fn load_seccomp_early(plan: &Plan, chan: &Channel) -> Step<()> {
    let Some(filter) = &plan.seccomp else {
        return Ok(());
    };
    let listener = filter
        .load()
        .map_err(|e| format!("load seccomp filter: {e}"))?;
    if let Some(fd) = listener {
        chan.send_fd_to_parent(&FromChild::SeccompListener, fd.as_fd())
            .map_err(fail("send seccomp listener"))?;
    }
    Ok(())
}

/// User, groups, capabilities, no_new_privs and seccomp, in the one safe order.
pub fn finalize(plan: &Plan, seccomp_loaded: bool) -> Step<()> {
    let p = &plan.process;
    let caps = p.caps;
    if let Some(profile) = &p.apparmor {
        apply_apparmor(profile)?;
    }
    if let Some(label) = &p.selinux {
        std::fs::write("/proc/self/attr/exec", label)
            .map_err(|e| format!("apply SELinux label {label}: {e}"))?;
    }
    if caps.given {
        jaula_sys::caps::limit_bounding(caps.bounding)
            .map_err(fail("drop bounding capabilities"))?;
        nix::sys::prctl::set_keepcaps(true).map_err(fail("keep capabilities"))?;
    }
    let seccomp = plan.seccomp.as_ref().filter(|_| !seccomp_loaded);
    if let (Some(f), false) = (seccomp, p.no_new_privs) {
        f.load().map_err(|e| format!("load seccomp filter: {e}"))?;
    }
    set_user(plan)?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(p.umask));
    if caps.given {
        jaula_sys::caps::set(caps.effective, caps.permitted, caps.inheritable)
            .map_err(fail("set capabilities"))?;
        jaula_sys::caps::clear_ambient().map_err(fail("clear ambient capabilities"))?;
        jaula_sys::caps::raise_ambient(caps.ambient).map_err(fail("raise ambient capabilities"))?;
        nix::sys::prctl::set_keepcaps(false).map_err(fail("reset keepcaps"))?;
    }
    if p.no_new_privs {
        nix::sys::prctl::set_no_new_privs().map_err(fail("set no_new_privs"))?;
        if let Some(f) = seccomp {
            f.load().map_err(|e| format!("load seccomp filter: {e}"))?;
        }
    }
    Ok(())
}

fn set_user(plan: &Plan) -> Step<()> {
    let p = &plan.process;
    let groups: Vec<Gid> = p.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    // setgroups is refused in a user namespace whose setgroups file says "deny";
    // with no extra groups asked for that is fine.
    if let Err(e) = nix::unistd::setgroups(&groups) {
        if !groups.is_empty() || e != nix::errno::Errno::EPERM {
            return Err(fail("setgroups")(e));
        }
    }
    let (uid, gid) = (Uid::from_raw(p.uid), Gid::from_raw(p.gid));
    nix::unistd::setresgid(gid, gid, gid).map_err(fail(format!("setresgid {}", p.gid)))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(fail(format!("setresuid {}", p.uid)))?;
    Ok(())
}

fn apply_apparmor(profile: &str) -> Step<()> {
    let attr = if Path::new("/proc/self/attr/apparmor/exec").exists() {
        "/proc/self/attr/apparmor/exec"
    } else {
        "/proc/self/attr/exec"
    };
    std::fs::write(attr, format!("exec {profile}"))
        .map_err(|e| format!("apply AppArmor profile {profile}: {e}"))
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds `args[0]` the way execvp would, using the *container's* PATH.
pub fn resolve_executable(plan: &Plan) -> Step<CString> {
    let arg0 = plan.process.args[0]
        .to_str()
        .map_err(|_| "process.args[0] is not UTF-8".to_string())?;
    if arg0.contains('/') {
        let p = if Path::new(arg0).is_absolute() {
            PathBuf::from(arg0)
        } else {
            plan.process.cwd.join(arg0)
        };
        return executable(&p)
            .then(|| plan.process.args[0].clone())
            .ok_or_else(|| format!("exec {arg0}: no such executable file"));
    }
    let path = plan
        .process
        .env
        .iter()
        .find_map(|e| {
            e.to_bytes()
                .strip_prefix(b"PATH=")
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(arg0);
        if executable(&cand) {
            return CString::new(cand.into_os_string().into_encoded_bytes())
                .map_err(|_| "bad path".to_string());
        }
    }
    Err(format!("exec {arg0}: executable file not found in $PATH"))
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Fails `create` early, as runc does, when the program does not exist.
pub fn check_executable(plan: &Plan) -> Step<()> {
    resolve_executable(plan).map(drop)
}
