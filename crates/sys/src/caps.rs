//! Capability sets: capset(2), the bounding set and ambient capabilities.

use nix::errno::Errno;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Sets the effective, permitted and inheritable sets of the calling thread.
pub fn set(effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let lo = |m: u64| m as u32;
    let hi = |m: u64| (m >> 32) as u32;
    let data = [
        CapData {
            effective: lo(effective),
            permitted: lo(permitted),
            inheritable: lo(inheritable),
        },
        CapData {
            effective: hi(effective),
            permitted: hi(permitted),
            inheritable: hi(inheritable),
        },
    ];
    // SAFETY: version 3 headers take an array of two CapData structs, which we pass.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// Returns (effective, permitted, inheritable) of the calling thread.
pub fn get() -> Result<(u64, u64, u64), Errno> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: version 3 capget writes two CapData structs into the array we pass.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    Errno::result(ret)?;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

fn prctl(op: i32, a: u64, b: u64) -> Result<i32, Errno> {
    // SAFETY: the capability prctls used here take integer arguments only.
    let ret = unsafe { libc::prctl(op, a, b, 0u64, 0u64) };
    Errno::result(ret)
}

/// The highest capability number the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Drops from the bounding set every capability not in `keep`.
pub fn limit_bounding(keep: u64) -> Result<(), Errno> {
    for cap in 0..=last_cap() {
        if keep & (1 << cap) == 0 {
            match prctl(libc::PR_CAPBSET_DROP, u64::from(cap), 0) {
                Ok(_) | Err(Errno::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Raises the ambient capabilities in `mask` (they must be permitted and inheritable).
pub fn raise_ambient(mask: u64) -> Result<(), Errno> {
    for cap in 0..=last_cap() {
        if mask & (1 << cap) != 0 {
            prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as u64,
                u64::from(cap),
            )?;
        }
    }
    Ok(())
}

/// Clears every ambient capability.
pub fn clear_ambient() -> Result<(), Errno> {
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as u64,
        0,
    )
    .map(drop)
}
