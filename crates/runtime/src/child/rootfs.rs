//! The container's filesystem: mounts, devices, `pivot_root`, masked and read-only paths.
//!
//! The rootfs is untrusted: every path inside it is opened relative to the root fd
//! with `RESOLVE_IN_ROOT`, and mounts target the resulting `/proc/self/fd/N`, so a
//! symlink (absolute, relative or dangling) can never send a mount or a write
//! outside the rootfs.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::statvfs::FsFlags;

use jaula_sys::fs::{fd_path, open_in_root};

use super::{fail, Step};
use crate::plan::{DevicePlan, MountKind, MountPlan, Plan};
use jaula_cgroups::HierarchyDir;

/// Mounts nothing ever propagates from the container to the host, and the rootfs
/// becomes a mount point (pivot_root needs one). Returns the root fd.
pub fn prepare(plan: &Plan, chan: &crate::sync::Channel) -> Step<OwnedFd> {
    mount_flags(None, Path::new("/"), None, plan.root_propagation, None)
        .map_err(fail("make / a slave mount"))?;
    if plan.root_by_runtime() {
        return root_from_runtime(chan);
    }
    mount_flags(
        Some(&plan.rootfs),
        &plan.rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(fail(format!("bind {}", plan.rootfs.display())))?;
    let root = jaula_sys::fs::open(&plan.rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY, 0)
        .map_err(fail(format!("open rootfs {}", plan.rootfs.display())))?;
    Ok(root)
}

/// Asks the runtime to mount the rootfs here (see `Plan::root_by_runtime`) and
/// takes the fd it sends back: the root, reached without walking host paths.
fn root_from_runtime(chan: &crate::sync::Channel) -> Step<OwnedFd> {
    use crate::sync::{FromChild, ToChild};
    chan.send_to_parent(&FromChild::NeedRoot)
        .map_err(fail("ask for the rootfs"))?;
    match chan
        .recv_in_child_with_fd()
        .map_err(fail("wait for the rootfs"))?
    {
        Some((ToChild::Root, Some(fd))) => Ok(fd),
        other => Err(format!("rootfs not mounted: {other:?}")),
    }
}

fn mount_flags(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), Errno> {
    nix::mount::mount(src, target, fstype, flags, data)
}

/// Performs the spec's mounts in order, then the default and configured devices.
pub fn mount_all(plan: &Plan, root: BorrowedFd<'_>, cgroups: &[HierarchyDir]) -> Step<()> {
    for m in &plan.mounts {
        mount_one(plan, root, m, cgroups)
            .map_err(|e| format!("mount {} on {}: {e}", m.source.display(), m.dest.display()))?;
    }
    let dev_from_host = plan
        .mounts
        .iter()
        .any(|m| m.dest == Path::new("/dev") && matches!(m.kind, MountKind::Bind { .. }));
    let in_userns = plan.ns.has(nix::sched::CloneFlags::CLONE_NEWUSER);
    if !dev_from_host {
        for d in default_devices() {
            make_device(root, &d, in_userns)
                .map_err(|e| format!("device {}: {e}", d.path.display()))?;
        }
        dev_links(root).map_err(fail("/dev links"))?;
    }
    for d in &plan.devices {
        make_device(root, d, in_userns).map_err(|e| format!("device {}: {e}", d.path.display()))?;
    }
    Ok(())
}

/// Opens (creating if needed) the mount target `dest` inside the root. Missing
/// components are created as directories, the last one as a file when the
/// source is not a directory. Returns an O_PATH fd on the resolved target.
pub fn ensure_target(root: BorrowedFd<'_>, dest: &Path, as_dir: bool) -> Result<OwnedFd, Errno> {
    ensure_target_at_depth(root, dest, as_dir, 0)
}

/// Symlinks followed while creating one target, like the kernel's own limit.
const MAX_LINKS: u32 = 40;

fn ensure_target_at_depth(
    root: BorrowedFd<'_>,
    dest: &Path,
    as_dir: bool,
    depth: u32,
) -> Result<OwnedFd, Errno> {
    if depth > MAX_LINKS {
        return Err(Errno::ELOOP);
    }
    match open_in_root(root, dest, OFlag::O_PATH, 0) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let parent = dest.parent().unwrap_or(Path::new("/"));
    let name = dest.file_name().ok_or(Errno::EINVAL)?;
    let pfd = ensure_target_at_depth(root, parent, true, depth)?;
    let made = if as_dir {
        nix::sys::stat::mkdirat(Some(pfd.as_raw_fd()), name, Mode::from_bits_truncate(0o755))
    } else {
        jaula_sys::fs::open_beneath(
            pfd.as_fd(),
            Path::new(name),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY,
            0o644,
        )
        .map(drop)
    };
    match made {
        Ok(()) => {}
        // A dangling symlink sits there: create what it points to, inside the root
        // (an absolute link is read relative to the rootfs, never the host).
        Err(Errno::EEXIST) => {
            if let Ok(link) = nix::fcntl::readlinkat(Some(pfd.as_raw_fd()), name) {
                let next = parent.join(Path::new(&link));
                return ensure_target_at_depth(root, &lexical_clean(&next), as_dir, depth + 1);
            }
        }
        Err(e) => return Err(e),
    }
    open_in_root(root, dest, OFlag::O_PATH, 0)
}

/// Resolves `.` and `..` textually, never above `/` (as RESOLVE_IN_ROOT does).
fn lexical_clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

fn source_is_dir(m: &MountPlan) -> bool {
    match m.kind {
        MountKind::Bind { .. } => std::fs::metadata(&m.source)
            .map(|md| md.is_dir())
            .unwrap_or(true),
        _ => true,
    }
}

fn mount_one(
    plan: &Plan,
    root: BorrowedFd<'_>,
    m: &MountPlan,
    cgroups: &[HierarchyDir],
) -> Result<(), Errno> {
    let target = ensure_target(root, &m.dest, source_is_dir(m))?;
    let tpath = fd_path(target.as_fd());
    match &m.kind {
        MountKind::Bind { recursive } => {
            let mut f = MsFlags::MS_BIND;
            if *recursive {
                f |= MsFlags::MS_REC;
            }
            mount_flags(Some(&m.source), &tpath, None, f, None)?;
            if m.needs_remount() {
                let top = open_in_root(root, &m.dest, OFlag::O_PATH, 0)?;
                remount_bind(top.as_fd(), m.flags, m.cleared)?;
            }
        }
        MountKind::Proc => {
            mount_flags(
                Some(Path::new("proc")),
                &tpath,
                Some("proc"),
                m.flags,
                data(m),
            )?;
            expect_fs(root, &m.dest, jaula_sys::fs::PROC_SUPER_MAGIC)?;
        }
        MountKind::Sysfs => {
            match mount_flags(
                Some(Path::new("sysfs")),
                &tpath,
                Some("sysfs"),
                m.flags,
                data(m),
            ) {
                // Without a private netns, a user namespace may not mount sysfs: show the host's, read-only.
                Err(Errno::EPERM) => {
                    mount_flags(
                        Some(Path::new("/sys")),
                        &tpath,
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None,
                    )?;
                    let top = open_in_root(root, &m.dest, OFlag::O_PATH, 0)?;
                    remount_bind(
                        top.as_fd(),
                        m.flags
                            | MsFlags::MS_RDONLY
                            | MsFlags::MS_NOSUID
                            | MsFlags::MS_NODEV
                            | MsFlags::MS_NOEXEC,
                        MsFlags::empty(),
                    )?;
                }
                r => r?,
            }
            expect_fs(root, &m.dest, jaula_sys::fs::SYSFS_MAGIC)?;
        }
        MountKind::Cgroup => super::cgroupfs::mount(
            root,
            m,
            &tpath,
            cgroups,
            plan.ns.has(nix::sched::CloneFlags::CLONE_NEWCGROUP),
        )?,
        MountKind::Fs(t) => mount_flags(Some(&m.source), &tpath, Some(t), m.flags, data(m))?,
    }
    for p in &m.propagation {
        let top = open_in_root(root, &m.dest, OFlag::O_PATH, 0)?;
        mount_flags(None, &fd_path(top.as_fd()), None, *p, None)?;
    }
    Ok(())
}

fn data(m: &MountPlan) -> Option<&str> {
    (!m.data.is_empty()).then_some(m.data.as_str())
}

/// Re-opens `dest` and checks it is the filesystem we just mounted there.
fn expect_fs(root: BorrowedFd<'_>, dest: &Path, magic: i64) -> Result<(), Errno> {
    let fd = open_in_root(root, dest, OFlag::O_PATH | OFlag::O_DIRECTORY, 0)?;
    if jaula_sys::fs::fs_magic(fd.as_fd())? != magic {
        return Err(Errno::EXDEV);
    }
    Ok(())
}

/// Applies flags to a bind mount. Flags the kernel locked on the source (nosuid,
/// nodev, noexec when it came from a more privileged namespace) are kept, or the
/// remount would fail with EPERM.
pub fn remount_bind(target: BorrowedFd<'_>, flags: MsFlags, cleared: MsFlags) -> Result<(), Errno> {
    let st = nix::sys::statvfs::fstatvfs(target)?;
    let mut keep = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if st.flags().contains(fs) && !cleared.contains(ms) {
            keep |= ms;
        }
    }
    let f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | keep;
    match mount_flags(None, &fd_path(target), None, f, None) {
        // Some flag was locked after all: retry keeping every flag the mount has.
        Err(Errno::EPERM) if !cleared.is_empty() => mount_flags(
            None,
            &fd_path(target),
            None,
            f | (keep_all(&st) - MsFlags::MS_RDONLY),
            None,
        ),
        r => r,
    }
}

fn keep_all(st: &nix::sys::statvfs::Statvfs) -> MsFlags {
    let mut m = MsFlags::empty();
    if st.flags().contains(FsFlags::ST_NOSUID) {
        m |= MsFlags::MS_NOSUID;
    }
    if st.flags().contains(FsFlags::ST_NODEV) {
        m |= MsFlags::MS_NODEV;
    }
    if st.flags().contains(FsFlags::ST_NOEXEC) {
        m |= MsFlags::MS_NOEXEC;
    }
    m
}

fn default_devices() -> Vec<DevicePlan> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(n, major, minor)| DevicePlan {
        path: PathBuf::from("/dev").join(n),
        kind: libc::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// Creates a device node; in a user namespace (no mknod) binds the host's node.
fn make_device(root: BorrowedFd<'_>, d: &DevicePlan, in_userns: bool) -> Result<(), Errno> {
    let parent = ensure_target(root, d.path.parent().unwrap_or(Path::new("/dev")), true)?;
    let dir = jaula_sys::fs::open_beneath(
        parent.as_fd(),
        Path::new("."),
        OFlag::O_DIRECTORY | OFlag::O_RDONLY,
        0,
    )?;
    let name = d.path.file_name().ok_or(Errno::EINVAL)?;
    // Whatever the rootfs put there (a file, a symlink to the host) goes first.
    match nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    if in_userns {
        let host = Path::new("/dev").join(name);
        jaula_sys::fs::open_beneath(
            dir.as_fd(),
            Path::new(name),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY,
            0o644,
        )?;
        let target = jaula_sys::fs::open_beneath(dir.as_fd(), Path::new(name), OFlag::O_PATH, 0)?;
        return mount_flags(
            Some(&host),
            &fd_path(target.as_fd()),
            None,
            MsFlags::MS_BIND,
            None,
        );
    }
    let dev = nix::sys::stat::makedev(d.major, d.minor);
    nix::sys::stat::mknodat(
        Some(dir.as_raw_fd()),
        name,
        SFlag::from_bits_truncate(d.kind),
        Mode::from_bits_truncate(d.mode),
        dev,
    )?;
    // mknod honours the umask; set the exact mode and owner asked for.
    nix::sys::stat::fchmodat(
        Some(dir.as_raw_fd()),
        name,
        Mode::from_bits_truncate(d.mode),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|e| {
        if e == Errno::EOPNOTSUPP {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(nix::unistd::Uid::from_raw(d.uid)),
        Some(nix::unistd::Gid::from_raw(d.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// /dev/fd, /dev/std{in,out,err} and /dev/ptmx, as every container expects.
fn dev_links(root: BorrowedFd<'_>) -> Result<(), Errno> {
    let dev = ensure_target(root, Path::new("/dev"), true)?;
    let dir = jaula_sys::fs::open_beneath(
        dev.as_fd(),
        Path::new("."),
        OFlag::O_DIRECTORY | OFlag::O_RDONLY,
        0,
    )?;
    let has_pts = open_in_root(root, Path::new("/dev/pts/ptmx"), OFlag::O_PATH, 0).is_ok();
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if has_pts {
        let _ = nix::unistd::unlinkat(
            Some(dir.as_raw_fd()),
            "ptmx",
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, Some(dir.as_raw_fd()), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Swaps the root: the rootfs becomes `/` and the old root is detached, so no
/// path, `..` walk or chroot trick leads back to the host's tree.
pub fn pivot(root: OwnedFd) -> Step<()> {
    nix::unistd::fchdir(root.as_raw_fd()).map_err(fail("chdir to rootfs"))?;
    nix::unistd::pivot_root(".", ".").map_err(fail("pivot_root"))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).map_err(fail("detach old root"))?;
    nix::unistd::chdir("/").map_err(fail("chdir /"))?;
    Ok(())
}

/// After pivot: rootfs propagation, masks, read-only paths, read-only root.
pub fn finish(plan: &Plan) -> Step<()> {
    if let Some(p) = plan.extra_propagation {
        mount_flags(None, Path::new("/"), None, p, None).map_err(fail("set rootfsPropagation"))?;
    }
    let root = jaula_sys::fs::open(Path::new("/"), OFlag::O_PATH | OFlag::O_DIRECTORY, 0)
        .map_err(fail("open /"))?;
    for p in &plan.masked {
        mask(root.as_fd(), p).map_err(|e| format!("mask {}: {e}", p.display()))?;
    }
    for p in &plan.readonly {
        readonly(root.as_fd(), p).map_err(|e| format!("make {} read-only: {e}", p.display()))?;
    }
    if plan.readonly_root {
        remount_bind(root.as_fd(), MsFlags::MS_RDONLY, MsFlags::empty())
            .map_err(fail("make / read-only"))?;
    }
    Ok(())
}

/// Hides `path`: a read-only empty tmpfs over a directory, /dev/null over a file.
fn mask(root: BorrowedFd<'_>, path: &Path) -> Result<(), Errno> {
    let target = match open_in_root(root, path, OFlag::O_PATH | OFlag::O_NOFOLLOW, 0) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let st = nix::sys::stat::fstat(target.as_raw_fd())?;
    let tpath = fd_path(target.as_fd());
    match SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) {
        SFlag::S_IFDIR => mount_flags(
            Some(Path::new("tmpfs")),
            &tpath,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=0,mode=555"),
        ),
        SFlag::S_IFLNK => Err(Errno::ELOOP),
        _ => {
            let null = dev_null(root)?;
            mount_flags(
                Some(&fd_path(null.as_fd())),
                &tpath,
                None,
                MsFlags::MS_BIND,
                None,
            )
        }
    }
}

/// Opens the container's /dev/null, refusing anything but the real char 1:3: a
/// rootfs that planted a symlink or a regular file there must not be bound over
/// a masked path.
fn dev_null(root: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let fd = open_in_root(
        root,
        Path::new("/dev/null"),
        OFlag::O_PATH | OFlag::O_NOFOLLOW,
        0,
    )?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    let is_chr = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
    if !is_chr || nix::sys::stat::major(st.st_rdev) != 1 || nix::sys::stat::minor(st.st_rdev) != 3 {
        return Err(Errno::ENODEV);
    }
    Ok(fd)
}

fn readonly(root: BorrowedFd<'_>, path: &Path) -> Result<(), Errno> {
    let target = match open_in_root(root, path, OFlag::O_PATH | OFlag::O_NOFOLLOW, 0) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let tpath = fd_path(target.as_fd());
    mount_flags(
        Some(&tpath),
        &tpath,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    let top = open_in_root(root, path, OFlag::O_PATH | OFlag::O_NOFOLLOW, 0)?;
    remount_bind(
        top.as_fd(),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        MsFlags::empty(),
    )
}

/// Writes each sysctl through the container's own /proc, after checking that
/// /proc/sys really is procfs (a rootfs could have planted a directory there).
pub fn sysctls(plan: &Plan) -> Step<()> {
    if plan.sysctls.is_empty() {
        return Ok(());
    }
    let root = jaula_sys::fs::open(Path::new("/"), OFlag::O_PATH | OFlag::O_DIRECTORY, 0)
        .map_err(fail("open /"))?;
    for (rel, value) in &plan.sysctls {
        let path = Path::new("/proc/sys").join(rel);
        let fd = open_in_root(root.as_fd(), &path, OFlag::O_WRONLY | OFlag::O_NOFOLLOW, 0)
            .map_err(fail(format!("open {}", path.display())))?;
        if jaula_sys::fs::fs_magic(fd.as_fd()) != Ok(jaula_sys::fs::PROC_SUPER_MAGIC) {
            return Err(format!("{} is not on procfs", path.display()));
        }
        nix::unistd::write(&fd, value.as_bytes())
            .map_err(fail(format!("write {}", path.display())))?;
    }
    Ok(())
}
