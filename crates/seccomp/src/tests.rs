//! Unit tests of the compiler: every action, operator, architecture and flag, run through
//! the BPF interpreter, plus the default profile's decisions.

use jaula_spec::{Seccomp, SyscallArg, SyscallRule};
use jaula_sys::seccomp::FilterFlags;

use crate::interp::{run, run_counted, SeccompData};
use crate::*;

const ALLOW: u32 = 0x7fff_0000;
const KILL_PROCESS: u32 = 0x8000_0000;
const KILL_THREAD: u32 = 0;
const TRAP: u32 = 0x0003_0000;
const LOG: u32 = 0x7ffc_0000;
const NOTIFY: u32 = 0x7fc0_0000;

fn errno(e: i32) -> u32 {
    0x0005_0000 | e as u32
}

fn trace(data: u32) -> u32 {
    0x7ff0_0000 | data
}

fn nr(name: &str) -> u32 {
    Abi::X86_64.number(name).unwrap()
}

fn i386_nr(name: &str) -> u32 {
    Abi::I386.number(name).unwrap()
}

fn profile(default: &str, syscalls: Vec<SyscallRule>) -> Seccomp {
    Seccomp {
        default_action: default.to_owned(),
        syscalls,
        ..Seccomp::default()
    }
}

fn rule(names: &[&str], action: &str, args: Vec<SyscallArg>) -> SyscallRule {
    SyscallRule {
        names: names.iter().map(|&n| n.to_owned()).collect(),
        action: action.to_owned(),
        errno_ret: None,
        args,
    }
}

fn arg(index: u32, op: &str, value: u64, value_two: u64) -> SyscallArg {
    SyscallArg {
        index,
        value,
        value_two,
        op: op.to_owned(),
    }
}

fn decide(seccomp: &Seccomp, data: SeccompData) -> u32 {
    run(compile(seccomp).unwrap().program(), &data)
}

// ---- actions ----

#[test]
fn every_action_encodes_its_return_value() {
    let cases = [
        ("SCMP_ACT_ALLOW", ALLOW),
        ("SCMP_ACT_KILL", KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", KILL_PROCESS),
        ("SCMP_ACT_TRAP", TRAP),
        ("SCMP_ACT_ERRNO", errno(libc::EPERM)),
        ("SCMP_ACT_TRACE", trace(libc::EPERM as u32)),
        ("SCMP_ACT_LOG", LOG),
        ("SCMP_ACT_NOTIFY", NOTIFY),
    ];
    for (action, expected) in cases {
        let p = profile("SCMP_ACT_ALLOW", vec![rule(&["getpid"], action, vec![])]);
        assert_eq!(
            decide(&p, SeccompData::nr(nr("getpid"))),
            expected,
            "{action}"
        );
        assert_eq!(decide(&p, SeccompData::nr(nr("read"))), ALLOW, "{action}");
    }
    assert_eq!(SUPPORTED_ACTIONS.len(), cases.len());
}

#[test]
fn errno_ret_sets_errno_and_trace_data() {
    let mut errno_rule = rule(&["mkdir"], "SCMP_ACT_ERRNO", vec![]);
    errno_rule.errno_ret = Some(libc::EROFS as u32);
    let mut trace_rule = rule(&["rmdir"], "SCMP_ACT_TRACE", vec![]);
    trace_rule.errno_ret = Some(1234);
    let p = profile("SCMP_ACT_ALLOW", vec![errno_rule, trace_rule]);
    assert_eq!(decide(&p, SeccompData::nr(nr("mkdir"))), errno(libc::EROFS));
    assert_eq!(decide(&p, SeccompData::nr(nr("rmdir"))), trace(1234));
}

#[test]
fn default_action_and_default_errno_ret() {
    let mut p = profile(
        "SCMP_ACT_ERRNO",
        vec![rule(&["read"], "SCMP_ACT_ALLOW", vec![])],
    );
    assert_eq!(decide(&p, SeccompData::nr(nr("write"))), errno(libc::EPERM));
    p.default_errno_ret = Some(libc::EACCES as u32);
    assert_eq!(
        decide(&p, SeccompData::nr(nr("write"))),
        errno(libc::EACCES)
    );
    assert_eq!(decide(&p, SeccompData::nr(nr("read"))), ALLOW);
    let p = profile(
        "SCMP_ACT_KILL_PROCESS",
        vec![rule(&["read"], "SCMP_ACT_ALLOW", vec![])],
    );
    assert_eq!(decide(&p, SeccompData::nr(nr("write"))), KILL_PROCESS);
}

#[test]
fn bad_actions_and_errno_rets_are_errors() {
    let p = profile("SCMP_ACT_EXPLODE", vec![]);
    let err = compile(&p).unwrap_err();
    assert!(
        matches!(err, Error::UnknownAction { ref key, .. } if key == "linux.seccomp.defaultAction")
    );

    let p = profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["read"], "SCMP_ACT_NOPE", vec![])],
    );
    let err = compile(&p).unwrap_err();
    assert!(
        err.to_string().contains("linux.seccomp.syscalls[0].action"),
        "{err}"
    );

    let mut r = rule(&["read"], "SCMP_ACT_ALLOW", vec![]);
    r.errno_ret = Some(1);
    assert!(matches!(
        compile(&profile("SCMP_ACT_ERRNO", vec![r])),
        Err(Error::ErrnoRetNotAllowed { .. })
    ));
    let mut p = profile("SCMP_ACT_KILL", vec![]);
    p.default_errno_ret = Some(1);
    assert!(matches!(compile(&p), Err(Error::ErrnoRetNotAllowed { .. })));

    let mut r = rule(&["read"], "SCMP_ACT_ERRNO", vec![]);
    r.errno_ret = Some(4096);
    assert!(matches!(
        compile(&profile("SCMP_ACT_ALLOW", vec![r])),
        Err(Error::ErrnoRetRange { value: 4096, .. })
    ));
    assert!(matches!(
        compile(&profile("SCMP_ACT_NOTIFY", vec![])),
        Err(Error::NotifyDefault)
    ));
}

// ---- operators ----

/// What the kernel-side comparison must mean, on 64-bit values.
fn expected(op: &str, arg: u64, value: u64, value_two: u64) -> bool {
    match op {
        "SCMP_CMP_NE" => arg != value,
        "SCMP_CMP_LT" => arg < value,
        "SCMP_CMP_LE" => arg <= value,
        "SCMP_CMP_EQ" => arg == value,
        "SCMP_CMP_GE" => arg >= value,
        "SCMP_CMP_GT" => arg > value,
        "SCMP_CMP_MASKED_EQ" => arg & value == value_two,
        _ => unreachable!(),
    }
}

/// Values around every 32-bit boundary, so that the high/low split is exercised.
const EDGES: &[u64] = &[
    0,
    1,
    2,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x1_ffff_ffff,
    0x2_0000_0000,
    0x2_0000_0001,
    0xffff_ffff_0000_0000,
    0xffff_ffff_ffff_fffe,
    u64::MAX,
];

#[test]
fn every_operator_compares_64_bit_arguments_exactly() {
    for &op in SUPPORTED_OPERATORS
        .iter()
        .filter(|&&op| op != "SCMP_CMP_MASKED_EQ")
    {
        for &value in EDGES {
            let p = profile(
                "SCMP_ACT_ALLOW",
                vec![rule(
                    &["kill"],
                    "SCMP_ACT_ERRNO",
                    vec![arg(1, op, value, 0)],
                )],
            );
            let prog = compile(&p).unwrap();
            for &a in EDGES {
                let want = if expected(op, a, value, 0) {
                    errno(libc::EPERM)
                } else {
                    ALLOW
                };
                let got = run(prog.program(), &SeccompData::x86_64(nr("kill"), &[0, a]));
                assert_eq!(got, want, "{op} arg {a:#x} value {value:#x}");
            }
        }
    }
}

#[test]
fn masked_eq_compares_both_halves() {
    let masks = [
        0,
        0xff,
        0x7e02_0000,
        0xffff_ffff,
        0xf_0000_0000,
        0xffff_0000_ffff,
        u64::MAX,
    ];
    for &mask in &masks {
        for &datum in EDGES.iter().chain(&[0x7e02_0000, 0x3_0000_0000]) {
            let p = profile(
                "SCMP_ACT_ALLOW",
                vec![rule(
                    &["kill"],
                    "SCMP_ACT_ERRNO",
                    vec![arg(0, "SCMP_CMP_MASKED_EQ", mask, datum)],
                )],
            );
            let prog = compile(&p).unwrap();
            for &a in EDGES.iter().chain(&[0x2_0000, 0x1_7e02_0000]) {
                let want = if expected("SCMP_CMP_MASKED_EQ", a, mask, datum) {
                    errno(libc::EPERM)
                } else {
                    ALLOW
                };
                let got = run(prog.program(), &SeccompData::x86_64(nr("kill"), &[a]));
                assert_eq!(got, want, "arg {a:#x} mask {mask:#x} datum {datum:#x}");
            }
        }
    }
}

#[test]
fn i386_arguments_compare_as_32_bit_values() {
    for &op in SUPPORTED_OPERATORS {
        for &value in &[0u64, 1, 0x8000_0000, 0xffff_ffff, 0x1_0000_0005] {
            let p = Seccomp {
                architectures: vec!["SCMP_ARCH_X86".into()],
                ..profile(
                    "SCMP_ACT_ALLOW",
                    vec![rule(
                        &["kill"],
                        "SCMP_ACT_ERRNO",
                        vec![arg(1, op, value, value)],
                    )],
                )
            };
            let prog = compile(&p).unwrap();
            let v = value & 0xffff_ffff;
            for &a in &[0u32, 1, 4, 5, 6, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff] {
                let want = if expected(op, u64::from(a), v, v) {
                    errno(libc::EPERM)
                } else {
                    ALLOW
                };
                let got = run(prog.program(), &SeccompData::i386(i386_nr("kill"), &[0, a]));
                assert_eq!(got, want, "{op} arg {a:#x} value {value:#x}");
            }
        }
    }
}

#[test]
fn args_in_one_rule_are_anded_and_rules_are_ored() {
    let p = profile(
        "SCMP_ACT_ALLOW",
        vec![
            rule(
                &["kill"],
                "SCMP_ACT_ERRNO",
                vec![arg(0, "SCMP_CMP_EQ", 1, 0), arg(1, "SCMP_CMP_EQ", 9, 0)],
            ),
            rule(
                &["kill"],
                "SCMP_ACT_KILL_PROCESS",
                vec![arg(1, "SCMP_CMP_EQ", 15, 0)],
            ),
        ],
    );
    let kill = |pid, sig| decide(&p, SeccompData::x86_64(nr("kill"), &[pid, sig]));
    assert_eq!(kill(1, 9), errno(libc::EPERM));
    assert_eq!(kill(2, 9), ALLOW);
    assert_eq!(kill(1, 8), ALLOW);
    assert_eq!(kill(7, 15), KILL_PROCESS);
    assert_eq!(kill(1, 15), KILL_PROCESS);
}

#[test]
fn conditional_rules_go_first_then_the_unconditional_one() {
    // Order in the profile does not matter between the two kinds.
    let p = profile(
        "SCMP_ACT_ERRNO",
        vec![
            rule(&["socket"], "SCMP_ACT_ALLOW", vec![]),
            rule(
                &["socket"],
                "SCMP_ACT_LOG",
                vec![arg(0, "SCMP_CMP_EQ", 38, 0)],
            ),
            rule(
                &["socket"],
                "SCMP_ACT_TRAP",
                vec![arg(0, "SCMP_CMP_EQ", 38, 0)],
            ),
        ],
    );
    assert_eq!(decide(&p, SeccompData::x86_64(nr("socket"), &[2])), ALLOW);
    assert_eq!(decide(&p, SeccompData::x86_64(nr("socket"), &[38])), LOG);
}

#[test]
fn conflicting_unconditional_actions_keep_the_most_restrictive() {
    let p = profile(
        "SCMP_ACT_ERRNO",
        vec![
            rule(&["read", "write", "close"], "SCMP_ACT_ALLOW", vec![]),
            rule(&["read"], "SCMP_ACT_ALLOW", vec![]),
            rule(&["write"], "SCMP_ACT_KILL_PROCESS", vec![]),
            rule(&["close"], "SCMP_ACT_LOG", vec![]),
        ],
    );
    assert_eq!(decide(&p, SeccompData::x86_64(nr("read"), &[])), ALLOW);
    assert_eq!(
        decide(&p, SeccompData::x86_64(nr("write"), &[])),
        libc::SECCOMP_RET_KILL_PROCESS
    );
    assert_eq!(decide(&p, SeccompData::x86_64(nr("close"), &[])), LOG);
}

#[test]
fn bad_operators_indices_and_names_are_errors() {
    let p = profile(
        "SCMP_ACT_ALLOW",
        vec![rule(
            &["read"],
            "SCMP_ACT_ERRNO",
            vec![arg(0, "SCMP_CMP_ABOUT", 0, 0)],
        )],
    );
    let err = compile(&p).unwrap_err();
    assert!(
        err.to_string()
            .contains("linux.seccomp.syscalls[0].args[0].op"),
        "{err}"
    );
    let p = profile(
        "SCMP_ACT_ALLOW",
        vec![rule(
            &["read"],
            "SCMP_ACT_ERRNO",
            vec![arg(6, "SCMP_CMP_EQ", 0, 0)],
        )],
    );
    assert!(matches!(compile(&p), Err(Error::ArgIndex { index: 6, .. })));
    let p = profile("SCMP_ACT_ALLOW", vec![rule(&[], "SCMP_ACT_ERRNO", vec![])]);
    assert!(matches!(compile(&p), Err(Error::NoNames { .. })));
}

#[test]
fn unknown_syscall_names_are_ignored_and_reported() {
    let p = profile(
        "SCMP_ACT_ERRNO",
        vec![rule(
            &["read", "frobnicate", "chown32"],
            "SCMP_ACT_ALLOW",
            vec![],
        )],
    );
    let filter = compile(&p).unwrap();
    // chown32 is an i386 name: known, just not on x86_64.
    assert_eq!(filter.ignored_syscalls(), ["frobnicate".to_owned()]);
    assert_eq!(run(filter.program(), &SeccompData::nr(nr("read"))), ALLOW);
}

// ---- architectures ----

fn getpid_errno(arches: &[&str]) -> Seccomp {
    Seccomp {
        architectures: arches.iter().map(|&a| a.to_owned()).collect(),
        ..profile(
            "SCMP_ACT_ALLOW",
            vec![rule(&["getpid"], "SCMP_ACT_ERRNO", vec![])],
        )
    }
}

#[test]
fn only_listed_abis_pass_and_x86_64_is_always_there() {
    let p = getpid_errno(&[]);
    assert_eq!(decide(&p, SeccompData::nr(39)), errno(libc::EPERM));
    assert_eq!(decide(&p, SeccompData::i386(20, &[])), KILL_PROCESS);
    // x32 numbers carry the x86_64 arch: they must not slip past the x86_64 rules.
    assert_eq!(decide(&p, SeccompData::x32(39, &[])), KILL_PROCESS);
    assert_eq!(decide(&p, SeccompData::x32(0, &[])), KILL_PROCESS);
    let mut foreign = SeccompData::nr(39);
    foreign.arch = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    assert_eq!(decide(&p, foreign), KILL_PROCESS);
}

#[test]
fn i386_rules_use_i386_numbers() {
    let p = getpid_errno(&["SCMP_ARCH_X86"]);
    assert_eq!(decide(&p, SeccompData::i386(20, &[])), errno(libc::EPERM));
    // 39 is mkdir on i386, getpid on x86_64.
    assert_eq!(decide(&p, SeccompData::i386(39, &[])), ALLOW);
    assert_eq!(decide(&p, SeccompData::nr(39)), errno(libc::EPERM));
    assert_eq!(decide(&p, SeccompData::x32(39, &[])), KILL_PROCESS);
}

#[test]
fn x32_rules_use_x32_numbers() {
    let p = getpid_errno(&["SCMP_ARCH_X32", "SCMP_ARCH_X86_64"]);
    assert_eq!(decide(&p, SeccompData::x32(39, &[])), errno(libc::EPERM));
    assert_eq!(decide(&p, SeccompData::x32(0, &[])), ALLOW);
    assert_eq!(decide(&p, SeccompData::i386(20, &[])), KILL_PROCESS);
}

#[test]
fn foreign_arches_compile_to_nothing_and_unknown_ones_fail() {
    let with = getpid_errno(&["SCMP_ARCH_AARCH64", "SCMP_ARCH_S390X", "SCMP_ARCH_RISCV64"]);
    let without = getpid_errno(&[]);
    assert_eq!(
        compile(&with).unwrap().program().len(),
        compile(&without).unwrap().program().len()
    );
    assert!(matches!(
        compile(&getpid_errno(&["SCMP_ARCH_PDP11"])),
        Err(Error::UnknownArch(a)) if a == "SCMP_ARCH_PDP11"
    ));
}

// ---- syscalls newer than the table ----

#[test]
fn syscalls_above_the_table_get_enosys() {
    let p = Seccomp {
        architectures: vec!["SCMP_ARCH_X86".into(), "SCMP_ARCH_X32".into()],
        ..profile(
            "SCMP_ACT_ERRNO",
            vec![rule(&["read"], "SCMP_ACT_ALLOW", vec![])],
        )
    };
    let enosys = errno(libc::ENOSYS);
    let eperm = errno(libc::EPERM);
    assert_eq!(decide(&p, SeccompData::nr(nr("listns"))), eperm);
    assert_eq!(decide(&p, SeccompData::nr(nr("listns") + 1)), enosys);
    assert_eq!(decide(&p, SeccompData::nr(1000)), enosys);
    assert_eq!(decide(&p, SeccompData::nr(0x3fff_ffff)), enosys);
    assert_eq!(decide(&p, SeccompData::nr(u32::MAX)), enosys);
    assert_eq!(decide(&p, SeccompData::i386(471, &[])), enosys);
    assert_eq!(decide(&p, SeccompData::i386(u32::MAX, &[])), enosys);
    assert_eq!(decide(&p, SeccompData::i386(i386_nr("listns"), &[])), eperm);
    assert_eq!(decide(&p, SeccompData::x32(471, &[])), enosys);
    assert_eq!(decide(&p, SeccompData::x32(470, &[])), eperm);
    assert_eq!(decide(&p, SeccompData::x32(547, &[])), eperm);
    assert_eq!(decide(&p, SeccompData::x32(548, &[])), enosys);
    assert_eq!(decide(&p, SeccompData::x32(0, &[])), ALLOW);
    // Gaps inside the table keep the default.
    assert_eq!(decide(&p, SeccompData::nr(400)), eperm);
}

#[test]
fn deny_lists_let_unknown_syscalls_run() {
    let p = profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["mkdir"], "SCMP_ACT_ERRNO", vec![])],
    );
    assert_eq!(decide(&p, SeccompData::nr(1000)), ALLOW);
    assert_eq!(decide(&p, SeccompData::nr(u32::MAX)), ALLOW);
    let p = profile("SCMP_ACT_LOG", vec![]);
    assert_eq!(decide(&p, SeccompData::nr(1000)), LOG);
    let p = profile("SCMP_ACT_KILL_PROCESS", vec![]);
    assert_eq!(decide(&p, SeccompData::nr(1000)), errno(libc::ENOSYS));
}

// ---- flags ----

fn flags_of(flags: &[&str], rules: Vec<SyscallRule>) -> Result<FilterFlags, Error> {
    let p = Seccomp {
        flags: flags.iter().map(|&f| f.to_owned()).collect(),
        ..profile("SCMP_ACT_ALLOW", rules)
    };
    compile(&p).map(|f| f.flags())
}

#[test]
fn flags_map_to_seccomp_bits() {
    assert_eq!(flags_of(&[], vec![]).unwrap(), FilterFlags::empty());
    assert_eq!(
        flags_of(&["SECCOMP_FILTER_FLAG_TSYNC"], vec![]).unwrap(),
        FilterFlags::TSYNC
    );
    assert_eq!(
        flags_of(
            &["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            vec![]
        )
        .unwrap(),
        FilterFlags::LOG | FilterFlags::SPEC_ALLOW
    );
    assert!(matches!(
        flags_of(&["SECCOMP_FILTER_FLAG_NEW_LISTENER"], vec![]),
        Err(Error::UnknownFlag(_))
    ));
    assert_eq!(SUPPORTED_FLAGS.len(), 4);
    for flag in SUPPORTED_FLAGS {
        assert!(flags_of(&[flag], vec![]).is_ok(), "{flag}");
    }
}

#[test]
fn notify_implies_a_listener_and_tsync_esrch() {
    let notify = || vec![rule(&["getppid"], "SCMP_ACT_NOTIFY", vec![])];
    let flags = flags_of(&[], notify()).unwrap();
    assert_eq!(flags, FilterFlags::NEW_LISTENER);
    let flags = flags_of(
        &[
            "SECCOMP_FILTER_FLAG_TSYNC",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        ],
        notify(),
    )
    .unwrap();
    assert_eq!(
        flags,
        FilterFlags::TSYNC
            | FilterFlags::NEW_LISTENER
            | FilterFlags::TSYNC_ESRCH
            | FilterFlags::WAIT_KILLABLE_RECV
    );
    // Without a listener the kernel would refuse WAIT_KILLABLE_RECV: it is dropped.
    assert_eq!(
        flags_of(&["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"], vec![]).unwrap(),
        FilterFlags::empty()
    );
    let p = profile("SCMP_ACT_ALLOW", notify());
    assert!(compile(&p).unwrap().has_listener());
}

// ---- size and speed ----

/// 300 rules with arguments on 300 different syscalls, plus a rule with no argument.
fn large_profile() -> Seccomp {
    let names: Vec<&str> = crate::tables::X86_64
        .iter()
        .map(|(n, _)| *n)
        .take(300)
        .collect();
    let mut syscalls: Vec<SyscallRule> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            rule(
                &[name],
                "SCMP_ACT_ALLOW",
                vec![
                    arg(0, "SCMP_CMP_EQ", i as u64, 0),
                    arg(1, "SCMP_CMP_LT", 0x1_0000_0000, 0),
                ],
            )
        })
        .collect();
    syscalls.push(rule(&[names[299]], "SCMP_ACT_TRAP", vec![]));
    profile("SCMP_ACT_ERRNO", syscalls)
}

#[test]
fn large_profiles_need_trampolines_and_still_decide_right() {
    let p = large_profile();
    let filter = compile(&p).unwrap();
    let prog = filter.program();
    assert!(
        prog.len() > 1000 && prog.len() <= 4096,
        "{} instructions",
        prog.len()
    );
    assert!(prog.iter().any(|i| i.code == 0x05), "no JA trampoline");
    for (i, (name, number)) in crate::tables::X86_64.iter().take(300).enumerate() {
        let i = i as u64;
        let ok = SeccompData::x86_64(*number, &[i, 5]);
        assert_eq!(run(prog, &ok), ALLOW, "{name}");
        let wrong_arg0 = SeccompData::x86_64(*number, &[i + 1, 5]);
        let wrong_arg1 = SeccompData::x86_64(*number, &[i, 0x1_0000_0000]);
        let fallback = if i == 299 { TRAP } else { errno(libc::EPERM) };
        assert_eq!(run(prog, &wrong_arg0), fallback, "{name}");
        assert_eq!(run(prog, &wrong_arg1), fallback, "{name}");
    }
}

#[test]
fn too_large_profiles_are_refused() {
    let mut p = large_profile();
    p.architectures = vec!["SCMP_ARCH_X86".into(), "SCMP_ARCH_X32".into()];
    // Make every rule long: 6 conditions each.
    for r in &mut p.syscalls {
        r.args = (0..6).map(|i| arg(i, "SCMP_CMP_NE", 7, 0)).collect();
    }
    assert!(matches!(compile(&p), Err(Error::TooLong(n)) if n > 4096));
}

// ---- the default profile ----

fn default_filter() -> Filter {
    compile(&default_profile()).unwrap()
}

#[test]
fn default_profile_names_only_known_syscalls() {
    let filter = default_filter();
    assert!(
        filter.ignored_syscalls().is_empty(),
        "{:?}",
        filter.ignored_syscalls()
    );
    for name in NEVER_ALLOWED {
        assert!(
            Abi::ALL.iter().any(|abi| abi.number(name).is_some()),
            "{name}"
        );
    }
    assert!(filter.program().len() < 4096);
    assert_eq!(filter.flags(), FilterFlags::empty());
}

#[test]
fn default_profile_blocks_dangerous_syscalls() {
    let filter = default_filter();
    let eperm = errno(libc::EPERM);
    let blocked = [
        "keyctl",
        "add_key",
        "request_key",
        "userfaultfd",
        "setns",
        "mount",
        "umount2",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "pivot_root",
        "bpf",
        "perf_event_open",
        "open_by_handle_at",
        "name_to_handle_at",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "clock_settime",
        "clock_adjtime",
        "settimeofday",
        "adjtimex",
        "iopl",
        "ioperm",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "lookup_dcookie",
        "acct",
        "quotactl",
        "nfsservctl",
        "create_module",
        "get_kernel_syms",
        "query_module",
        "uselib",
        "sysfs",
        "_sysctl",
        "ustat",
        "fanotify_init",
        "process_vm_readv",
        "process_vm_writev",
    ];
    for name in blocked {
        let number = nr(name);
        assert_eq!(
            run(filter.program(), &SeccompData::nr(number)),
            eperm,
            "{name}"
        );
        assert_eq!(
            run(filter.program(), &SeccompData::x32(number, &[])),
            if number < 512 { eperm } else { ALLOW },
            "x32 {name}"
        );
    }
    for name in [
        "stime",
        "vm86",
        "vm86old",
        "mount",
        "keyctl",
        "kexec_load",
        "clock_settime",
    ] {
        let number = i386_nr(name);
        assert_eq!(
            run(filter.program(), &SeccompData::i386(number, &[])),
            eperm,
            "i386 {name}"
        );
    }
}

#[test]
fn default_profile_blocks_namespaces_but_not_threads() {
    let filter = default_filter();
    let prog = filter.program();
    let eperm = errno(libc::EPERM);
    let thread = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    let fork = (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD) as u64;
    for flags in [thread, fork] {
        assert_eq!(
            run(prog, &SeccompData::x86_64(nr("clone"), &[flags])),
            ALLOW
        );
        assert_eq!(
            run(prog, &SeccompData::i386(i386_nr("clone"), &[flags as u32])),
            ALLOW
        );
    }
    for ns in [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWCGROUP,
    ] {
        let flags = fork | ns as u64;
        assert_eq!(
            run(prog, &SeccompData::x86_64(nr("clone"), &[flags])),
            eperm,
            "{ns:#x}"
        );
        assert_eq!(
            run(prog, &SeccompData::x86_64(nr("unshare"), &[ns as u64])),
            eperm
        );
        assert_eq!(
            run(prog, &SeccompData::i386(i386_nr("unshare"), &[ns as u32])),
            eperm,
            "{ns:#x}"
        );
    }
    let newtime = libc::CLONE_NEWTIME as u64;
    assert_eq!(
        run(prog, &SeccompData::x86_64(nr("unshare"), &[newtime])),
        eperm
    );
    let files = libc::CLONE_FILES as u64;
    assert_eq!(
        run(prog, &SeccompData::x86_64(nr("unshare"), &[files])),
        ALLOW
    );
    assert_eq!(
        run(prog, &SeccompData::nr(nr("clone3"))),
        errno(libc::ENOSYS)
    );
    assert_eq!(
        run(prog, &SeccompData::i386(i386_nr("clone3"), &[])),
        errno(libc::ENOSYS)
    );
}

#[test]
fn default_profile_filters_socket_families_and_personality() {
    let filter = default_filter();
    let prog = filter.program();
    let socket = |family: i32| {
        run(
            prog,
            &SeccompData::x86_64(nr("socket"), &[family as u64, 1]),
        )
    };
    assert_eq!(socket(libc::AF_INET), ALLOW);
    assert_eq!(socket(libc::AF_INET6), ALLOW);
    assert_eq!(socket(libc::AF_UNIX), ALLOW);
    assert_eq!(socket(libc::AF_NETLINK), ALLOW);
    assert_eq!(socket(libc::AF_ALG), errno(libc::EAFNOSUPPORT));
    assert_eq!(socket(libc::AF_VSOCK), errno(libc::EAFNOSUPPORT));
    let i386_socket = SeccompData::i386(i386_nr("socket"), &[libc::AF_ALG as u32]);
    assert_eq!(run(prog, &i386_socket), errno(libc::EAFNOSUPPORT));

    let personality = |p: u64| run(prog, &SeccompData::x86_64(nr("personality"), &[p]));
    assert_eq!(personality(0), ALLOW);
    assert_eq!(personality(0xffff_ffff), ALLOW);
    assert_eq!(personality(0x8), ALLOW);
    assert_eq!(personality(0x0040000), errno(libc::EPERM)); // ADDR_NO_RANDOMIZE
}

#[test]
fn default_profile_allows_what_distributions_need() {
    let filter = default_filter();
    let prog = filter.program();
    let allowed = [
        "read",
        "write",
        "openat",
        "close",
        "mmap",
        "execve",
        "exit_group",
        "futex",
        "rt_sigreturn",
        "epoll_wait",
        "accept4",
        "sendfile",
        "setsockopt",
        "ptrace",
        "chown",
        "mknod",
        "chroot",
        "setuid",
        "capset",
        "prctl",
        "seccomp",
        "pidfd_open",
        "statx",
    ];
    for name in allowed {
        let (ret, steps, read_args) = run_counted(prog, &SeccompData::nr(nr(name)));
        assert_eq!(ret, ALLOW, "{name}");
        // Decided from the number alone (cacheable by the kernel) and quickly.
        assert!(!read_args, "{name}");
        assert!(steps <= 16, "{name}: {steps} instructions");
    }
    for name in [
        "read",
        "write",
        "socketcall",
        "ipc",
        "mmap2",
        "fstat64",
        "_llseek",
    ] {
        let ret = run(prog, &SeccompData::i386(i386_nr(name), &[]));
        assert_eq!(ret, ALLOW, "i386 {name}");
    }
    assert_eq!(run(prog, &SeccompData::x32(0, &[])), ALLOW);
}

#[test]
fn capabilities_bring_their_syscalls_back() {
    let with = |caps: &[&str]| {
        let caps: Vec<String> = caps.iter().map(|&c| c.to_owned()).collect();
        compile(&default_profile_for(&caps)).unwrap()
    };
    let check = |filter: &Filter, name: &str, want: u32| {
        assert_eq!(
            run(filter.program(), &SeccompData::nr(nr(name))),
            want,
            "{name}"
        );
    };
    let eperm = errno(libc::EPERM);
    let admin = with(&["CAP_SYS_ADMIN"]);
    for name in [
        "mount",
        "umount2",
        "setns",
        "fsopen",
        "pivot_root",
        "bpf",
        "clone3",
    ] {
        check(&admin, name, ALLOW);
    }
    let newuser = SeccompData::x86_64(nr("unshare"), &[libc::CLONE_NEWUSER as u64]);
    assert_eq!(run(admin.program(), &newuser), ALLOW);
    check(&admin, "reboot", eperm);
    check(&admin, "keyctl", eperm);

    check(&with(&["sys_time"]), "clock_settime", ALLOW);
    check(&with(&["CAP_SYS_MODULE"]), "finit_module", ALLOW);
    check(&with(&["CAP_SYS_BOOT"]), "reboot", ALLOW);
    check(&with(&["CAP_SYS_PTRACE"]), "process_vm_readv", ALLOW);
    check(&with(&["CAP_SYS_NICE"]), "mbind", ALLOW);
    check(&with(&["CAP_SYS_RAWIO"]), "iopl", ALLOW);
    check(&with(&["CAP_BPF"]), "bpf", ALLOW);
    check(&with(&["CAP_BPF"]), "mount", eperm);
    // Without CAP_SYS_CHROOT, chroot goes.
    check(&with(&[]), "chroot", eperm);
    // Even with every capability gate open, the never-allowed syscalls stay blocked.
    let every_gate = with(&[
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_MODULE",
        "CAP_SYS_TIME",
        "CAP_SYS_PTRACE",
        "CAP_SYS_NICE",
        "CAP_SYS_RAWIO",
        "CAP_DAC_READ_SEARCH",
        "CAP_SYS_PACCT",
        "CAP_SYS_TTY_CONFIG",
        "CAP_SYSLOG",
        "CAP_BPF",
        "CAP_PERFMON",
        "CAP_SYS_CHROOT",
    ]);
    for name in NEVER_ALLOWED {
        if let Some(number) = Abi::X86_64.number(name) {
            let got = run(every_gate.program(), &SeccompData::nr(number));
            assert_eq!(got, eperm, "{name}");
        }
        if let Some(number) = Abi::I386.number(name) {
            let got = run(every_gate.program(), &SeccompData::i386(number, &[]));
            assert_eq!(got, eperm, "i386 {name}");
        }
    }
}
