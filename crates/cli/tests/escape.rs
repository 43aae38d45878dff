//! Escape attempts: every probe attack under the default `spec` config, and hostile rootfs
//! layouts (symlinks, fifos) that try to make the runtime act on host paths.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::{build_rootfs, Bundle, Io, Oci};
use serde_json::{json, Value};
use tempfile::TempDir;

/// A host directory whose tree must come out of every test unchanged.
struct Canary {
    dir: TempDir,
    digest: std::collections::BTreeMap<String, String>,
}

impl Canary {
    fn new() -> Canary {
        let dir = tempfile::Builder::new()
            .prefix("jaula-canary-")
            .tempdir()
            .unwrap();
        let p = dir.path();
        common::write_file(&p.join("marker"), "host only");
        common::write_file(&p.join("null-target"), "not a device");
        common::write_file(&p.join("sub/file"), "nested");
        std::fs::create_dir(p.join("empty")).unwrap();
        let digest = common::tree_digest(p);
        Canary { dir, digest }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn marker(&self) -> String {
        self.path().join("marker").display().to_string()
    }

    /// The canary path as a relative link from `depth` levels below the root.
    fn relative_from(&self, depth: usize) -> PathBuf {
        let mut p = PathBuf::new();
        for _ in 0..depth + 8 {
            p.push("..");
        }
        p.join(self.path().strip_prefix("/").unwrap())
    }

    #[track_caller]
    fn assert_untouched(&self) {
        assert_eq!(
            common::tree_digest(self.path()),
            self.digest,
            "the host canary tree changed"
        );
        let mounts = common::host_mounts_containing(self.path().to_str().unwrap());
        assert!(mounts.is_empty(), "host mounts on the canary: {mounts:?}");
    }
}

/// A bundle with the runtime's own default config (`spec`), patched only to run `args`
/// without a terminal (tests have none to offer).
fn spec_bundle(oci: &Oci, args: &[&str]) -> Bundle {
    let mut b = Bundle::empty(Value::Null);
    build_rootfs(&b.rootfs());
    oci.run(&["spec", "--bundle", b.path().to_str().unwrap()])
        .ok();
    let text = std::fs::read_to_string(b.path().join("config.json")).unwrap();
    b.config = serde_json::from_str(&text).unwrap();
    b.config["process"]["args"] = json!(args);
    b.config["process"]["terminal"] = json!(false);
    b
}

/// Runs one probe attack and asserts that it was blocked.
#[track_caller]
fn assert_blocked_in(oci: &Oci, b: &Bundle, io: Io) -> Value {
    let c = oci.container("escape");
    let out = c.run_with(b, &[], io);
    let report: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("no attack report ({e}): {out:#?}"));
    assert_eq!(
        report["blocked"], true,
        "attack got through: {}",
        report["detail"]
    );
    assert_eq!(out.code(), 0, "{out:#?}");
    report
}

/// Runs `escape NAME ARGS` under the default spec config, with `patch` applied.
#[track_caller]
fn attack(name: &str, args: &[&str], patch: impl FnOnce(&mut Bundle)) {
    let canary = Canary::new();
    let oci = Oci::new();
    let marker = canary.marker();
    let mut full = vec!["/bin/probe", "escape", name];
    full.extend_from_slice(args);
    full.push(&marker);
    let mut b = spec_bundle(&oci, &full);
    patch(&mut b);
    assert_blocked_in(&oci, &b, Io::default());
    canary.assert_untouched();
}

#[test]
fn chroot_break() {
    attack("chroot", &[], |_| {});
}

#[test]
fn chroot_break_with_cap_sys_chroot_is_still_confined_by_pivot_root() {
    attack("chroot", &[], |b| {
        for set in ["bounding", "effective", "permitted"] {
            b.config["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_CHROOT"));
        }
    });
}

#[test]
fn mknod_block_device() {
    attack("mknod", &[], |_| {});
}

#[test]
fn mknod_with_cap_mknod_is_still_stopped_by_the_device_cgroup() {
    attack("mknod", &[], |b| {
        for set in ["bounding", "effective", "permitted"] {
            b.config["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
        }
    });
}

#[test]
fn mount_tmpfs_bind_and_proc() {
    attack("mount", &[], |_| {});
}

#[test]
fn umount_masked_paths() {
    attack("umount-masks", &[], |_| {});
}

#[test]
fn proc_sys_write() {
    attack("proc-sys-write", &[], |_| {});
}

#[test]
fn sysrq_trigger() {
    attack("sysrq", &[], |_| {});
}

#[test]
fn kcore_read() {
    attack("kcore", &[], |_| {});
}

#[test]
fn keyctl() {
    attack("keyctl", &[], |_| {});
}

#[test]
fn unshare_user_namespace() {
    attack("unshare-user", &[], |_| {});
}

#[test]
fn bpf_map_and_program() {
    attack("bpf", &[], |_| {});
}

#[test]
fn perf_event_open() {
    attack("perf", &[], |_| {});
}

#[test]
fn open_by_handle_at_shocker() {
    attack("open-by-handle", &[], |_| {});
}

#[test]
fn int80_compat_syscalls() {
    attack("int80", &[], |_| {});
}

#[test]
fn ptrace_and_runtime_visibility() {
    attack("ptrace", &[], |_| {});
}

#[test]
fn proc_exe_overwrite() {
    attack("proc-exe", &[], |_| {});
}

#[test]
fn af_alg_socket() {
    attack("af-alg", &[], |_| {});
}

#[test]
fn interface_flags() {
    attack("ifflags", &[], |_| {});
}

#[test]
fn cgroup_v1_mount_and_release_agent() {
    attack("cgroup-v1-mount", &[], |_| {});
}

#[test]
fn tiocsti_injection() {
    attack("tiocsti", &[], |_| {});
}

#[test]
fn no_descriptor_leaks_into_the_container() {
    attack("fd-leak", &[], |_| {});
}

/// Descriptors the caller gives the runtime (a host directory among them) must not reach
/// the container unless `--preserve-fds` asks for them.
#[test]
fn descriptors_of_the_caller_do_not_leak() {
    let canary = Canary::new();
    let oci = Oci::new();
    let marker = canary.marker();
    let b = spec_bundle(&oci, &["/bin/probe", "escape", "fd-leak", &marker]);
    let file = oci.scratch_file("leak");
    std::fs::write(&file, "").unwrap();
    let io = Io {
        extra_fds: vec![canary.path().to_path_buf(), file],
        ..Default::default()
    };
    assert_blocked_in(&oci, &b, io);
    canary.assert_untouched();
}

/// The control: with the protections taken away the same probe reports a breach, so the
/// "blocked" verdicts above are not an artefact of the probe. Everything the attack does
/// stays in the container's private mount namespace.
#[test]
fn control_a_privileged_container_lets_the_mount_attack_through() {
    let oci = Oci::new();
    let mut b = spec_bundle(&oci, &["/bin/probe", "escape", "mount"]);
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set] = json!(["CAP_SYS_ADMIN"]);
    }
    b.config["linux"].as_object_mut().unwrap().remove("seccomp");
    b.config["root"]["readonly"] = json!(false);
    let out = oci.container("control").run(&b);
    let report: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("no attack report ({e}): {out:#?}"));
    assert_eq!(report["blocked"], false, "{report}");
    assert_eq!(out.code(), 1);
}

#[test]
fn every_probe_attack_has_a_test() {
    let out = std::process::Command::new(common::PROBE)
        .args(["escape", "--list"])
        .output()
        .unwrap();
    let listed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let source = include_str!("escape.rs");
    for name in listed.iter().filter(|n| *n != "write-host") {
        assert!(
            source.contains(&format!("attack(\"{name}\"")),
            "no test runs attack {name}"
        );
    }
    assert!(listed.len() >= 20, "{listed:?}");
}

// ---------------------------------------------------------------------------------------------
// Hostile rootfs layouts.
// ---------------------------------------------------------------------------------------------

/// How a rootfs entry is replaced.
enum Trap {
    /// An absolute symlink to `canary/<rest>`.
    AbsLink(&'static str),
    /// A relative symlink climbing to `canary/<rest>`.
    RelLink(&'static str),
    /// A named pipe: opening it would block forever.
    Fifo,
}

/// Which config the hostile rootfs runs with.
enum Layout {
    /// The default config (a tmpfs on /dev).
    Default,
    /// No /dev tmpfs: the runtime must create devices and /dev mounts in the rootfs itself.
    RootfsDev,
}

struct Hostile {
    /// The rootfs path replaced by the trap, e.g. "dev/null".
    entry: &'static str,
    trap: Trap,
    layout: Layout,
    /// An extra mount whose target (or its parent) is the trap.
    mount: Option<Value>,
    /// Run with a terminal (through a console socket), so that /dev/console is set up.
    terminal: bool,
}

fn without_dev_tmpfs(b: &mut Bundle) {
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["destination"] != "/dev");
}

fn set_trap(rootfs: &Path, canary: &Canary, entry: &str, trap: &Trap) {
    let path = rootfs.join(entry);
    if path.is_dir() {
        std::fs::remove_dir_all(&path).unwrap();
    } else if path.symlink_metadata().is_ok() {
        std::fs::remove_file(&path).unwrap();
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let depth = entry.matches('/').count();
    match trap {
        Trap::AbsLink(rest) => symlink(canary.path().join(rest), &path).unwrap(),
        Trap::RelLink(rest) => symlink(canary.relative_from(depth).join(rest), &path).unwrap(),
        Trap::Fifo => {
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap()
        }
    }
}

/// Creates the hostile container: it must fail cleanly or run confined, and the host
/// canary and mount table must be untouched either way.
#[track_caller]
fn hostile(h: Hostile) {
    let canary = Canary::new();
    let oci = Oci::new();
    let target = format!("/{}", h.entry);
    let canary_path = canary.path().display().to_string();
    let mut b = Bundle::probe(&[
        "escape",
        "write-host",
        &target,
        &canary_path,
        &canary.marker(),
    ]);
    if let Layout::RootfsDev = h.layout {
        without_dev_tmpfs(&mut b);
    }
    if let Some(m) = &h.mount {
        b.push_mount(m.clone());
    }
    set_trap(&b.rootfs(), &canary, h.entry, &h.trap);
    let c = oci.container("hostile");
    let out = if h.terminal {
        run_with_terminal(&oci, &c, &mut b)
    } else {
        c.run(&b)
    };
    let bundle = b.path().display().to_string();
    canary.assert_untouched();
    assert!(
        common::host_mounts_containing(&bundle).is_empty(),
        "host mounts left under the bundle"
    );
    if out.success() || !out.stdout.trim().is_empty() {
        // It ran: the probe's writes, if any, stayed inside.
        // The report is the last line: with a terminal, what the probe wrote to
        // /dev/console (the pty) comes first.
        let last = out.stdout.trim().lines().last().unwrap_or_default();
        let report: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {out:#?}"));
        assert_eq!(report["attack"], "write-host");
    } else {
        assert!(
            !out.stderr.trim().is_empty(),
            "failed without a message: {out:#?}"
        );
    }
    let id = c.id.clone();
    drop(c);
    assert!(oci.root_entries().is_empty(), "state left behind");
    assert!(
        common::cgroup_dirs_named(&id).is_empty(),
        "cgroup left behind"
    );
}

fn trap(entry: &'static str, trap: Trap, layout: Layout) -> Hostile {
    Hostile {
        entry,
        trap,
        layout,
        mount: None,
        terminal: false,
    }
}

/// create + start with a console socket; the output is what the pty showed. A failed
/// create or start is returned as is.
fn run_with_terminal(oci: &Oci, c: &common::Container<'_>, b: &mut Bundle) -> common::Out {
    b.config["process"]["terminal"] = json!(true);
    let rx = common::ConsoleReceiver::new(oci);
    let socket = rx.socket.to_str().unwrap().to_owned();
    let created = c.create_with(b, &["--console-socket", &socket], Io::default());
    if !created.success() {
        return created;
    }
    let started = c.start();
    if !started.success() {
        return started;
    }
    c.wait_status("stopped");
    let mut out = created;
    out.stdout = rx.finish().replace("\r\n", "\n");
    out
}

#[test]
fn hostile_proc_absolute_symlink() {
    hostile(trap("proc", Trap::AbsLink(""), Layout::Default));
}

#[test]
fn hostile_proc_relative_symlink() {
    hostile(trap("proc", Trap::RelLink(""), Layout::Default));
}

#[test]
fn hostile_proc_dangling_symlink() {
    hostile(trap(
        "proc",
        Trap::AbsLink("does-not-exist"),
        Layout::Default,
    ));
}

#[test]
fn hostile_proc_fifo() {
    hostile(trap("proc", Trap::Fifo, Layout::Default));
}

#[test]
fn hostile_sys_absolute_symlink() {
    hostile(trap("sys", Trap::AbsLink(""), Layout::Default));
}

#[test]
fn hostile_dev_absolute_symlink() {
    hostile(trap("dev", Trap::AbsLink(""), Layout::Default));
}

#[test]
fn hostile_dev_relative_symlink() {
    hostile(trap("dev", Trap::RelLink(""), Layout::Default));
}

#[test]
fn hostile_dev_null_symlink_to_a_host_file() {
    hostile(trap(
        "dev/null",
        Trap::AbsLink("null-target"),
        Layout::RootfsDev,
    ));
}

#[test]
fn hostile_dev_null_relative_symlink() {
    hostile(trap(
        "dev/null",
        Trap::RelLink("null-target"),
        Layout::RootfsDev,
    ));
}

#[test]
fn hostile_dev_null_fifo() {
    hostile(trap("dev/null", Trap::Fifo, Layout::RootfsDev));
}

#[test]
fn hostile_dev_pts_symlink() {
    hostile(trap("dev/pts", Trap::AbsLink("empty"), Layout::RootfsDev));
}

#[test]
fn hostile_dev_console_dangling_symlink_with_a_terminal() {
    let mut h = trap(
        "dev/console",
        Trap::AbsLink("new-console"),
        Layout::RootfsDev,
    );
    h.terminal = true;
    hostile(h);
}

#[test]
fn hostile_dev_under_dev_tmpfs_with_a_terminal() {
    let mut h = trap("dev", Trap::AbsLink(""), Layout::Default);
    h.terminal = true;
    hostile(h);
}

#[test]
fn hostile_dev_null_dangling_symlink() {
    hostile(trap(
        "dev/null",
        Trap::AbsLink("new-null"),
        Layout::RootfsDev,
    ));
}

#[test]
fn hostile_dev_ptmx_dangling_symlink() {
    hostile(trap(
        "dev/ptmx",
        Trap::AbsLink("new-ptmx"),
        Layout::RootfsDev,
    ));
}

#[test]
fn hostile_dev_fd_dangling_symlink() {
    hostile(trap("dev/fd", Trap::AbsLink("new-fd"), Layout::RootfsDev));
}

#[test]
fn hostile_dev_console_symlink() {
    hostile(trap(
        "dev/console",
        Trap::AbsLink("null-target"),
        Layout::RootfsDev,
    ));
}

#[test]
fn hostile_dev_shm_symlink() {
    hostile(trap("dev/shm", Trap::AbsLink("empty"), Layout::RootfsDev));
}

#[test]
fn hostile_dev_mqueue_dangling_symlink() {
    hostile(trap(
        "dev/mqueue",
        Trap::AbsLink("gone/deeper"),
        Layout::RootfsDev,
    ));
}

fn bind_source() -> TempDir {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("payload"), "bind source").unwrap();
    src
}

#[test]
fn hostile_bind_mount_target_symlink() {
    let src = bind_source();
    hostile(Hostile {
        entry: "data",
        trap: Trap::AbsLink("empty"),
        layout: Layout::Default,
        mount: Some(
            json!({"destination": "/data", "type": "bind", "source": src.path(), "options": ["rbind", "rw"]}),
        ),
        terminal: false,
    });
}

#[test]
fn hostile_parent_of_a_mount_target_symlink() {
    hostile(Hostile {
        entry: "mnt",
        trap: Trap::AbsLink(""),
        layout: Layout::Default,
        mount: Some(
            json!({"destination": "/mnt/inner", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
        ),
        terminal: false,
    });
}

#[test]
fn hostile_parent_of_a_bind_target_relative_symlink() {
    let src = bind_source();
    hostile(Hostile {
        entry: "mnt",
        trap: Trap::RelLink("sub"),
        layout: Layout::Default,
        mount: Some(
            json!({"destination": "/mnt/file", "type": "bind", "source": src.path().join("payload"), "options": ["bind"]}),
        ),
        terminal: false,
    });
}

#[test]
fn hostile_mount_target_fifo() {
    hostile(Hostile {
        entry: "mnt",
        trap: Trap::Fifo,
        layout: Layout::Default,
        mount: Some(
            json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
        ),
        terminal: false,
    });
}
