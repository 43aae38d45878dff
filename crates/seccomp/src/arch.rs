//! The x86 syscall ABIs a filter covers, and the architecture names of the spec.

use crate::tables;

/// `AUDIT_ARCH_X86_64`: `seccomp_data.arch` of 64-bit and x32 syscalls.
pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`: `seccomp_data.arch` of `int 0x80`/`sysenter` syscalls.
pub(crate) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// x32 syscalls carry this bit in their number (and the x86_64 arch value).
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Every `SCMP_ARCH_*` name libseccomp knows.
pub(crate) const ARCH_NAMES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

/// A syscall ABI of an x86_64 kernel, each with its own numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Abi {
    /// The native 64-bit ABI (`syscall` instruction).
    X86_64,
    /// The 32-bit ABI (`int 0x80`, `sysenter`), with its own numbers and 32-bit arguments.
    I386,
    /// x32: 64-bit registers, x86_64 numbers (mostly) with bit 30 set.
    X32,
}

impl Abi {
    /// Every ABI jaula has a table for.
    pub const ALL: [Abi; 3] = [Abi::X86_64, Abi::I386, Abi::X32];

    /// Maps a spec architecture name: `Ok(Some)` for the x86 family, `Ok(None)` for a
    /// known foreign architecture (its syscalls cannot occur on x86), `Err` otherwise.
    pub(crate) fn from_spec(name: &str) -> Result<Option<Abi>, ()> {
        match name {
            "SCMP_ARCH_X86_64" => Ok(Some(Abi::X86_64)),
            "SCMP_ARCH_X86" => Ok(Some(Abi::I386)),
            "SCMP_ARCH_X32" => Ok(Some(Abi::X32)),
            other if ARCH_NAMES.contains(&other) => Ok(None),
            _ => Err(()),
        }
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => tables::X86_64,
            Abi::I386 => tables::I386,
            Abi::X32 => tables::X32,
        }
    }

    /// The number `seccomp_data.nr` holds for syscall `name`, if this ABI has it.
    pub fn number(self, name: &str) -> Option<u32> {
        let table = self.table();
        let index = table.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
        let nr = table[index].1;
        Some(match self {
            Abi::X32 => nr | X32_SYSCALL_BIT,
            _ => nr,
        })
    }

    /// Whether arguments are 64 bits wide. i386 arguments are 32-bit registers that the
    /// kernel zero-extends into `seccomp_data.args`, so only the low halves are compared.
    pub(crate) fn wide_args(self) -> bool {
        !matches!(self, Abi::I386)
    }

    /// Syscall numbers of this ABI above what the table knows, as inclusive ranges:
    /// syscalls newer than the filter. They get ENOSYS so that programs fall back to older
    /// syscalls, as they would on an older kernel.
    pub(crate) fn unknown_ranges(self) -> Vec<(u32, u32)> {
        let numbers = self.table().iter().map(|&(_, nr)| nr);
        match self {
            Abi::X86_64 | Abi::I386 => {
                let top = numbers.max().unwrap_or(0);
                vec![(top + 1, u32::MAX)]
            }
            Abi::X32 => {
                // x32 has its own block 512..=547 above the shared numbers; new shared
                // syscalls will appear between the two.
                const OWN_BLOCK: u32 = 512;
                let shared_top = numbers.clone().filter(|&nr| nr < OWN_BLOCK).max();
                let top = numbers.max().unwrap_or(0);
                let mut ranges = vec![(X32_SYSCALL_BIT | (top + 1), u32::MAX)];
                if let Some(shared_top) = shared_top.filter(|&t| t + 1 < OWN_BLOCK) {
                    ranges.push((
                        X32_SYSCALL_BIT | (shared_top + 1),
                        X32_SYSCALL_BIT | (OWN_BLOCK - 1),
                    ));
                }
                ranges
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_by_name_for_binary_search() {
        for table in [tables::X86_64, tables::I386, tables::X32] {
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }

    #[test]
    fn x86_64_numbers_match_libc() {
        let cases: &[(&str, libc::c_long)] = &[
            ("read", libc::SYS_read),
            ("write", libc::SYS_write),
            ("openat", libc::SYS_openat),
            ("clone", libc::SYS_clone),
            ("clone3", libc::SYS_clone3),
            ("getpid", libc::SYS_getpid),
            ("mkdir", libc::SYS_mkdir),
            ("socket", libc::SYS_socket),
            ("keyctl", libc::SYS_keyctl),
            ("unshare", libc::SYS_unshare),
            ("setns", libc::SYS_setns),
            ("mount", libc::SYS_mount),
            ("umount2", libc::SYS_umount2),
            ("pivot_root", libc::SYS_pivot_root),
            ("bpf", libc::SYS_bpf),
            ("userfaultfd", libc::SYS_userfaultfd),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("open_tree", libc::SYS_open_tree),
            ("mount_setattr", libc::SYS_mount_setattr),
            ("personality", libc::SYS_personality),
            ("_sysctl", libc::SYS__sysctl),
            ("process_mrelease", libc::SYS_process_mrelease),
            ("futex_waitv", libc::SYS_futex_waitv),
            ("set_mempolicy_home_node", libc::SYS_set_mempolicy_home_node),
            ("fchmodat2", libc::SYS_fchmodat2),
            ("mseal", libc::SYS_mseal),
        ];
        for &(name, nr) in cases {
            assert_eq!(Abi::X86_64.number(name), Some(nr as u32), "{name}");
        }
    }

    #[test]
    fn syscalls_newer_than_the_headers_are_present() {
        assert!(Abi::X86_64.number("file_setattr").is_some());
        assert_eq!(Abi::X86_64.number("listns"), Some(470));
        assert_eq!(Abi::X86_64.number("chown32"), None);
    }

    #[test]
    fn i386_and_x32_numbers() {
        assert_eq!(Abi::I386.number("getpid"), Some(20));
        assert_eq!(Abi::I386.number("mkdir"), Some(39));
        assert_eq!(Abi::I386.number("socketcall"), Some(102));
        assert_eq!(Abi::I386.number("socket"), Some(359));
        assert_eq!(Abi::I386.number("chown32"), Some(212));
        assert_eq!(Abi::I386.number("clone3"), Some(435));
        assert_eq!(Abi::I386.number("mseal"), Some(462));
        assert_eq!(Abi::X32.number("getpid"), Some(0x4000_0000 | 39));
        assert_eq!(Abi::X32.number("rt_sigaction"), Some(0x4000_0000 | 512));
        assert_eq!(Abi::X32.number("map_shadow_stack"), None);
        assert_eq!(Abi::I386.number("arch_prctl"), Some(384));
    }

    #[test]
    fn unknown_ranges_start_above_the_tables() {
        assert_eq!(Abi::X86_64.unknown_ranges(), vec![(471, u32::MAX)]);
        assert_eq!(Abi::I386.unknown_ranges(), vec![(471, u32::MAX)]);
        assert_eq!(
            Abi::X32.unknown_ranges(),
            vec![
                (0x4000_0000 | 548, u32::MAX),
                (0x4000_0000 | 471, 0x4000_0000 | 511)
            ]
        );
    }

    #[test]
    fn arch_names() {
        assert_eq!(Abi::from_spec("SCMP_ARCH_X86"), Ok(Some(Abi::I386)));
        assert_eq!(Abi::from_spec("SCMP_ARCH_AARCH64"), Ok(None));
        assert_eq!(Abi::from_spec("SCMP_ARCH_VAX"), Err(()));
    }
}
