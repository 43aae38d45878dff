//! Probe run inside contexts by the integration tests: it reports what it sees as JSON.
//!
//! The probe is a test instrument, not part of the product. It is linked statically so that it
//! runs in a bare busybox rootfs, and it depends on `libc` and `std` only. It is the one place
//! outside `jaula-sys` that makes raw syscalls: its job is to attempt exactly the calls a hostile
//! workload would make (`int 0x80`, `open_by_handle_at`, `bpf`, ...), so it cannot go through
//! the safe wrappers the product uses.
//!
//! Output is one JSON object (or plain lines for the small utilities) on stdout. Exit codes:
//! `0` success / attack blocked, `1` attack got through, `2` usage or setup error.

use std::ffi::{CString, OsStr};
use std::fmt::{self, Write as _};
use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// A tiny JSON value: the probe must stay small, so no serde.
// ---------------------------------------------------------------------------------------------

/// A JSON value, written by `Display`.
enum J {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn s(v: impl Into<String>) -> J {
        J::Str(v.into())
    }

    fn obj(fields: Vec<(&str, J)>) -> J {
        J::Obj(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn lines(text: &str) -> J {
        J::Arr(text.lines().map(J::s).collect())
    }

    fn opt_str(v: Option<String>) -> J {
        v.map_or(J::Null, J::Str)
    }
}

fn write_json_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl fmt::Display for J {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            J::Null => f.write_str("null"),
            J::Bool(b) => write!(f, "{b}"),
            J::Int(n) => write!(f, "{n}"),
            J::UInt(n) => write!(f, "{n}"),
            J::Str(s) => write_json_str(f, s),
            J::Arr(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
            J::Obj(fields) => {
                f.write_char('{')?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write_json_str(f, k)?;
                    write!(f, ":{v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Syscall helpers.
// ---------------------------------------------------------------------------------------------

fn cstr(s: impl AsRef<OsStr>) -> CString {
    // Arguments come from argv or literals, which cannot hold NUL bytes.
    CString::new(s.as_ref().as_bytes()).expect("path without NUL bytes")
}

/// Turns a libc-style return value into a `Result`, reading errno on -1.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_int(ret: libc::c_int) -> io::Result<libc::c_int> {
    check(ret.into()).map(|_| ret)
}

/// Wraps a descriptor returned by a raw syscall so that it gets closed.
fn own_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = check(ret)? as RawFd;
    // SAFETY: `fd` was just returned by a successful syscall that creates a descriptor, and
    // nothing else owns it yet.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim_end().to_owned())
}

fn pid() -> i32 {
    std::process::id() as i32
}

// ---------------------------------------------------------------------------------------------
// `info`: everything a test may want to know about the process' environment.
// ---------------------------------------------------------------------------------------------

/// The `Key:\tvalue` lines of /proc/self/status.
fn proc_status() -> Vec<(String, String)> {
    let text = fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

fn status_field(status: &[(String, String)], key: &str) -> Option<String> {
    status
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// The `n`th whitespace-separated number of a status field (e.g. the effective uid of `Uid:`).
fn status_num(status: &[(String, String)], key: &str, n: usize) -> J {
    status_field(status, key)
        .and_then(|v| v.split_whitespace().nth(n).and_then(|x| x.parse().ok()))
        .map_or(J::Null, J::Int)
}

fn groups(status: &[(String, String)]) -> J {
    let v = status_field(status, "Groups").unwrap_or_default();
    J::Arr(
        v.split_whitespace()
            .filter_map(|g| g.parse().ok())
            .map(J::Int)
            .collect(),
    )
}

fn caps(status: &[(String, String)]) -> J {
    let sets = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"];
    J::Obj(
        sets.iter()
            .map(|k| (k.to_string(), J::opt_str(status_field(status, k))))
            .collect(),
    )
}

fn uname_fields() -> (String, String) {
    // SAFETY: `utsname` is plain old data; all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname for the duration of the call.
    if unsafe { libc::uname(&mut u) } != 0 {
        return (String::new(), String::new());
    }
    let field = |raw: &[libc::c_char]| {
        let bytes: Vec<u8> = raw
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (field(&u.nodename), field(&u.domainname))
}

const RLIMITS: [(&str, libc::__rlimit_resource_t); 16] = [
    ("RLIMIT_AS", libc::RLIMIT_AS),
    ("RLIMIT_CORE", libc::RLIMIT_CORE),
    ("RLIMIT_CPU", libc::RLIMIT_CPU),
    ("RLIMIT_DATA", libc::RLIMIT_DATA),
    ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
    ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
    ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
    ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", libc::RLIMIT_NICE),
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("RLIMIT_RSS", libc::RLIMIT_RSS),
    ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
    ("RLIMIT_STACK", libc::RLIMIT_STACK),
];

/// Every rlimit as `[soft, hard]`; `RLIM_INFINITY` shows as 18446744073709551615.
fn rlimits() -> J {
    let mut out = Vec::new();
    for (name, res) in RLIMITS {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `r` is a valid, writable rlimit for the duration of the call.
        let ok = unsafe { libc::getrlimit(res, &mut r) } == 0;
        let v = if ok {
            J::Arr(vec![J::UInt(r.rlim_cur), J::UInt(r.rlim_max)])
        } else {
            J::Null
        };
        out.push((name.to_owned(), v));
    }
    J::Obj(out)
}

/// Open descriptors and their targets, without the descriptor used to list them.
fn open_fds() -> Vec<(i32, String)> {
    let Ok(dir) = fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let names: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The directory descriptor is closed now, so its readlink fails and it drops out.
    let mut fds: Vec<(i32, String)> = names
        .into_iter()
        .filter_map(|fd| {
            let target = fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect();
    fds.sort();
    fds
}

fn namespaces() -> J {
    let mut out = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc/self/ns") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let target = fs::read_link(e.path())
                .ok()
                .map(|t| t.to_string_lossy().into_owned());
            out.push((name, J::opt_str(target)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    J::Obj(out)
}

/// Session, process group and terminal fields from /proc/self/stat.
fn stat_ids() -> (i64, i64, i64) {
    let text = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may contain spaces; the fields after it start after the last ')'.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<i64> = rest
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // After `state`: ppid, pgrp, session, tty_nr.
    (
        f.get(1).copied().unwrap_or(-1),
        f.get(2).copied().unwrap_or(-1),
        f.get(3).copied().unwrap_or(-1),
    )
}

fn tty_details() -> J {
    if !io::stdin().is_terminal() {
        return J::Null;
    }
    let name = fs::read_link("/proc/self/fd/0")
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    // SAFETY: tcgetsid only reads the descriptor number; fd 0 is open (it is a terminal).
    let tcsid = unsafe { libc::tcgetsid(0) };
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into `ws`, which is valid and writable.
    let ws_ok = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0;
    let winsize = if ws_ok {
        J::obj(vec![
            ("rows", J::Int(ws.ws_row.into())),
            ("cols", J::Int(ws.ws_col.into())),
        ])
    } else {
        J::Null
    };
    J::obj(vec![
        ("name", J::opt_str(name)),
        ("tcgetsid", J::Int(tcsid.into())),
        ("winsize", winsize),
    ])
}

/// Seconds of a clock, to observe time namespace offsets.
fn clock_secs(clock: libc::clockid_t) -> J {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return J::Null;
    }
    J::Int(ts.tv_sec)
}

fn info() -> J {
    let st = proc_status();
    let (hostname, domainname) = uname_fields();
    let (pgrp, sid, tty_nr) = stat_ids();
    let umask = status_field(&st, "Umask").and_then(|u| u32::from_str_radix(&u, 8).ok());
    let fds = open_fds()
        .into_iter()
        .map(|(fd, t)| J::obj(vec![("fd", J::Int(fd.into())), ("target", J::s(t))]))
        .collect();
    let env = std::env::vars_os()
        .map(|(k, v)| J::s(format!("{}={}", k.to_string_lossy(), v.to_string_lossy())))
        .collect();
    let cwd = std::env::current_dir()
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let oom = read_trimmed("/proc/self/oom_score_adj").and_then(|v| v.parse().ok());
    let root = fs::metadata("/").ok();
    J::obj(vec![
        ("pid", J::Int(pid().into())),
        ("ppid", J::Int(std::os::unix::process::parent_id().into())),
        ("uid", status_num(&st, "Uid", 0)),
        ("euid", status_num(&st, "Uid", 1)),
        ("gid", status_num(&st, "Gid", 0)),
        ("egid", status_num(&st, "Gid", 1)),
        ("groups", groups(&st)),
        ("umask", umask.map_or(J::Null, |u| J::Int(u.into()))),
        ("cwd", J::opt_str(cwd)),
        ("hostname", J::s(hostname)),
        ("domainname", J::s(domainname)),
        ("caps", caps(&st)),
        ("no_new_privs", status_num(&st, "NoNewPrivs", 0)),
        ("seccomp", status_num(&st, "Seccomp", 0)),
        ("rlimits", rlimits()),
        ("oom_score_adj", oom.map_or(J::Null, J::Int)),
        ("env", J::Arr(env)),
        ("fds", J::Arr(fds)),
        (
            "mountinfo",
            J::lines(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()),
        ),
        ("ns", namespaces()),
        (
            "cgroup",
            J::lines(&fs::read_to_string("/proc/self/cgroup").unwrap_or_default()),
        ),
        (
            "isatty",
            J::Arr(vec![
                J::Bool(io::stdin().is_terminal()),
                J::Bool(io::stdout().is_terminal()),
                J::Bool(io::stderr().is_terminal()),
            ]),
        ),
        ("tty", tty_details()),
        ("tty_nr", J::Int(tty_nr)),
        ("sid", J::Int(sid)),
        ("pgid", J::Int(pgrp)),
        ("monotonic", clock_secs(libc::CLOCK_MONOTONIC)),
        ("boottime", clock_secs(libc::CLOCK_BOOTTIME)),
        (
            "root_dev",
            root.as_ref().map_or(J::Null, |m| J::UInt(m.dev())),
        ),
        (
            "root_ino",
            root.as_ref().map_or(J::Null, |m| J::UInt(m.ino())),
        ),
    ])
}

// ---------------------------------------------------------------------------------------------
// `escape`: one attack per name. Any step that succeeds is a way through.
// ---------------------------------------------------------------------------------------------

/// What an attack tried: the steps that got through and notes on the ones that failed.
#[derive(Default)]
struct Trial {
    through: Vec<String>,
    notes: Vec<String>,
}

impl Trial {
    /// Records one attempt; success means the attack got through this step.
    fn attempt<T>(&mut self, what: &str, r: io::Result<T>) -> Option<T> {
        match r {
            Ok(v) => {
                self.through.push(what.to_owned());
                Some(v)
            }
            Err(e) => {
                self.notes.push(format!("{what}: {e}"));
                None
            }
        }
    }

    fn note(&mut self, what: impl Into<String>) {
        self.notes.push(what.into());
    }

    fn breach(&mut self, what: impl Into<String>) {
        self.through.push(what.into());
    }

    fn report(self, attack: &str) -> (J, bool) {
        let blocked = self.through.is_empty();
        let mut detail = String::new();
        if !blocked {
            detail.push_str("GOT THROUGH: ");
            detail.push_str(&self.through.join("; "));
            detail.push_str(" | ");
        }
        detail.push_str(&self.notes.join("; "));
        let j = J::obj(vec![
            ("attack", J::s(attack)),
            ("blocked", J::Bool(blocked)),
            ("detail", J::s(detail)),
        ]);
        (j, blocked)
    }
}

fn sys_chroot(path: &str) -> io::Result<()> {
    let p = cstr(path);
    // SAFETY: `p` is a valid NUL-terminated path for the duration of the call.
    check_int(unsafe { libc::chroot(p.as_ptr()) }).map(drop)
}

fn sys_fchdir(fd: &File) -> io::Result<()> {
    // SAFETY: fchdir only reads the descriptor number; `fd` is open for the whole call.
    check_int(unsafe { libc::fchdir(fd.as_raw_fd()) }).map(drop)
}

fn sys_mount(
    src: &str,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let src = cstr(src);
    let target = cstr(target);
    let fstype = fstype.map(cstr);
    let data = data.map(cstr);
    let fs_ptr = fstype.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    let data_ptr = data
        .as_ref()
        .map_or(std::ptr::null(), |c| c.as_ptr().cast());
    // SAFETY: every pointer is either null or a valid NUL-terminated string that outlives
    // the call.
    check_int(unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fs_ptr, flags, data_ptr) })
        .map(drop)
}

fn sys_umount(target: &str) -> io::Result<()> {
    let t = cstr(target);
    // SAFETY: `t` is a valid NUL-terminated path for the duration of the call.
    check_int(unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) }).map(drop)
}

fn root_id() -> Option<(u64, u64)> {
    fs::metadata("/").ok().map(|m| (m.dev(), m.ino()))
}

/// A directory we may chroot into; created in /tmp when the rootfs allows it.
fn chroot_dir() -> (String, bool) {
    let made = format!("/tmp/jaula-chroot-{}", pid());
    if fs::create_dir(&made).is_ok() {
        return (made, true);
    }
    ("/bin".to_owned(), false)
}

/// The classic chroot break: chroot into a subdirectory while keeping a descriptor of the
/// old root, climb out through it with `..`, and chroot to wherever that leads.
fn attack_chroot(marker: Option<&str>) -> Trial {
    let mut t = Trial::default();
    let before = root_id();
    let _ = std::env::set_current_dir("/");
    let Some(old_root) = t.attempt_quiet("open /", File::open("/")) else {
        return t;
    };
    let (dir, made) = chroot_dir();
    if let Err(e) = sys_chroot(&dir) {
        t.note(format!("chroot {dir}: {e}"));
        return t;
    }
    t.note(format!("chroot {dir}: ok"));
    if let Err(e) = sys_fchdir(&old_root) {
        t.note(format!("fchdir: {e}"));
        return t;
    }
    if made {
        let _ = fs::remove_dir(dir.trim_start_matches('/'));
    }
    for _ in 0..64 {
        let _ = std::env::set_current_dir("..");
    }
    if let Err(e) = sys_chroot(".") {
        t.note(format!("chroot .: {e}"));
        return t;
    }
    let after = root_id();
    t.note(format!("root before {before:?}, after {after:?}"));
    if before != after {
        t.breach("root directory changed after climbing out of a chroot");
    }
    if let Some(m) = marker {
        if Path::new(m).exists() {
            t.breach(format!("host marker {m} visible"));
        }
    }
    t
}

impl Trial {
    /// Like `attempt`, but for setup steps whose success is not a breach.
    fn attempt_quiet<T>(&mut self, what: &str, r: io::Result<T>) -> Option<T> {
        r.map_err(|e| self.note(format!("{what}: {e}"))).ok()
    }
}

fn first_block_device() -> (u32, u32) {
    let found = fs::read_dir("/sys/dev/block").ok().and_then(|d| {
        d.flatten().find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (ma, mi) = name.split_once(':')?;
            Some((ma.parse().ok()?, mi.parse().ok()?))
        })
    });
    found.unwrap_or((8, 0))
}

fn sys_mknod(path: &str, mode: libc::mode_t, major: u32, minor: u32) -> io::Result<()> {
    let p = cstr(path);
    let dev = libc::makedev(major, minor);
    // SAFETY: `p` is a valid NUL-terminated path for the duration of the call.
    check_int(unsafe { libc::mknod(p.as_ptr(), mode, dev) }).map(drop)
}

/// Makes a node for a real host block device and tries to read it.
fn attack_mknod() -> Trial {
    let mut t = Trial::default();
    let (major, minor) = first_block_device();
    let path = format!("/dev/jaula-probe-blk-{}", pid());
    let made = sys_mknod(&path, libc::S_IFBLK | 0o600, major, minor);
    let Some(()) = t.attempt_quiet(&format!("mknod b {major}:{minor}"), made) else {
        return t;
    };
    t.note(format!("mknod b {major}:{minor}: ok"));
    let mut buf = [0u8; 512];
    let read = File::open(&path).and_then(|mut f| f.read(&mut buf));
    t.attempt(&format!("read block device {major}:{minor}"), read);
    let _ = fs::remove_file(&path);
    t
}

fn attack_mount() -> Trial {
    let mut t = Trial::default();
    if t.attempt(
        "mount tmpfs on /tmp",
        sys_mount("tmpfs", "/tmp", Some("tmpfs"), 0, None),
    )
    .is_some()
    {
        let _ = sys_umount("/tmp");
    }
    if t.attempt(
        "bind /proc (without submounts) on /tmp",
        sys_mount("/proc", "/tmp", None, libc::MS_BIND, None),
    )
    .is_some()
    {
        let _ = sys_umount("/tmp");
    }
    if t.attempt(
        "bind / over /proc",
        sys_mount("/", "/proc", None, libc::MS_BIND, None),
    )
    .is_some()
    {
        let _ = sys_umount("/proc");
    }
    if t.attempt(
        "fresh proc on /tmp",
        sys_mount("proc", "/tmp", Some("proc"), 0, None),
    )
    .is_some()
    {
        let _ = sys_umount("/tmp");
    }
    t
}

const MASKS: [&str; 12] = [
    "/proc/kcore",
    "/proc/acpi",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/irq",
    "/proc/bus",
    "/sys/firmware",
];

fn attack_umount_masks() -> Trial {
    let mut t = Trial::default();
    for m in MASKS {
        t.attempt(&format!("umount {m}"), sys_umount(m));
    }
    t
}

fn write_file(path: &str, data: &[u8]) -> io::Result<()> {
    OpenOptions::new().write(true).open(path)?.write_all(data)
}

fn attack_proc_sys_write() -> Trial {
    let mut t = Trial::default();
    // Writing back the current value changes nothing even if it gets through.
    let host = read_trimmed("/proc/sys/kernel/hostname").unwrap_or_default();
    t.attempt(
        "write /proc/sys/kernel/hostname",
        write_file("/proc/sys/kernel/hostname", host.as_bytes()),
    );
    // 4 only silences the drop_caches log line: harmless, yet needs a writable /proc/sys.
    t.attempt(
        "write /proc/sys/vm/drop_caches",
        write_file("/proc/sys/vm/drop_caches", b"4"),
    );
    t
}

fn attack_sysrq() -> Trial {
    let mut t = Trial::default();
    // 'h' only prints the sysrq help to the kernel log.
    t.attempt(
        "write /proc/sysrq-trigger",
        write_file("/proc/sysrq-trigger", b"h"),
    );
    t
}

fn attack_kcore() -> Trial {
    let mut t = Trial::default();
    let mut buf = [0u8; 64];
    let read = File::open("/proc/kcore").and_then(|mut f| f.read(&mut buf));
    match read {
        Ok(0) => t.note("/proc/kcore reads empty (masked)"),
        Ok(n) => t.breach(format!("read {n} bytes of /proc/kcore")),
        Err(e) => t.note(format!("read /proc/kcore: {e}")),
    }
    t
}

fn attack_keyctl() -> Trial {
    let mut t = Trial::default();
    let (typ, desc, payload) = (cstr("user"), cstr("jaula-probe"), b"x");
    // SAFETY: all pointers are valid for the given lengths during the call;
    // KEY_SPEC_PROCESS_KEYRING names the caller's own keyring.
    let r = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            typ.as_ptr(),
            desc.as_ptr(),
            payload.as_ptr(),
            payload.len(),
            libc::KEY_SPEC_PROCESS_KEYRING,
        )
    };
    t.attempt("add_key", check(r));
    let name = cstr("jaula-probe-session");
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING takes one NUL-terminated name, valid during the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        )
    };
    t.attempt("keyctl(JOIN_SESSION_KEYRING)", check(r));
    t
}

fn attack_unshare_user() -> Trial {
    let mut t = Trial::default();
    // SAFETY: unshare takes only flags; a new user namespace affects this process alone.
    t.attempt(
        "unshare(CLONE_NEWUSER)",
        check_int(unsafe { libc::unshare(libc::CLONE_NEWUSER) }),
    );
    t
}

fn sys_bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is a writable, zero-padded bpf_attr of the size passed.
    own_fd(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(attr),
        )
    })
}

fn attack_bpf() -> Trial {
    let mut t = Trial::default();
    // BPF_MAP_CREATE: map_type ARRAY(2), key_size 4, value_size 4, max_entries 1.
    let mut attr = [0u64; 16];
    attr[0] = 2 | (4 << 32);
    attr[1] = 4 | (1 << 32);
    t.attempt("bpf(BPF_MAP_CREATE)", sys_bpf(0, &mut attr));
    // BPF_PROG_LOAD of a socket filter `r0 = 0; exit`.
    let insns: [u64; 2] = [0xb7, 0x95];
    let license = cstr("GPL");
    let mut attr = [0u64; 16];
    attr[0] = 1 | ((insns.len() as u64) << 32);
    attr[1] = insns.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    t.attempt("bpf(BPF_PROG_LOAD)", sys_bpf(5, &mut attr));
    t
}

fn attack_perf() -> Trial {
    let mut t = Trial::default();
    // perf_event_attr VER0 (64 bytes): software CPU clock of this process, user space only,
    // which is what perf_event_paranoid=2 still allows an unprivileged process.
    let mut attr = [0u64; 8];
    attr[0] = 1 | (64 << 32);
    attr[5] = (1 << 5) | (1 << 6);
    // SAFETY: `attr` is a valid 64-byte perf_event_attr; pid 0 = self, cpu -1 = any.
    let r = unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_mut_ptr(), 0, -1, -1, 0) };
    t.attempt("perf_event_open", own_fd(r));
    t
}

/// struct file_handle with room for MAX_HANDLE_SZ bytes.
#[repr(C)]
struct FileHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; 128],
}

fn open_by_handle(mount: &File, h: &mut FileHandle) -> io::Result<OwnedFd> {
    // SAFETY: `h` is a valid file_handle whose handle_bytes fits its buffer.
    own_fd(unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount.as_raw_fd(),
            h as *mut FileHandle,
            libc::O_RDONLY,
        )
    })
}

/// The "shocker" attack: forge a handle (root inode 2 of ext4) and open it.
fn attack_open_by_handle() -> Trial {
    let mut t = Trial::default();
    let Some(root) = t.attempt_quiet("open /", File::open("/")) else {
        return t;
    };
    let mut h = FileHandle {
        handle_bytes: 128,
        handle_type: 0,
        f_handle: [0; 128],
    };
    let mut mount_id: libc::c_int = 0;
    let path = cstr("/");
    // SAFETY: `h` has room for handle_bytes bytes; path and mount_id are valid.
    let r = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            path.as_ptr(),
            &mut h as *mut FileHandle,
            &mut mount_id,
            0,
        )
    };
    if t.attempt_quiet("name_to_handle_at /", check(r)).is_some() {
        t.attempt(
            "open_by_handle_at(handle of /)",
            open_by_handle(&root, &mut h),
        );
    }
    let mut forged = FileHandle {
        handle_bytes: 8,
        handle_type: 1,
        f_handle: [0; 128],
    };
    forged.f_handle[0] = 2;
    t.attempt(
        "open_by_handle_at(forged inode 2)",
        open_by_handle(&root, &mut forged),
    );
    t
}

/// Issues an i386 system call through `int 0x80`, which seccomp filters must catch by
/// checking the architecture.
fn int80(nr: u32, a1: u32, a2: u32) -> i64 {
    let mut ret: u64 = nr.into();
    // SAFETY: `int 0x80` enters the kernel's compat entry; the calls made here take no
    // pointers (or NULL). rbx cannot be named as an operand, so arg 1 is swapped in and out.
    // The compat path may clobber r8-r11, which are declared.
    unsafe {
        std::arch::asm!(
            "xchg {a1:r}, rbx",
            "int 0x80",
            "xchg {a1:r}, rbx",
            a1 = inout(reg) u64::from(a1) => _,
            inlateout("rax") ret,
            in("rcx") u64::from(a2),
            lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _,
        );
    }
    ret as u32 as i32 as i64
}

fn int80_result(r: i64) -> io::Result<i64> {
    if r < 0 {
        Err(io::Error::from_raw_os_error(-r as i32))
    } else {
        Ok(r)
    }
}

fn attack_int80() -> Trial {
    let mut t = Trial::default();
    // i386 unshare = 310, keyctl = 288 (KEYCTL_JOIN_SESSION_KEYRING = 1, NULL name).
    t.attempt(
        "int 0x80 unshare(CLONE_NEWUSER)",
        int80_result(int80(310, libc::CLONE_NEWUSER as u32, 0)),
    );
    t.attempt(
        "int 0x80 keyctl(JOIN_SESSION_KEYRING)",
        int80_result(int80(288, 1, 0)),
    );
    t
}

fn visible_pids() -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort();
    pids
}

/// Tries to open a process' executable for writing, directly and by reopening an O_PATH fd.
fn try_exe_writes(t: &mut Trial, p: i32) {
    let exe = format!("/proc/{p}/exe");
    t.attempt(
        &format!("open {exe} O_WRONLY"),
        OpenOptions::new().write(true).open(&exe),
    );
    let opath = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&exe);
    if let Some(f) = t.attempt_quiet(&format!("open {exe} O_PATH"), opath) {
        let again = format!("/proc/self/fd/{}", f.as_raw_fd());
        t.attempt(
            &format!("reopen {exe} via {again} O_WRONLY"),
            OpenOptions::new().write(true).open(&again),
        );
    }
}

fn sys_ptrace_seize(p: i32) -> io::Result<()> {
    // SAFETY: PTRACE_SEIZE takes no pointers; a successful seize ends when this process exits.
    check(unsafe { libc::ptrace(libc::PTRACE_SEIZE, p, 0, 0) }).map(drop)
}

fn attack_ptrace() -> Trial {
    let mut t = Trial::default();
    let me = pid();
    let pids = visible_pids();
    t.note(format!("visible pids {pids:?}"));
    for &p in &pids {
        let exe = fs::read_link(format!("/proc/{p}/exe")).map(|e| e.to_string_lossy().into_owned());
        t.note(format!("pid {p} exe {exe:?}"));
        if matches!(&exe, Ok(e) if e.contains("jaula-oci") || e.contains("jaula:")) {
            t.breach(format!("runtime process visible as pid {p}"));
        }
        if p != me {
            t.attempt(&format!("ptrace seize {p}"), sys_ptrace_seize(p));
        }
    }
    try_exe_writes(&mut t, 1);
    t
}

fn attack_proc_exe() -> Trial {
    let mut t = Trial::default();
    try_exe_writes(&mut t, 1);
    try_exe_writes(&mut t, pid());
    t
}

fn attack_af_alg() -> Trial {
    let mut t = Trial::default();
    // SAFETY: socket takes no pointers.
    let r = unsafe { libc::socket(libc::AF_ALG, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    t.attempt("socket(AF_ALG)", own_fd(r.into()));
    t
}

fn sys_ifreq(sock: &OwnedFd, req: libc::Ioctl, ifr: &mut [u8; 40]) -> io::Result<()> {
    // SAFETY: `ifr` is a 40-byte buffer laid out as struct ifreq (name, then flags), valid
    // and writable for the call.
    check_int(unsafe { libc::ioctl(sock.as_raw_fd(), req, ifr.as_mut_ptr()) }).map(drop)
}

/// Sets the loopback flags to their current value: a no-op that still needs CAP_NET_ADMIN.
fn attack_ifflags() -> Trial {
    let mut t = Trial::default();
    // SAFETY: socket takes no pointers.
    let r = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let Some(sock) = t.attempt_quiet("socket(AF_INET)", own_fd(r.into())) else {
        return t;
    };
    let mut ifr = [0u8; 40];
    ifr[..2].copy_from_slice(b"lo");
    if t.attempt_quiet(
        "SIOCGIFFLAGS lo",
        sys_ifreq(&sock, libc::SIOCGIFFLAGS, &mut ifr),
    )
    .is_some()
    {
        t.attempt(
            "SIOCSIFFLAGS lo",
            sys_ifreq(&sock, libc::SIOCSIFFLAGS, &mut ifr),
        );
    }
    t
}

fn attack_cgroup_v1_mount() -> Trial {
    let mut t = Trial::default();
    let target = "/tmp";
    for opts in ["memory", "rdma", "none,name=jaula-probe"] {
        let what = format!("mount -t cgroup -o {opts}");
        if t.attempt(
            &what,
            sys_mount("cgroup", target, Some("cgroup"), 0, Some(opts)),
        )
        .is_some()
        {
            let agent = format!("{target}/release_agent");
            t.attempt(
                "open release_agent O_WRONLY",
                OpenOptions::new().write(true).open(&agent),
            );
            let _ = sys_umount(target);
        }
    }
    if let Ok(dir) = fs::read_dir("/sys/fs/cgroup") {
        for e in dir.flatten() {
            let agent = e.path().join("release_agent");
            if agent.exists() {
                let what = format!("open {} O_WRONLY", agent.display());
                t.attempt(&what, OpenOptions::new().write(true).open(&agent));
            }
        }
    }
    t
}

fn sys_tiocsti(fd: RawFd) -> io::Result<()> {
    let c: u8 = b' ';
    // SAFETY: TIOCSTI reads one byte from the pointer, which is valid for the call.
    check_int(unsafe { libc::ioctl(fd, libc::TIOCSTI, &c as *const u8) }).map(drop)
}

fn attack_tiocsti() -> Trial {
    let mut t = Trial::default();
    t.attempt("TIOCSTI on fd 0", sys_tiocsti(0));
    let tty = OpenOptions::new().read(true).write(true).open("/dev/tty");
    if let Some(f) = t.attempt_quiet("open /dev/tty", tty) {
        t.attempt("TIOCSTI on /dev/tty", sys_tiocsti(f.as_raw_fd()));
    }
    t
}

/// Descriptors beyond stdio that the runtime left open; directory ones are climbed.
fn attack_fd_leak(allowed: &[i32], marker: Option<&str>) -> Trial {
    let mut t = Trial::default();
    let before = root_id();
    for (fd, target) in open_fds() {
        if fd <= 2 || allowed.contains(&fd) {
            continue;
        }
        t.breach(format!("fd {fd} -> {target} open"));
        // SAFETY: fchdir only reads the descriptor number.
        if unsafe { libc::fchdir(fd) } == 0 {
            for _ in 0..64 {
                let _ = std::env::set_current_dir("..");
            }
            let cwd = std::env::current_dir().map(|p| p.display().to_string());
            t.note(format!("climbed from fd {fd} to {cwd:?}"));
        }
    }
    let _ = std::env::set_current_dir("/");
    if before != root_id() {
        t.breach("root changed");
    }
    if let Some(m) = marker {
        if Path::new(m).exists() {
            t.breach(format!("host marker {m} visible"));
        }
    }
    t
}

/// Writes a file into each path (or the path itself when it is not a directory).
fn attack_write_host(paths: &[String]) -> Trial {
    let mut t = Trial::default();
    for p in paths {
        let target = if Path::new(p).is_dir() {
            PathBuf::from(p).join(format!("jaula-probe-{}", pid()))
        } else {
            PathBuf::from(p)
        };
        let r = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&target)
            .and_then(|mut f| f.write_all(b"jaula-probe\n"));
        t.attempt(&format!("write {}", target.display()), r);
    }
    t
}

fn run_attack(name: &str, args: &[String]) -> Option<Trial> {
    let arg = args.first().map(String::as_str);
    Some(match name {
        "chroot" => attack_chroot(arg),
        "mknod" => attack_mknod(),
        "mount" => attack_mount(),
        "umount-masks" => attack_umount_masks(),
        "proc-sys-write" => attack_proc_sys_write(),
        "sysrq" => attack_sysrq(),
        "kcore" => attack_kcore(),
        "keyctl" => attack_keyctl(),
        "unshare-user" => attack_unshare_user(),
        "bpf" => attack_bpf(),
        "perf" => attack_perf(),
        "open-by-handle" => attack_open_by_handle(),
        "int80" => attack_int80(),
        "ptrace" => attack_ptrace(),
        "proc-exe" => attack_proc_exe(),
        "af-alg" => attack_af_alg(),
        "ifflags" => attack_ifflags(),
        "cgroup-v1-mount" => attack_cgroup_v1_mount(),
        "tiocsti" => attack_tiocsti(),
        "fd-leak" => {
            let allowed: Vec<i32> = args.iter().filter_map(|a| a.parse().ok()).collect();
            let marker = args.iter().find(|a| a.starts_with('/')).map(String::as_str);
            attack_fd_leak(&allowed, marker)
        }
        "write-host" => attack_write_host(args),
        _ => return None,
    })
}

/// Every attack name, for `escape --list`.
const ATTACKS: [&str; 21] = [
    "chroot",
    "mknod",
    "mount",
    "umount-masks",
    "proc-sys-write",
    "sysrq",
    "kcore",
    "keyctl",
    "unshare-user",
    "bpf",
    "perf",
    "open-by-handle",
    "int80",
    "ptrace",
    "proc-exe",
    "af-alg",
    "ifflags",
    "cgroup-v1-mount",
    "tiocsti",
    "fd-leak",
    "write-host",
];

fn escape(args: &[String]) -> ExitCode {
    let Some(name) = args.first() else {
        return usage("escape NAME [ARGS]");
    };
    if name == "--list" {
        println!("{}", ATTACKS.join("\n"));
        return ExitCode::SUCCESS;
    }
    let Some(trial) = run_attack(name, &args[1..]) else {
        return usage(&format!("unknown attack {name}"));
    };
    let (json, blocked) = trial.report(name);
    println!("{json}");
    if blocked {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

// ---------------------------------------------------------------------------------------------
// Small utilities the lifecycle tests drive.
// ---------------------------------------------------------------------------------------------

fn ready() {
    println!("ready");
    let _ = io::stdout().flush();
}

fn secs(arg: Option<&String>) -> Duration {
    Duration::from_secs_f64(arg.and_then(|a| a.parse().ok()).unwrap_or(3600.0))
}

fn ignore_term(args: &[String]) -> ExitCode {
    // SAFETY: SIG_IGN is a valid disposition for SIGTERM; no handler code runs.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    ready();
    std::thread::sleep(secs(args.first()));
    ExitCode::SUCCESS
}

/// Blocks every signal, reports the first one that arrives (of `args`, when given: other
/// signals are swallowed) and exits with 128 + its number.
fn wait_signal(args: &[String]) -> ExitCode {
    let wanted: Vec<i32> = args.iter().filter_map(|a| a.parse().ok()).collect();
    // SAFETY: sigset_t is plain data; sigfillset initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid and writable; blocking signals only affects this thread, the
    // only one the probe has.
    unsafe {
        libc::sigfillset(&mut set);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    ready();
    let sig = loop {
        // SAFETY: `set` is initialised; a null siginfo pointer is allowed.
        let sig = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        if sig < 0 {
            return fail(&format!("sigwaitinfo: {}", io::Error::last_os_error()));
        }
        if wanted.is_empty() || wanted.contains(&sig) {
            break sig;
        }
    };
    println!("signal {sig}");
    let _ = io::stdout().flush();
    ExitCode::from((128 + sig) as u8)
}

fn echo_stdin() -> ExitCode {
    match io::copy(&mut io::stdin().lock(), &mut io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("echo-stdin: {e}")),
    }
}

fn hold(args: &[String]) {
    if let Some(i) = args.iter().position(|a| a == "--hold") {
        std::thread::sleep(secs(args.get(i + 1)));
    }
}

fn bind(args: &[String]) -> ExitCode {
    let (Some(addr), Some(port)) = (args.first(), args.get(1)) else {
        return usage("bind ADDR PORT [--hold SECS]");
    };
    let target = format!("{}:{port}", bracket(addr));
    match std::net::TcpListener::bind(&target) {
        Ok(l) => {
            println!(
                "{}",
                l.local_addr().map(|a| a.to_string()).unwrap_or_default()
            );
            let _ = io::stdout().flush();
            hold(args);
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("bind {target}: {e}")),
    }
}

fn bracket(addr: &str) -> String {
    if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_owned()
    }
}

/// Connects to ADDR:PORT, retrying refused connections for up to `--retry SECS`.
fn connect(args: &[String]) -> ExitCode {
    let (Some(addr), Some(port)) = (args.first(), args.get(1)) else {
        return usage("connect ADDR PORT [--retry SECS]");
    };
    let target = format!("{}:{port}", bracket(addr));
    let patience = args
        .iter()
        .position(|a| a == "--retry")
        .map_or(Duration::ZERO, |i| secs(args.get(i + 1)));
    let start = std::time::Instant::now();
    loop {
        match std::net::TcpStream::connect(&target) {
            Ok(s) => {
                let local = s.local_addr().map(|a| a.to_string()).unwrap_or_default();
                println!("{local}");
                return ExitCode::SUCCESS;
            }
            Err(e)
                if e.kind() == io::ErrorKind::ConnectionRefused && start.elapsed() < patience =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return fail(&format!("connect {target}: {e}")),
        }
    }
}

fn alloc(args: &[String]) -> ExitCode {
    let Some(mib) = args.first().and_then(|a| a.parse::<usize>().ok()) else {
        return usage("alloc MIB");
    };
    let mut v: Vec<u8> = Vec::new();
    if v.try_reserve_exact(mib << 20).is_err() {
        return fail(&format!("cannot reserve {mib} MiB"));
    }
    v.resize(mib << 20, 0);
    // Touch every page so the memory is really charged.
    for i in (0..v.len()).step_by(4096) {
        v[i] = 1;
    }
    println!("allocated {mib} MiB");
    let _ = io::stdout().flush();
    hold(args);
    std::hint::black_box(&v);
    ExitCode::SUCCESS
}

fn forkbomb(args: &[String]) -> ExitCode {
    let limit = args
        .first()
        .and_then(|a| a.parse::<usize>().ok())
        .unwrap_or(1000);
    let mut children = Vec::new();
    let mut error = String::new();
    while children.len() < limit {
        // SAFETY: the child only calls async-signal-safe functions (pause, _exit).
        match unsafe { libc::fork() } {
            -1 => {
                error = io::Error::last_os_error().to_string();
                break;
            }
            0 => loop {
                // SAFETY: pause has no preconditions; the parent kills this child.
                unsafe { libc::pause() };
            },
            child => children.push(child),
        }
    }
    for &c in &children {
        // SAFETY: `c` is our own child, not yet reaped, so the pid cannot have been reused.
        unsafe { libc::kill(c, libc::SIGKILL) };
    }
    for &c in &children {
        // SAFETY: a null status pointer is allowed.
        unsafe { libc::waitpid(c, std::ptr::null_mut(), 0) };
    }
    println!(
        "{}",
        J::obj(vec![
            ("forked", J::UInt(children.len() as u64)),
            ("error", J::s(error))
        ])
    );
    ExitCode::SUCCESS
}

fn write_cmd(args: &[String]) -> ExitCode {
    let (Some(path), Some(content)) = (args.first(), args.get(1)) else {
        return usage("write FILE CONTENT");
    };
    match fs::write(path, content) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("write {path}: {e}")),
    }
}

fn cat(args: &[String]) -> ExitCode {
    let Some(path) = args.first() else {
        return usage("cat FILE");
    };
    match fs::read(path) {
        Ok(data) => {
            let _ = io::stdout().write_all(&data);
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("cat {path}: {e}")),
    }
}

fn file_type(ft: fs::FileType) -> &'static str {
    match () {
        _ if ft.is_symlink() => "symlink",
        _ if ft.is_dir() => "dir",
        _ if ft.is_file() => "file",
        _ if ft.is_char_device() => "char",
        _ if ft.is_block_device() => "block",
        _ if ft.is_fifo() => "fifo",
        _ if ft.is_socket() => "socket",
        _ => "unknown",
    }
}

/// `lstat` of one path as JSON: type, mode, owner, device numbers and link target.
fn stat_json(path: &Path) -> io::Result<J> {
    let m = fs::symlink_metadata(path)?;
    let link = fs::read_link(path)
        .ok()
        .map(|l| l.to_string_lossy().into_owned());
    Ok(J::obj(vec![
        ("path", J::s(path.to_string_lossy())),
        ("type", J::s(file_type(m.file_type()))),
        ("mode", J::UInt((m.mode() & 0o7777).into())),
        ("uid", J::UInt(m.uid().into())),
        ("gid", J::UInt(m.gid().into())),
        ("major", J::UInt(libc::major(m.rdev()).into())),
        ("minor", J::UInt(libc::minor(m.rdev()).into())),
        ("size", J::UInt(m.size())),
        ("link", J::opt_str(link)),
    ]))
}

fn stat_cmd(args: &[String]) -> ExitCode {
    let Some(path) = args.first() else {
        return usage("stat PATH");
    };
    match stat_json(Path::new(path)) {
        Ok(j) => {
            println!("{j}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("stat {path}: {e}")),
    }
}

fn ls(args: &[String]) -> ExitCode {
    let Some(dir) = args.first() else {
        return usage("ls DIR");
    };
    let entries = match fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) => return fail(&format!("ls {dir}: {e}")),
    };
    let mut items: Vec<J> = entries
        .flatten()
        .filter_map(|e| stat_json(&e.path()).ok())
        .collect();
    items.sort_by_key(|j| j.to_string());
    println!("{}", J::Arr(items));
    ExitCode::SUCCESS
}

/// Checks the systemd socket-activation contract: LISTEN_FDS descriptors from 3 are open.
fn listen_fds() -> ExitCode {
    let n: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let listen_pid = std::env::var("LISTEN_PID").ok();
    let open: Vec<J> = (3..3 + n)
        .map(|fd| {
            // SAFETY: F_GETFD only inspects the descriptor number.
            let ok = unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
            J::Bool(ok)
        })
        .collect();
    println!(
        "{}",
        J::obj(vec![
            ("listen_fds", J::Int(n.into())),
            ("listen_pid", J::opt_str(listen_pid)),
            ("pid", J::Int(pid().into())),
            ("open", J::Arr(open)),
        ])
    );
    ExitCode::SUCCESS
}

/// Receives one descriptor over a connected unix socket (SCM_RIGHTS).
fn recv_fd(conn: &OwnedFd) -> io::Result<OwnedFd> {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for one cmsghdr carrying a single int, 8-aligned.
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: `msg` points at `iov` and `cbuf`, both alive and writable for the call.
    let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    check(n as libc::c_long)?;
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR only reads its control fields.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    // SAFETY: a non-null `cmsg` points inside `cbuf`, within msg_controllen.
    if cmsg.is_null() || unsafe { (*cmsg).cmsg_type } != libc::SCM_RIGHTS {
        return Err(io::Error::other("no SCM_RIGHTS message"));
    }
    // SAFETY: an SCM_RIGHTS message carries at least one int after its header.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>()) };
    own_fd(fd.into())
}

/// Plays the caller's side of `--console-socket`: accepts the pty master from the runtime
/// and copies everything the container writes to stdout, until the container side closes.
fn console_socket(args: &[String]) -> ExitCode {
    let Some(path) = args.first() else {
        return usage("console-socket PATH");
    };
    let listener = match std::os::unix::net::UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) => return fail(&format!("bind {path}: {e}")),
    };
    let conn = match listener.accept() {
        Ok((c, _)) => OwnedFd::from(c),
        Err(e) => return fail(&format!("accept on {path}: {e}")),
    };
    let master = match recv_fd(&conn) {
        Ok(fd) => File::from(fd),
        Err(e) => return fail(&format!("receive the pty master: {e}")),
    };
    copy_until_hangup(master)
}

fn copy_until_hangup(mut master: File) -> ExitCode {
    let mut out = io::stdout().lock();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let _ = out.write_all(&buf[..n]);
                let _ = out.flush();
            }
            // EIO: every slave descriptor is closed, the container is gone.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return fail(&format!("read pty master: {e}")),
        }
    }
    ExitCode::SUCCESS
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("jaula-probe: usage: {msg}");
    ExitCode::from(2)
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("jaula-probe: {msg}");
    ExitCode::from(2)
}

const HELP: &str = "jaula-probe COMMAND [ARGS]
  info | escape NAME [ARGS] | escape --list
  exit N | sleep SECS | ignore-term SECS | wait-signal [SIGNUM...] | echo-stdin
  bind ADDR PORT [--hold SECS] | connect ADDR PORT [--retry SECS] | alloc MIB [--hold SECS] | forkbomb N
  write FILE CONTENT | cat FILE | ls DIR | stat PATH | listen-fds
  console-socket PATH (host side of --console-socket: prints what the container writes)";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let Some(cmd) = argv.get(1) else {
        return usage(HELP);
    };
    let args = &argv[2..];
    match cmd.as_str() {
        "info" => {
            println!("{}", info());
            ExitCode::SUCCESS
        }
        "escape" => escape(args),
        "exit" => ExitCode::from(args.first().and_then(|a| a.parse().ok()).unwrap_or(0u8)),
        "sleep" => {
            std::thread::sleep(secs(args.first()));
            ExitCode::SUCCESS
        }
        "ignore-term" => ignore_term(args),
        "wait-signal" => wait_signal(args),
        "echo-stdin" => echo_stdin(),
        "bind" => bind(args),
        "connect" => connect(args),
        "alloc" => alloc(args),
        "forkbomb" => forkbomb(args),
        "write" => write_cmd(args),
        "cat" => cat(args),
        "ls" => ls(args),
        "stat" => stat_cmd(args),
        "listen-fds" => listen_fds(),
        "console-socket" => console_socket(args),
        _ => usage(HELP),
    }
}
