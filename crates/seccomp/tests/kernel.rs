//! Real-kernel tests: compiled filters are loaded into child processes (this binary,
//! re-executed with a scenario name) and the children report what their syscalls got.
//!
//! The binary has its own main() (`harness = false`): in the child it runs one scenario,
//! in the parent it runs every test and reports like libtest.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::mpsc;

use jaula_seccomp::{compile, default_profile, Action};
use jaula_spec::{Seccomp, SyscallArg, SyscallRule};
use jaula_sys::seccomp as sys;
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

const SCENARIO_ENV: &str = "JAULA_SECCOMP_SCENARIO";
const DIR_ENV: &str = "JAULA_SECCOMP_DIR";

fn main() {
    if let Ok(scenario) = std::env::var(SCENARIO_ENV) {
        child(&scenario);
        return;
    }
    let (filter, list) = parse_args();
    let tests: &[(&str, fn())] = &[
        (
            "errno_actions_and_args_on_both_abis",
            errno_actions_and_args_on_both_abis,
        ),
        (
            "default_profile_in_the_kernel",
            default_profile_in_the_kernel,
        ),
        (
            "kill_process_kills_with_sigsys",
            kill_process_kills_with_sigsys,
        ),
        ("unlisted_x32_is_killed", unlisted_x32_is_killed),
        ("listed_x32_follows_the_rules", listed_x32_follows_the_rules),
        ("unlisted_i386_is_killed", unlisted_i386_is_killed),
        ("notify_returns_a_listener", notify_returns_a_listener),
        ("tsync_reaches_other_threads", tsync_reaches_other_threads),
        ("log_lets_the_syscall_run", log_lets_the_syscall_run),
        (
            "large_profile_loads_and_decides",
            large_profile_loads_and_decides,
        ),
    ];
    if list {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return;
    }
    let mut failed = Vec::new();
    let selected: Vec<_> = tests
        .iter()
        .filter(|(name, _)| match &filter {
            Some(wanted) => name.contains(wanted.as_str()),
            None => true,
        })
        .collect();
    println!("\nrunning {} tests", selected.len());
    for (name, test) in selected {
        let ok = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*name);
        }
    }
    if !failed.is_empty() {
        println!("\nfailures: {failed:?}");
        std::process::exit(101);
    }
    println!("\ntest result: ok");
}

/// The libtest arguments this runner understands: a name filter and `--list`. Values of
/// libtest options (`--test-threads 2`) are not taken for a filter.
fn parse_args() -> (Option<String>, bool) {
    const WITH_VALUE: &[&str] = &[
        "--test-threads",
        "--skip",
        "--format",
        "--color",
        "--logfile",
        "-Z",
    ];
    let mut args = std::env::args().skip(1);
    let (mut filter, mut list) = (None, false);
    while let Some(arg) = args.next() {
        if arg == "--list" {
            list = true;
        } else if WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') && filter.is_none() {
            filter = Some(arg);
        }
    }
    (filter, list)
}

// ---- parent side ----

/// What a child reported, and how it ended.
struct Outcome {
    status: ExitStatus,
    lines: HashMap<String, String>,
    stderr: String,
}

impl Outcome {
    fn get(&self, key: &str) -> &str {
        self.lines.get(key).unwrap_or_else(|| {
            panic!(
                "child did not report {key}: {:?} {}",
                self.lines, self.stderr
            )
        })
    }
}

fn run_child(scenario: &str, dir: Option<&Path>) -> Outcome {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(SCENARIO_ENV, scenario);
    if let Some(dir) = dir {
        cmd.env(DIR_ENV, dir);
    }
    let out = cmd.output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Outcome {
        status: out.status,
        lines,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_exited_ok(out: &Outcome) {
    assert!(
        out.status.success(),
        "child failed: {:?} {}",
        out.status,
        out.stderr
    );
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("jaula-seccomp-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn errno_actions_and_args_on_both_abis() {
    let dir = TempDir::new("errno");
    let out = run_child("errno", Some(&dir.0));
    assert_exited_ok(&out);
    assert_eq!(out.get("getpid"), (-libc::EDOM).to_string());
    assert_eq!(out.get("ia32_getpid"), "EDOM");
    assert_eq!(out.get("mkdir700"), "EROFS");
    assert_eq!(out.get("mkdir755"), "ok");
    assert!(!dir.0.join("a").exists() && dir.0.join("b").is_dir());
    assert_eq!(out.get("kill0"), "ECHILD");
    assert_eq!(out.get("kill_cont"), "ok");
    assert_eq!(out.get("ia32_kill0"), "ECHILD");
    assert_eq!(out.get("ia32_kill_cont"), "ok");
}

fn default_profile_in_the_kernel() {
    let out = run_child("default", None);
    assert_exited_ok(&out);
    // Without the ENOSYS rule an allow-list would answer EPERM.
    assert_eq!(out.get("enosys_1000"), "ENOSYS");
    // Root may unshare a user namespace and mount: the filter is what refuses.
    assert_eq!(out.get("unshare_user"), "EPERM");
    assert_eq!(out.get("unshare_files"), "ok");
    assert_eq!(out.get("mount"), "EPERM");
    assert_eq!(out.get("thread"), "ok");
    assert_eq!(out.get("spawn_true"), "ok");
    assert_eq!(out.get("socket_inet"), "ok");
    assert_eq!(out.get("socket_alg"), "EAFNOSUPPORT");
    assert_eq!(out.get("socket_vsock"), "EAFNOSUPPORT");
    assert_eq!(out.get("ia32_getpid"), "ok");
}

fn kill_process_kills_with_sigsys() {
    let out = run_child("kill_process", None);
    assert_eq!(out.get("loaded"), "1");
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{:?}", out.status);
    assert!(!out.lines.contains_key("survived"));
}

fn unlisted_x32_is_killed() {
    let out = run_child("x32_unlisted", None);
    assert_eq!(out.get("loaded"), "1");
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{:?}", out.status);
}

fn listed_x32_follows_the_rules() {
    let out = run_child("x32_listed", None);
    assert_exited_ok(&out);
    assert_eq!(out.get("x32_getpid"), "EDOM");
}

fn unlisted_i386_is_killed() {
    let out = run_child("i386_unlisted", None);
    assert_eq!(out.get("loaded"), "1");
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{:?}", out.status);
}

fn notify_returns_a_listener() {
    let out = run_child("notify", None);
    assert_exited_ok(&out);
    assert_eq!(out.get("listener"), "anon_inode:seccomp notify");
    // With the listener closed, a notified syscall fails with ENOSYS.
    assert_eq!(out.get("getppid"), (-libc::ENOSYS).to_string());
}

fn tsync_reaches_other_threads() {
    let out = run_child("tsync", None);
    assert_exited_ok(&out);
    assert_eq!(out.get("thread_getpid"), (-libc::EDOM).to_string());
    let out = run_child("no_tsync", None);
    assert_exited_ok(&out);
    assert!(out.get("thread_getpid").parse::<i32>().unwrap() > 0);
}

fn log_lets_the_syscall_run() {
    let out = run_child("log", None);
    assert_exited_ok(&out);
    assert!(out.get("getppid").parse::<i32>().unwrap() > 0);
}

fn large_profile_loads_and_decides() {
    let out = run_child("large", None);
    assert_exited_ok(&out);
    assert!(out.get("instructions").parse::<usize>().unwrap() > 1000);
    assert_eq!(out.get("kill0"), "ECHILD");
    assert_eq!(out.get("kill_cont"), "ok");
}

// ---- child side ----

fn child(scenario: &str) {
    let pid = Pid::this();
    match scenario {
        "errno" => errno_child(pid),
        "default" => default_child(),
        "kill_process" => {
            load(&allow_but(vec![rule(
                "getppid",
                Action::KillProcess,
                vec![],
            )]));
            report("loaded", 1);
            nix::unistd::getppid();
            report("survived", 1);
        }
        "x32_unlisted" => {
            load(&allow_but(vec![rule("mkdir", Action::Errno(1), vec![])]));
            report("loaded", 1);
            let _ = sys::x32_getpid();
        }
        "x32_listed" => {
            let mut p = allow_but(vec![rule(
                "getpid",
                Action::Errno(libc::EDOM as u16),
                vec![],
            )]);
            p.architectures = vec!["SCMP_ARCH_X32".into()];
            load(&p);
            report("x32_getpid", errno_of(sys::x32_getpid()));
        }
        "i386_unlisted" => {
            load(&allow_but(vec![rule("mkdir", Action::Errno(1), vec![])]));
            report("loaded", 1);
            let _ = sys::ia32_getpid();
        }
        "notify" => {
            let listener = load(&allow_but(vec![rule("getppid", Action::Notify, vec![])]))
                .expect("a listener");
            let link = format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&listener)
            );
            report("listener", std::fs::read_link(link).unwrap().display());
            drop(listener);
            report("getppid", nix::unistd::getppid().as_raw());
        }
        "tsync" | "no_tsync" => tsync_child(scenario == "tsync"),
        "log" => {
            load(&allow_but(vec![rule("getppid", Action::Log, vec![])]));
            report("getppid", nix::unistd::getppid().as_raw());
        }
        "large" => large_child(pid),
        other => panic!("unknown scenario {other}"),
    }
}

fn errno_child(pid: Pid) {
    let dir = PathBuf::from(std::env::var(DIR_ENV).unwrap());
    let mut p = allow_but(vec![
        rule("getpid", Action::Errno(libc::EDOM as u16), vec![]),
        rule(
            "mkdir",
            Action::Errno(libc::EROFS as u16),
            vec![eq(1, 0o700)],
        ),
        rule("kill", Action::Errno(libc::ECHILD as u16), vec![eq(1, 0)]),
    ]);
    p.architectures = vec!["SCMP_ARCH_X86".into()];
    load(&p);
    report("getpid", nix::unistd::getpid().as_raw());
    report("ia32_getpid", errno_of(sys::ia32_getpid()));
    let mkdir = |name: &str, mode: u32| {
        errno_of(nix::unistd::mkdir(
            &dir.join(name),
            Mode::from_bits_truncate(mode),
        ))
    };
    report("mkdir700", mkdir("a", 0o700));
    report("mkdir755", mkdir("b", 0o755));
    report("kill0", errno_of(kill(pid, None)));
    report("kill_cont", errno_of(kill(pid, Signal::SIGCONT)));
    report("ia32_kill0", errno_of(sys::ia32_kill(pid.as_raw(), 0)));
    report(
        "ia32_kill_cont",
        errno_of(sys::ia32_kill(pid.as_raw(), libc::SIGCONT)),
    );
}

fn default_child() {
    load(&default_profile());
    report(
        "enosys_1000",
        format!("{:?}", sys::unassigned_syscall(1000)),
    );
    use nix::sched::{unshare, CloneFlags};
    report("unshare_user", errno_of(unshare(CloneFlags::CLONE_NEWUSER)));
    report("unshare_files", errno_of(unshare(CloneFlags::CLONE_FILES)));
    let mount = nix::mount::mount(
        Some("none"),
        "/nonexistent-jaula-seccomp-test",
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    );
    report("mount", errno_of(mount));
    // glibc creates threads with clone3 and falls back to clone on ENOSYS.
    let thread = std::thread::spawn(|| 7).join();
    report(
        "thread",
        if thread.ok() == Some(7) {
            "ok"
        } else {
            "failed"
        },
    );
    let status = Command::new("/bin/true").status();
    report(
        "spawn_true",
        if status.is_ok_and(|s| s.success()) {
            "ok"
        } else {
            "failed"
        },
    );
    let sock = |family| socket(family, SockType::SeqPacket, SockFlag::empty(), None);
    let inet = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    );
    report("socket_inet", errno_of(inet));
    report("socket_alg", errno_of(sock(AddressFamily::Alg)));
    report("socket_vsock", errno_of(sock(AddressFamily::Vsock)));
    report("ia32_getpid", errno_of(sys::ia32_getpid()));
}

fn tsync_child(tsync: bool) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        go_rx.recv().unwrap();
        nix::unistd::getpid().as_raw()
    });
    let mut p = allow_but(vec![rule(
        "getpid",
        Action::Errno(libc::EDOM as u16),
        vec![],
    )]);
    if tsync {
        p.flags = vec!["SECCOMP_FILTER_FLAG_TSYNC".into()];
    }
    load(&p);
    go_tx.send(()).unwrap();
    report("thread_getpid", thread.join().unwrap());
}

fn large_child(pid: Pid) {
    let names = default_profile().syscalls.swap_remove(0).names;
    let mut rules: Vec<SyscallRule> = names
        .iter()
        .filter(|n| *n != "kill")
        .take(300)
        .enumerate()
        .map(|(i, name)| {
            rule(
                name,
                Action::Errno(libc::EIO as u16),
                vec![eq(0, 0xdead_0000 + i as u64), eq(1, 0xbeef)],
            )
        })
        .collect();
    rules.push(rule(
        "kill",
        Action::Errno(libc::ECHILD as u16),
        vec![eq(1, 0)],
    ));
    let p = allow_but(rules);
    let filter = compile(&p).unwrap();
    report("instructions", filter.program().len());
    set_no_new_privs();
    filter.load().unwrap();
    report("kill0", errno_of(kill(pid, None)));
    report("kill_cont", errno_of(kill(pid, Signal::SIGCONT)));
}

// ---- helpers ----

fn report(key: &str, value: impl std::fmt::Display) {
    println!("{key}={value}");
}

fn errno_of<T>(result: Result<T, Errno>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("{e:?}"),
    }
}

fn set_no_new_privs() {
    nix::sys::prctl::set_no_new_privs().unwrap();
}

fn load(seccomp: &Seccomp) -> Option<std::os::fd::OwnedFd> {
    let filter = compile(seccomp).unwrap();
    set_no_new_privs();
    filter.load().unwrap()
}

fn allow_but(syscalls: Vec<SyscallRule>) -> Seccomp {
    Seccomp {
        default_action: "SCMP_ACT_ALLOW".into(),
        syscalls,
        ..Seccomp::default()
    }
}

fn rule(name: &str, action: Action, args: Vec<SyscallArg>) -> SyscallRule {
    let (action, errno_ret) = match action {
        Action::Errno(e) => ("SCMP_ACT_ERRNO", Some(u32::from(e))),
        Action::KillProcess => ("SCMP_ACT_KILL_PROCESS", None),
        Action::Notify => ("SCMP_ACT_NOTIFY", None),
        Action::Log => ("SCMP_ACT_LOG", None),
        other => panic!("no test uses {other}"),
    };
    SyscallRule {
        names: vec![name.to_owned()],
        action: action.to_owned(),
        errno_ret,
        args,
    }
}

fn eq(index: u32, value: u64) -> SyscallArg {
    SyscallArg {
        index,
        value,
        value_two: 0,
        op: "SCMP_CMP_EQ".into(),
    }
}
