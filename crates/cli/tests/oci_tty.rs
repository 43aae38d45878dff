//! Terminals: `terminal: true` containers and `exec -t`, through `--console-socket` (the pty
//! master handed over with SCM_RIGHTS) or through the caller's own terminal (proxied).
//!
//! Inside, busybox `tty`, `stty size` and /proc/self/stat show what the process really got:
//! a pty slave, its window size, and whether the process leads a session with that pty as
//! its controlling terminal.

mod common;
mod console;

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::pty::{openpty, Winsize};
use nix::sys::termios::{tcgetattr, LocalFlags};
use serde_json::json;

use common::{Bundle, Container, Io, Oci};
use console::{ConsoleSocket, Pty};

/// Prints the session, tty and pid fields of the shell's /proc/PID/stat as `sid=S tty=T pid=P`.
///
/// Fields 6 and 7 of stat are the session id and the controlling terminal (0: none).
const SESSION: &str = r#"read -r pid comm state ppid pgrp sid tty rest < /proc/$$/stat; echo "sid=$sid tty=$tty pid=$pid""#;

fn script(lines: &[&str]) -> String {
    lines.join("; ")
}

/// A `sh -c SCRIPT` bundle with `terminal: true` and a console size of `rows` x `cols`.
fn tty_bundle(script: &str, rows: u16, cols: u16) -> Bundle {
    let mut b = Bundle::new(&["/bin/sh", "-c", script]);
    b.process()["terminal"] = json!(true);
    b.process()["consoleSize"] = json!({"height": rows, "width": cols});
    b
}

/// Value of `key=` in `text` (first occurrence), as printed by `SESSION`.
fn field(text: &str, key: &str) -> Option<i64> {
    let start = text.find(&format!("{key}="))? + key.len() + 1;
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

/// Asserts that `text` names a pty slave of the container's devpts.
#[track_caller]
fn assert_pts(text: &str) {
    let ok = text.lines().any(|l| {
        l.trim()
            .strip_prefix("/dev/pts/")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    });
    assert!(ok, "`tty` did not print /dev/pts/N: {text:?}");
}

/// Asserts `SESSION` output: the shell leads its session and has a controlling terminal.
#[track_caller]
fn assert_session_leader_with_ctty(text: &str) {
    let (sid, tty, pid) = (field(text, "sid"), field(text, "tty"), field(text, "pid"));
    assert!(pid.is_some(), "no session line in {text:?}");
    assert_eq!(sid, pid, "the process does not lead its session: {text:?}");
    assert_ne!(tty, Some(0), "no controlling terminal: {text:?}");
}

#[test]
fn console_socket_gives_a_controlling_pty_of_the_configured_size() {
    let oci = Oci::new();
    let s = script(&[
        "tty",
        "stty size",
        SESSION,
        "echo fds: $(ls /proc/self/fd)",
        "stat -c 'console=%t:%T' /dev/console",
        "stat -c 'slave=%t:%T' $(tty)",
        "echo ready",
        "read -r line",
        "echo \"got:$line\"",
    ]);
    let b = tty_bundle(&s, 40, 120);
    let sock = ConsoleSocket::new();
    let c = oci.container("ttysock");
    c.create_with(&b, &["--console-socket", sock.path_str()], Io::default())
        .ok();
    let mut pty = sock.pty();
    c.start().ok();
    pty.expect("ready");
    // Typed input reaches the process through the line discipline.
    pty.write("ping\n");
    let text = pty.read_to_hangup().to_owned();
    assert_pts(&text);
    assert!(
        text.lines().any(|l| l.trim() == "40 120"),
        "stty size: {text:?}"
    );
    assert_session_leader_with_ctty(&text);
    assert_eq!(
        field(&text, "pid"),
        Some(1),
        "the shell is the init: {text:?}"
    );
    assert!(text.contains("got:ping"), "{text:?}");
    // Nothing but the pty (and ls's directory) is open: the master stayed outside.
    assert!(text.contains("fds: 0 1 2 3\r\n"), "{text:?}");
    // /dev/console is the container's pty, as programs that log to the console expect.
    let dev = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key).map(str::to_owned))
    };
    assert!(dev("slave=").is_some(), "{text:?}");
    assert_eq!(dev("console="), dev("slave="), "/dev/console: {text:?}");
    c.wait_status("stopped");
}

#[test]
fn console_window_size_changes_reach_the_container() {
    let oci = Oci::new();
    let s = script(&[
        "trap 'stty size; exit 0' WINCH",
        "echo ready",
        "while :; do sleep 0.02; done",
    ]);
    let b = tty_bundle(&s, 24, 80);
    let sock = ConsoleSocket::new();
    let c = oci.container("ttywinch");
    c.create_with(&b, &["--console-socket", sock.path_str()], Io::default())
        .ok();
    let mut pty = sock.pty();
    c.start().ok();
    pty.expect("ready");
    // The slave as the container holds it: its fd 0, reached from the host through /proc.
    let slave = format!("/proc/{}/fd/0", c.pid());
    let st = Command::new("stty")
        .args(["-F", &slave, "rows", "33", "cols", "101"])
        .status()
        .unwrap();
    assert!(st.success(), "stty -F {slave}");
    let text = pty.read_to_hangup().to_owned();
    assert!(text.lines().any(|l| l.trim() == "33 101"), "{text:?}");
}

#[test]
fn terminal_run_detached_without_console_socket_is_refused() {
    let oci = Oci::new();
    let b = tty_bundle("true", 24, 80);
    b.write_config();
    let c = oci.container("ttydetach");
    let mut cmd = oci.command();
    cmd.args([
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &c.id,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut run = cmd.spawn().unwrap();
    let Some(st) = common::wait_timeout(&mut run, Duration::from_secs(10)) else {
        // The container's half-made init would hold the state lock and outlive the test:
        // end it (it is ours) so that the guard's delete can run.
        kill_container_processes(&c.id);
        panic!("run --detach of a terminal container without --console-socket hung");
    };
    let mut err = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        !st.success(),
        "run --detach succeeded without a console socket"
    );
    assert!(
        err.contains("console"),
        "the error does not name the console socket: {err:?}"
    );
    assert!(c.state().is_none(), "the container was left behind");
}

/// SIGKILLs every process in the cgroups named `id` (a container this test created).
fn kill_container_processes(id: &str) {
    for pid in common::pids_in_cgroups_named(id) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// exec -t
// ---------------------------------------------------------------------------------------------

/// A started container whose init sleeps, without a terminal.
fn sleeper<'a>(oci: &'a Oci, tag: &str) -> (Container<'a>, Bundle) {
    let b = Bundle::new(&["/bin/sleep", "600"]);
    let c = oci.container(tag);
    c.create(&b).ok();
    c.start().ok();
    c.wait_status("running");
    (c, b)
}

#[test]
fn exec_tty_detached_with_console_socket_gets_its_own_controlling_pty() {
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "exectty-d");
    let sock = ConsoleSocket::new();
    let pid_file = oci.scratch_file("exec.pid");
    let s = script(&[
        "tty",
        "stty size",
        SESSION,
        "echo ready",
        "read -r line",
        "echo \"got:$line\"",
    ]);
    let started = Instant::now();
    // The way containerd runs `exec -t`: detached, the pty master to its socket.
    let out = oci.run(&[
        "exec",
        "-t",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--console-socket",
        sock.path_str(),
        &c.id,
        "sh",
        "-c",
        &s,
    ]);
    out.ok();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "exec -d waited"
    );
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        common::pid_alive(pid),
        "detached exec process {pid} is gone"
    );
    let mut pty = sock.pty();
    pty.expect("ready");
    pty.write("detached\n");
    let text = pty.read_to_hangup().to_owned();
    assert_pts(&text);
    assert_session_leader_with_ctty(&text);
    assert_ne!(
        field(&text, "pid"),
        Some(1),
        "exec is not the init: {text:?}"
    );
    assert!(text.contains("got:detached"), "{text:?}");
    common::wait_pid_gone(pid);
}

#[test]
fn exec_tty_detached_without_console_socket_is_refused() {
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "exectty-nosock");
    let out = oci.run(&["exec", "-t", "-d", &c.id, "true"]);
    out.fails();
    assert!(out.stderr.contains("console"), "{out:#?}");
}

// ---------------------------------------------------------------------------------------------
// The caller's terminal, proxied by a foreground `run` or `exec -t`.
// ---------------------------------------------------------------------------------------------

/// A host pty whose slave is the controlling terminal of a runtime command.
struct HostTerminal {
    child: Child,
    pty: Pty,
    slave_path: PathBuf,
}

impl HostTerminal {
    /// Runs `cmd` as a session leader on a new pty of `rows` x `cols` (`setsid --ctty`),
    /// stdin, stdout and stderr all on the slave, as a shell would start it.
    fn spawn(cmd: Command, rows: u16, cols: u16) -> HostTerminal {
        let ws = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pair = openpty(&ws, None).unwrap();
        let slave_path = nix::unistd::ttyname(&pair.slave).unwrap();
        let mut wrapped = Command::new("setsid");
        wrapped
            .args(["--ctty", "--wait"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        wrapped
            .stdin(io(&pair.slave))
            .stdout(io(&pair.slave))
            .stderr(io(&pair.slave));
        let child = wrapped.spawn().unwrap();
        // Only the child holds the slave now, so the master hangs up when it is done.
        drop(pair.slave);
        HostTerminal {
            child,
            pty: Pty::new(pair.master),
            slave_path,
        }
    }

    /// Local flags of the host terminal, to see raw mode come and go.
    fn lflags(&self) -> LocalFlags {
        tcgetattr(self.pty.fd()).unwrap().local_flags
    }

    /// Resizes the host terminal: the kernel sends SIGWINCH to its foreground group.
    fn resize(&self, rows: u16, cols: u16) {
        let st = Command::new("stty")
            .arg("-F")
            .arg(&self.slave_path)
            .args(["rows", &rows.to_string(), "cols", &cols.to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "stty -F {}", self.slave_path.display());
    }

    /// Reads until the runtime hangs up, then returns its exit code and the text.
    fn finish(mut self) -> (i32, String) {
        let text = self.pty.read_to_hangup().to_owned();
        let st = common::wait_timeout(&mut self.child, common::CMD_TIMEOUT)
            .unwrap_or_else(|| panic!("runtime did not exit; terminal showed {text:?}"));
        (st.code().unwrap_or(-1), text)
    }
}

impl Drop for HostTerminal {
    fn drop(&mut self) {
        // Ours; a no-op once it was reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn foreground_run_proxies_the_callers_terminal() {
    let oci = Oci::new();
    // The pause lets the runtime size the pty before the shell looks: runtimes apply the
    // caller's size once the process started (runc too), not before.
    let s = script(&[
        "sleep 0.3",
        "tty",
        "stty size",
        SESSION,
        "trap 'stty size; exit 5' WINCH",
        "echo ready",
        "read -r line",
        "echo \"got:$line\"",
        "while :; do sleep 0.02; done",
    ]);
    // The config's console size is a default: the caller's terminal size wins.
    let b = tty_bundle(&s, 10, 10);
    b.write_config();
    let c = oci.container("ttyproxy");
    let mut cmd = oci.command();
    cmd.args(["run", "--bundle", b.path().to_str().unwrap(), &c.id]);
    // A fresh pty's modes: what the runtime must put back when it is done.
    let before = {
        let fresh = openpty(None, None).unwrap();
        tcgetattr(&fresh.master).unwrap().local_flags
    };
    let mut term = HostTerminal::spawn(cmd, 30, 100);
    term.pty.expect("ready");
    let raw = term.lflags();
    assert!(
        !raw.intersects(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG),
        "the caller's terminal is not in raw mode while the container runs: {raw:?}"
    );
    // Raw mode on our side: the carriage return reaches the container's line discipline.
    term.pty.write("hello\r");
    term.pty.expect("got:hello");
    term.resize(50, 132);
    let (code, text) = term_finish_with_flags(term, before);
    assert_eq!(code, 5, "run's exit code; terminal showed {text:?}");
    assert_pts(&text);
    assert!(
        text.lines().any(|l| l.trim() == "30 100"),
        "initial size: {text:?}"
    );
    assert!(
        text.lines().any(|l| l.trim() == "50 132"),
        "size after SIGWINCH: {text:?}"
    );
    assert_session_leader_with_ctty(&text);
    assert!(c.state().is_none(), "run left the container behind");
}

/// Finishes `term` and checks that the runtime restored the terminal's cooked mode.
fn term_finish_with_flags(term: HostTerminal, cooked: LocalFlags) -> (i32, String) {
    let master = term.pty.fd().try_clone_to_owned().unwrap();
    let (code, text) = term.finish();
    let now = tcgetattr(&master).unwrap().local_flags;
    assert_eq!(
        now & (LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG),
        cooked & (LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG),
        "terminal modes not restored after run"
    );
    (code, text)
}

#[test]
fn foreground_exec_tty_proxies_the_callers_terminal() {
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "exectty-proxy");
    // The pause keeps this test to the proxy: the size at the very start has its own test.
    let s = script(&["sleep 0.3", "tty", "stty size", SESSION, "exit 6"]);
    let mut cmd = oci.command();
    cmd.args(["exec", "-t", &c.id, "sh", "-c", &s]);
    let term = HostTerminal::spawn(cmd, 27, 91);
    let (code, text) = term.finish();
    assert_eq!(code, 6, "exec's exit code; terminal showed {text:?}");
    assert_pts(&text);
    assert!(text.lines().any(|l| l.trim() == "27 91"), "{text:?}");
    assert_session_leader_with_ctty(&text);
}

#[test]
fn foreground_run_with_terminal_passes_the_exit_code_and_output() {
    let oci = Oci::new();
    let b = tty_bundle("echo out-on-tty; exit 9", 24, 80);
    b.write_config();
    let c = oci.container("ttycode");
    let mut cmd = oci.command();
    cmd.args(["run", "--bundle", b.path().to_str().unwrap(), &c.id]);
    let (code, text) = HostTerminal::spawn(cmd, 24, 80).finish();
    assert_eq!(code, 9, "{text:?}");
    assert!(text.contains("out-on-tty"), "{text:?}");
}

#[test]
fn terminal_without_a_terminal_on_the_caller_side_still_runs() {
    // CI and scripts call with stdin from /dev/null and output to files: the runtime still
    // relays the pty and passes the exit code.
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "ttynotty");
    let out = oci.run(&["exec", "-t", &c.id, "sh", "-c", "tty; echo via-pty; exit 3"]);
    assert_eq!(out.code(), 3, "{out:#?}");
    assert_pts(&out.stdout);
    assert!(out.stdout.contains("via-pty"), "{out:#?}");
    let b = tty_bundle("tty; echo run-via-pty; exit 4", 24, 80);
    let out = oci.container("ttynotty-run").run(&b);
    assert_eq!(out.code(), 4, "{out:#?}");
    assert_pts(&out.stdout);
    assert!(out.stdout.contains("run-via-pty"), "{out:#?}");
}

#[test]
fn foreground_run_with_console_socket_passes_the_exit_code() {
    let oci = Oci::new();
    let b = tty_bundle("tty; echo via-socket; exit 8", 24, 80);
    b.write_config();
    let sock = ConsoleSocket::new();
    let c = oci.container("ttyrunsock");
    let bundle = b.path().to_str().unwrap();
    let mut cmd = oci.command();
    cmd.args([
        "run",
        "--console-socket",
        sock.path_str(),
        "--bundle",
        bundle,
        &c.id,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    let mut run = cmd.spawn().unwrap();
    let mut pty = sock.pty();
    let text = pty.read_to_hangup().to_owned();
    let st = common::wait_timeout(&mut run, common::CMD_TIMEOUT).expect("run returns");
    assert_eq!(st.code(), Some(8), "pty showed {text:?}");
    assert_pts(&text);
    assert!(text.contains("via-socket"), "{text:?}");
}

#[test]
fn exec_tty_into_a_user_namespace() {
    let oci = Oci::new();
    let mut b = Bundle::new(&["/bin/sleep", "600"]);
    b.add_namespace("user", None);
    let map = json!([{"containerID": 0, "hostID": 400_000, "size": 65536}]);
    b.config["linux"]["uidMappings"] = map.clone();
    b.config["linux"]["gidMappings"] = map;
    let c = oci.container("ttyuserns");
    c.create(&b).ok();
    c.start().ok();
    let s = script(&["tty", SESSION, "id -u"]);
    let out = oci.run(&["exec", "-t", &c.id, "sh", "-c", &s]);
    out.ok();
    assert_pts(&out.stdout);
    assert_session_leader_with_ctty(&out.stdout);
    assert!(
        out.stdout.contains("\n0\r\n") || out.stdout.contains("\n0\n"),
        "{out:#?}"
    );
}

/// Runs `cmd` on a host terminal of 27 x 91 `tries` times; returns what the runs that did
/// not see that size printed.
fn first_sizes_seen(tries: usize, cmd: impl Fn() -> Command) -> Vec<String> {
    (0..tries)
        .map(|_| HostTerminal::spawn(cmd(), 27, 91).finish().1)
        .filter(|text| !text.lines().any(|l| l.trim() == "27 91"))
        .collect()
}

#[test]
fn exec_tty_process_starts_with_the_callers_window_size() {
    // `stty size` as the process itself, so it asks at once: a runtime that sizes the pty
    // only after the exec loses this race about half the time (runc 1.1 does), and the
    // program starts with a 0 x 0 terminal.
    let oci = Oci::new();
    let (c, _b) = sleeper(&oci, "ttyfirstsize");
    let wrong = first_sizes_seen(10, || {
        let mut cmd = oci.command();
        cmd.args(["exec", "-t", &c.id, "stty", "size"]);
        cmd
    });
    assert!(
        wrong.is_empty(),
        "{} of 10 execs started with another size: {wrong:?}",
        wrong.len()
    );
}

#[test]
fn terminal_run_starts_with_the_callers_window_size() {
    // Without a console socket the caller's terminal is the container's: its size wins over
    // the config's consoleSize from the first instruction on.
    let oci = Oci::new();
    let b = tty_bundle("stty size", 10, 10);
    b.write_config();
    let containers: Vec<Container<'_>> = (0..5).map(|_| oci.container("ttyrunsize")).collect();
    let mut wrong = Vec::new();
    for c in &containers {
        let mut cmd = oci.command();
        cmd.args(["run", "--bundle", b.path().to_str().unwrap(), &c.id]);
        let (_, text) = HostTerminal::spawn(cmd, 27, 91).finish();
        if !text.lines().any(|l| l.trim() == "27 91") {
            wrong.push(text);
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of 5 runs started with another size: {wrong:?}",
        wrong.len()
    );
}
