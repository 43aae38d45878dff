//! The bpf(2) syscall: loading programs and attaching them to cgroups.
//!
//! jaula assembles its eBPF programs by hand (no C toolchain, no loader library), so this
//! module offers two things: an [`Insn`] type with constructors for the instructions the
//! programs need, and thin safe wrappers over the `bpf(2)` commands used to load, attach,
//! query and detach cgroup programs. Attachment is the legacy `BPF_PROG_ATTACH` kind on
//! purpose: it keeps the program attached after the attaching process exits, which a
//! runtime without a daemon needs.

use std::ffi::CStr;
use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// Errors of the bpf(2) wrappers.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// The kernel refused the program. `log` holds the verifier's explanation.
    #[error("kernel rejected {prog_type:?} program ({insn_count} insns); verifier log:\n{log}")]
    Load {
        prog_type: ProgType,
        insn_count: usize,
        log: String,
        #[source]
        source: Errno,
    },
    /// The program has more instructions than bpf(2) can describe.
    #[error("program of {0} instructions is too long")]
    TooLong(usize),
    #[error("cannot attach program to fd {target} as {attach_type:?}")]
    Attach {
        target: RawFd,
        attach_type: AttachType,
        #[source]
        source: Errno,
    },
    #[error("cannot detach program from fd {target} as {attach_type:?}")]
    Detach {
        target: RawFd,
        attach_type: AttachType,
        #[source]
        source: Errno,
    },
    #[error("cannot query {attach_type:?} programs of fd {target}")]
    Query {
        target: RawFd,
        attach_type: AttachType,
        #[source]
        source: Errno,
    },
    #[error("cannot open bpf program id {id}")]
    GetFdById {
        id: u32,
        #[source]
        source: Errno,
    },
    #[error("cannot read info of bpf program fd {fd}")]
    Info {
        fd: RawFd,
        #[source]
        source: Errno,
    },
}

/// Program types (`enum bpf_prog_type`) jaula loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ProgType {
    CgroupSkb = 8,
    CgroupSock = 9,
    CgroupDevice = 15,
    CgroupSockAddr = 18,
    CgroupSysctl = 23,
    CgroupSockopt = 25,
}

/// Attach points (`enum bpf_attach_type`) for cgroup programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum AttachType {
    CgroupInetIngress = 0,
    CgroupInetEgress = 1,
    CgroupInetSockCreate = 2,
    CgroupDevice = 6,
    CgroupInet4Bind = 8,
    CgroupInet6Bind = 9,
    CgroupInet4Connect = 10,
    CgroupInet6Connect = 11,
    CgroupInet4PostBind = 12,
    CgroupInet6PostBind = 13,
    CgroupUdp4Sendmsg = 14,
    CgroupUdp6Sendmsg = 15,
    CgroupSysctl = 18,
    CgroupUdp4Recvmsg = 19,
    CgroupUdp6Recvmsg = 20,
    CgroupInet4Getpeername = 29,
    CgroupInet6Getpeername = 30,
    CgroupInet4Getsockname = 31,
    CgroupInet6Getsockname = 32,
}

/// Flags of `BPF_PROG_ATTACH` (`BPF_F_ALLOW_*`). Combine with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttachFlags(u32);

impl AttachFlags {
    /// Exclusive attachment: one program per cgroup and attach type.
    pub const NONE: AttachFlags = AttachFlags(0);
    /// A program in a sub-cgroup may replace this one.
    pub const ALLOW_OVERRIDE: AttachFlags = AttachFlags(1 << 0);
    /// Several programs may be attached; all of them run, in attach order.
    pub const ALLOW_MULTI: AttachFlags = AttachFlags(1 << 1);

    /// The raw flag bits.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl std::ops::BitOr for AttachFlags {
    type Output = AttachFlags;
    fn bitor(self, rhs: AttachFlags) -> AttachFlags {
        AttachFlags(self.0 | rhs.0)
    }
}

/// An eBPF register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reg {
    /// Return value, and the result of helper calls.
    R0 = 0,
    /// First argument; the context pointer at program entry.
    R1,
    R2,
    R3,
    R4,
    R5,
    /// R6..R9 survive helper calls.
    R6,
    R7,
    R8,
    R9,
    /// Read-only frame pointer; the stack grows down from it (512 bytes).
    R10,
}

/// Width of a memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    B = 0x10,
    H = 0x08,
    W = 0x00,
    DW = 0x18,
}

/// Arithmetic operations (`BPF_ALU64` class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AluOp {
    Add = 0x00,
    Sub = 0x10,
    Mul = 0x20,
    Div = 0x30,
    Or = 0x40,
    And = 0x50,
    Lsh = 0x60,
    Rsh = 0x70,
    Mod = 0x90,
    Xor = 0xa0,
    Mov = 0xb0,
    Arsh = 0xc0,
}

/// Conditional jumps (`BPF_JMP` class, 64-bit compares).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JmpOp {
    Eq = 0x10,
    Gt = 0x20,
    Ge = 0x30,
    Set = 0x40,
    Ne = 0x50,
    Sgt = 0x60,
    Sge = 0x70,
    Lt = 0xa0,
    Le = 0xb0,
    Slt = 0xc0,
    Sle = 0xd0,
}

/// Kernel helper functions (`enum bpf_func_id`) jaula's programs call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Helper {
    GetCurrentUidGid = 15,
    /// `bpf_bind(ctx, addr, addr_len)`: bind the socket; allowed in connect4/6 programs.
    Bind = 64,
}

const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06;
const CLASS_ALU64: u8 = 0x07;
const MODE_IMM: u8 = 0x00;
const MODE_MEM: u8 = 0x60;
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;
const OP_JA: u8 = 0x00;
const OP_CALL: u8 = 0x80;
const OP_EXIT: u8 = 0x90;

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    /// Opcode: class | size/op | mode/source.
    pub code: u8,
    /// Destination register in the low nibble, source register in the high nibble.
    pub regs: u8,
    /// Signed offset: memory displacement or jump distance (in instructions).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl fmt::Debug for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Insn{{code:{:#04x} dst:r{} src:r{} off:{} imm:{}}}",
            self.code,
            self.dst(),
            self.src(),
            self.off,
            self.imm
        )
    }
}

impl Insn {
    /// An instruction from its raw fields.
    pub const fn raw(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (dst as u8) | ((src as u8) << 4),
            off,
            imm,
        }
    }

    /// Destination register number.
    pub fn dst(&self) -> u8 {
        self.regs & 0x0f
    }

    /// Source register number.
    pub fn src(&self) -> u8 {
        self.regs >> 4
    }

    /// `dst = imm` (sign-extended to 64 bits).
    pub const fn mov_imm(dst: Reg, imm: i32) -> Insn {
        Insn::alu_imm(AluOp::Mov, dst, imm)
    }

    /// `dst = src`.
    pub const fn mov(dst: Reg, src: Reg) -> Insn {
        Insn::alu(AluOp::Mov, dst, src)
    }

    /// `dst = dst OP imm`, 64-bit.
    pub const fn alu_imm(op: AluOp, dst: Reg, imm: i32) -> Insn {
        Insn::raw(CLASS_ALU64 | op as u8 | SRC_K, dst, Reg::R0, 0, imm)
    }

    /// `dst = dst OP src`, 64-bit.
    pub const fn alu(op: AluOp, dst: Reg, src: Reg) -> Insn {
        Insn::raw(CLASS_ALU64 | op as u8 | SRC_X, dst, src, 0, 0)
    }

    /// `dst = *(size *)(src + off)`.
    pub const fn ldx(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::raw(CLASS_LDX | size as u8 | MODE_MEM, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = src`.
    pub const fn stx(size: Size, dst: Reg, off: i16, src: Reg) -> Insn {
        Insn::raw(CLASS_STX | size as u8 | MODE_MEM, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = imm`.
    pub const fn st(size: Size, dst: Reg, off: i16, imm: i32) -> Insn {
        Insn::raw(CLASS_ST | size as u8 | MODE_MEM, dst, Reg::R0, off, imm)
    }

    /// `if dst OP imm goto +off`.
    pub const fn jmp_imm(op: JmpOp, dst: Reg, imm: i32, off: i16) -> Insn {
        Insn::raw(CLASS_JMP | op as u8 | SRC_K, dst, Reg::R0, off, imm)
    }

    /// `if dst OP src goto +off`.
    pub const fn jmp(op: JmpOp, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::raw(CLASS_JMP | op as u8 | SRC_X, dst, src, off, 0)
    }

    /// `if (u32)dst OP (u32)imm goto +off`: compares the low 32 bits only, so an IPv4
    /// address loaded from a context field compares equal to its `imm` bit pattern.
    pub const fn jmp32_imm(op: JmpOp, dst: Reg, imm: i32, off: i16) -> Insn {
        Insn::raw(CLASS_JMP32 | op as u8 | SRC_K, dst, Reg::R0, off, imm)
    }

    /// `goto +off`.
    pub const fn ja(off: i16) -> Insn {
        Insn::raw(CLASS_JMP | OP_JA, Reg::R0, Reg::R0, off, 0)
    }

    /// Call a kernel helper: arguments in R1..R5, result in R0, R1..R5 clobbered.
    pub const fn call(helper: Helper) -> Insn {
        Insn::raw(CLASS_JMP | OP_CALL, Reg::R0, Reg::R0, 0, helper as i32)
    }

    /// Return R0.
    pub const fn exit() -> Insn {
        Insn::raw(CLASS_JMP | OP_EXIT, Reg::R0, Reg::R0, 0, 0)
    }

    /// `dst = imm` with a full 64-bit immediate; this instruction takes two slots.
    pub const fn ld_imm64(dst: Reg, imm: u64) -> [Insn; 2] {
        [
            Insn::raw(
                CLASS_LD | Size::DW as u8 | MODE_IMM,
                dst,
                Reg::R0,
                0,
                imm as u32 as i32,
            ),
            Insn::raw(0, Reg::R0, Reg::R0, 0, (imm >> 32) as u32 as i32),
        ]
    }
}

/// What `bpf(2)` reports about a loaded program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgInfo {
    /// `enum bpf_prog_type` value.
    pub prog_type: u32,
    /// Kernel-wide program id; stable for the program's lifetime.
    pub id: u32,
    /// Hash of the program's instructions.
    pub tag: [u8; 8],
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_PROG_QUERY: libc::c_int = 16;

/// Size of the verifier log buffer used when a load fails (the kernel truncates beyond it).
const LOG_SIZE: usize = 256 * 1024;

/// The `BPF_PROG_LOAD` member of `union bpf_attr`, up to `expected_attach_type`.
#[repr(C, align(8))]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH`/`BPF_PROG_DETACH` member of `union bpf_attr`.
#[repr(C, align(8))]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    /// `relative_fd` in newer kernels; spelled out so the bytes are zero, not padding.
    _pad: u32,
}

/// The `BPF_PROG_QUERY` member of `union bpf_attr`.
#[repr(C, align(8))]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// The `BPF_PROG_GET_FD_BY_ID` member of `union bpf_attr`.
#[repr(C, align(8))]
#[derive(Default)]
struct GetIdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
    /// Newer kernels read a token fd here; spelled out so the bytes are zero, not padding.
    _pad: u32,
}

/// The `BPF_OBJ_GET_INFO_BY_FD` member of `union bpf_attr`.
#[repr(C, align(8))]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The leading fields of `struct bpf_prog_info`; the kernel fills only `info_len` bytes.
#[repr(C, align(8))]
#[derive(Default)]
struct ProgInfoRaw {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
}

/// Marker for the attr structs above: plain `#[repr(C)]` integers without implicit padding
/// (the kernel rejects nonzero bytes in fields it knows but we do not set), valid as
/// `union bpf_attr` prefixes, so the kernel may read and write them.
trait BpfAttr {}
impl BpfAttr for ProgLoadAttr {}
impl BpfAttr for AttachAttr {}
impl BpfAttr for QueryAttr {}
impl BpfAttr for GetIdAttr {}
impl BpfAttr for InfoAttr {}

/// Runs one bpf(2) command; the attr may be updated by the kernel.
fn sys_bpf<A: BpfAttr>(cmd: libc::c_int, attr: &mut A) -> Result<libc::c_long, Errno> {
    // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] prefix of `union bpf_attr`
    // (enforced by the BpfAttr marker) and we pass its exact size, so the kernel reads and
    // writes only inside it. Any pointers stored in it (insns, log, ids) are set by the
    // callers to buffers that outlive this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut A as *mut libc::c_void,
            std::mem::size_of::<A>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// Wraps a file descriptor returned by bpf(2).
fn owned_fd(ret: libc::c_long) -> OwnedFd {
    // SAFETY: a non-negative bpf(2) return value of the fd-creating commands is a new file
    // descriptor that nothing else owns (the kernel sets O_CLOEXEC on it).
    unsafe { OwnedFd::from_raw_fd(ret as RawFd) }
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // A borrowed fd is never negative.
    fd.as_raw_fd() as u32
}

/// Loads an eBPF program and returns its fd.
///
/// The first attempt runs without a verifier log (it costs time on success); if the kernel
/// refuses the program, it is loaded again with a log, which the error carries.
pub fn prog_load(
    prog_type: ProgType,
    expected_attach: Option<AttachType>,
    insns: &[Insn],
    license: &CStr,
) -> Result<OwnedFd, BpfError> {
    let insn_cnt = u32::try_from(insns.len()).map_err(|_| BpfError::TooLong(insns.len()))?;
    let mut attr = ProgLoadAttr {
        prog_type: prog_type as u32,
        insn_cnt,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: expected_attach.map_or(0, |a| a as u32),
        ..Default::default()
    };
    if let Ok(fd) = sys_bpf(BPF_PROG_LOAD, &mut attr) {
        return Ok(owned_fd(fd));
    }
    let mut log = vec![0u8; LOG_SIZE];
    attr.log_level = 1;
    attr.log_size = LOG_SIZE as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    match sys_bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(source) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err(BpfError::Load {
                prog_type,
                insn_count: insns.len(),
                log: String::from_utf8_lossy(&log[..end]).trim_end().to_owned(),
                source,
            })
        }
    }
}

/// Attaches `prog` to the cgroup directory `target` at `attach_type`.
pub fn prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: AttachType,
    flags: AttachFlags,
) -> Result<(), BpfError> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(target),
        attach_bpf_fd: fd_u32(prog),
        attach_type: attach_type as u32,
        attach_flags: flags.bits(),
        ..Default::default()
    };
    sys_bpf(BPF_PROG_ATTACH, &mut attr).map_err(|source| BpfError::Attach {
        target: target.as_raw_fd(),
        attach_type,
        source,
    })?;
    Ok(())
}

/// Detaches `prog` from the cgroup directory `target` at `attach_type`.
pub fn prog_detach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: AttachType,
) -> Result<(), BpfError> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(target),
        attach_bpf_fd: fd_u32(prog),
        attach_type: attach_type as u32,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_DETACH, &mut attr).map_err(|source| BpfError::Detach {
        target: target.as_raw_fd(),
        attach_type,
        source,
    })?;
    Ok(())
}

/// Ids of the programs attached directly to `target` at `attach_type`.
pub fn prog_query(target: BorrowedFd<'_>, attach_type: AttachType) -> Result<Vec<u32>, BpfError> {
    let err = |source| BpfError::Query {
        target: target.as_raw_fd(),
        attach_type,
        source,
    };
    let mut ids: Vec<u32> = Vec::new();
    loop {
        let mut attr = QueryAttr {
            target_fd: fd_u32(target),
            attach_type: attach_type as u32,
            prog_ids: if ids.is_empty() {
                0
            } else {
                ids.as_mut_ptr() as u64
            },
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        match sys_bpf(BPF_PROG_QUERY, &mut attr) {
            // With no buffer the kernel only reports the count.
            Ok(_) if ids.is_empty() && attr.prog_cnt > 0 => {
                ids = vec![0; attr.prog_cnt as usize];
            }
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // Programs were attached between the two calls: grow and ask again.
            Err(Errno::ENOSPC) => ids = vec![0; attr.prog_cnt.max(ids.len() as u32 * 2) as usize],
            Err(source) => return Err(err(source)),
        }
    }
}

/// Opens a loaded program by its kernel id.
pub fn prog_get_fd_by_id(id: u32) -> Result<OwnedFd, BpfError> {
    let mut attr = GetIdAttr {
        id,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)
        .map(owned_fd)
        .map_err(|source| BpfError::GetFdById { id, source })
}

/// Type, id and tag of a loaded program.
pub fn prog_info(prog: BorrowedFd<'_>) -> Result<ProgInfo, BpfError> {
    let mut info = ProgInfoRaw::default();
    let mut attr = InfoAttr {
        bpf_fd: fd_u32(prog),
        info_len: std::mem::size_of::<ProgInfoRaw>() as u32,
        info: &mut info as *mut ProgInfoRaw as u64,
    };
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).map_err(|source| BpfError::Info {
        fd: prog.as_raw_fd(),
        source,
    })?;
    Ok(ProgInfo {
        prog_type: info.prog_type,
        id: info.id,
        tag: info.tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insn_is_eight_bytes() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn encodes_like_the_kernel_macros() {
        // BPF_MOV64_IMM(BPF_REG_0, 1)
        let i = Insn::mov_imm(Reg::R0, 1);
        assert_eq!((i.code, i.regs, i.off, i.imm), (0xb7, 0x00, 0, 1));
        // BPF_LDX_MEM(BPF_W, BPF_REG_2, BPF_REG_1, 4)
        let i = Insn::ldx(Size::W, Reg::R2, Reg::R1, 4);
        assert_eq!((i.code, i.regs, i.off), (0x61, 0x12, 4));
        // BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_3, -8)
        let i = Insn::stx(Size::DW, Reg::R10, -8, Reg::R3);
        assert_eq!((i.code, i.regs, i.off), (0x7b, 0x3a, -8));
        // BPF_JMP_IMM(BPF_JNE, BPF_REG_2, 7, 3)
        let i = Insn::jmp_imm(JmpOp::Ne, Reg::R2, 7, 3);
        assert_eq!((i.code, i.regs, i.off, i.imm), (0x55, 0x02, 3, 7));
        // BPF_JMP32_IMM(BPF_JEQ, BPF_REG_7, -1, 1)
        let i = Insn::jmp32_imm(JmpOp::Eq, Reg::R7, -1, 1);
        assert_eq!((i.code, i.regs, i.off, i.imm), (0x16, 0x07, 1, -1));
        assert_eq!(Insn::exit().code, 0x95);
        assert_eq!(Insn::call(Helper::Bind).code, 0x85);
        assert_eq!(Insn::call(Helper::Bind).imm, 64);
    }

    #[test]
    fn attrs_have_no_implicit_padding() {
        use std::mem::size_of;
        assert_eq!(size_of::<ProgLoadAttr>(), 72);
        assert_eq!(size_of::<AttachAttr>(), 24);
        assert_eq!(size_of::<QueryAttr>(), 32);
        assert_eq!(size_of::<GetIdAttr>(), 16);
        assert_eq!(size_of::<InfoAttr>(), 16);
    }

    #[test]
    fn ld_imm64_splits_the_immediate() {
        let [lo, hi] = Insn::ld_imm64(Reg::R3, 0x1122_3344_5566_7788);
        assert_eq!(lo.code, 0x18);
        assert_eq!(lo.dst(), 3);
        assert_eq!(lo.imm as u32, 0x5566_7788);
        assert_eq!(hi.code, 0);
        assert_eq!(hi.imm as u32, 0x1122_3344);
    }

    #[test]
    fn attach_flags_combine() {
        assert_eq!(
            (AttachFlags::ALLOW_MULTI | AttachFlags::ALLOW_OVERRIDE).bits(),
            3
        );
        assert_eq!(AttachFlags::default(), AttachFlags::NONE);
    }
}
