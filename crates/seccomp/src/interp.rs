//! A classic-BPF interpreter for tests: runs a filter on a `seccomp_data` the way the
//! kernel does, and checks the program the way the kernel's loader does.

use jaula_sys::seccomp::sock_filter;

use crate::arch::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};

/// `struct seccomp_data`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    /// A native x86_64 syscall without arguments.
    pub(crate) fn nr(nr: u32) -> Self {
        Self {
            nr,
            arch: AUDIT_ARCH_X86_64,
            instruction_pointer: 0x40_1000,
            args: [0; 6],
        }
    }

    /// A native x86_64 syscall with arguments.
    pub(crate) fn x86_64(nr: u32, args: &[u64]) -> Self {
        let mut data = Self::nr(nr);
        data.args[..args.len()].copy_from_slice(args);
        data
    }

    /// An i386 (`int 0x80`) syscall; the kernel zero-extends its 32-bit arguments.
    pub(crate) fn i386(nr: u32, args: &[u32]) -> Self {
        let mut data = Self::nr(nr);
        data.arch = AUDIT_ARCH_I386;
        for (slot, &arg) in data.args.iter_mut().zip(args) {
            *slot = u64::from(arg);
        }
        data
    }

    /// An x32 syscall: x86_64 arch, number with the x32 bit.
    pub(crate) fn x32(nr: u32, args: &[u64]) -> Self {
        let mut data = Self::x86_64(nr | X32_SYSCALL_BIT, args);
        data.arch = AUDIT_ARCH_X86_64;
        data
    }

    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_le_bytes());
        b[4..8].copy_from_slice(&self.arch.to_le_bytes());
        b[8..16].copy_from_slice(&self.instruction_pointer.to_le_bytes());
        for (i, arg) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
        }
        b
    }
}

/// Checks what the kernel checks when loading (`seccomp_check_filter` and
/// `bpf_check_classic`): known opcodes, aligned in-bounds loads, jumps inside the program,
/// a final return. Panics on violation.
pub(crate) fn check(prog: &[sock_filter]) {
    assert!(
        !prog.is_empty() && prog.len() <= 4096,
        "length {}",
        prog.len()
    );
    for (pc, insn) in prog.iter().enumerate() {
        match insn.code {
            0x20 => assert!(insn.k < 64 && insn.k % 4 == 0, "load {} at {pc}", insn.k),
            0x54 | 0x06 => {}
            0x05 => assert!(pc + 1 + (insn.k as usize) < prog.len(), "JA out at {pc}"),
            0x15 | 0x25 | 0x35 | 0x45 => {
                let far = pc + 1 + usize::from(insn.jt.max(insn.jf));
                assert!(far < prog.len(), "jump out at {pc}");
            }
            code => panic!("opcode {code:#x} at {pc}"),
        }
    }
    assert_eq!(prog.last().map(|i| i.code), Some(0x06), "must end in RET");
}

/// Runs `prog` on `data` and returns the filter's `SECCOMP_RET_*` value.
pub(crate) fn run(prog: &[sock_filter], data: &SeccompData) -> u32 {
    run_counted(prog, data).0
}

/// Like [`run`], also returning how many instructions ran and whether any syscall
/// argument was read (a decision that reads none is cacheable by the kernel).
pub(crate) fn run_counted(prog: &[sock_filter], data: &SeccompData) -> (u32, usize, bool) {
    check(prog);
    let mut steps = 0;
    let mut read_args = false;
    let bytes = data.bytes();
    let mut a: u32 = 0;
    let mut pc = 0;
    loop {
        let insn = prog[pc];
        pc += 1;
        steps += 1;
        let k = insn.k;
        let branch = |taken: bool| usize::from(if taken { insn.jt } else { insn.jf });
        match insn.code {
            0x20 => {
                let at = k as usize;
                read_args |= at >= 16;
                a = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            }
            0x54 => a &= k,
            0x05 => pc += k as usize,
            0x15 => pc += branch(a == k),
            0x25 => pc += branch(a > k),
            0x35 => pc += branch(a >= k),
            0x45 => pc += branch(a & k != 0),
            0x06 => return (k, steps, read_args),
            code => panic!("opcode {code:#x}"),
        }
    }
}
