//! Validation: the spec's `linux.seccomp` section turned into per-ABI decisions.
//!
//! Semantics, for each syscall number of each ABI:
//! - rules with argument conditions are tried in profile order; the first one whose
//!   conditions all hold (AND) decides, so several rules for one syscall are an OR;
//! - then the rule without conditions, if any;
//! - then the default action.
//!
//! Two rules without conditions that give one syscall different actions are an error
//! rather than a silent pick. Syscall names an ABI does not know are skipped for that ABI
//! (the spec: they may be newer than the runtime).

use std::collections::BTreeMap;

use jaula_spec::{Seccomp, SyscallArg};
use jaula_sys::seccomp::FilterFlags;

use crate::{Abi, Action, Error};

/// An argument comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & value) == value_two`.
    MaskedEq,
}

/// One condition on one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ArgCond {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

/// Conditions that must all hold for `action` to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub conds: Vec<ArgCond>,
    pub action: Action,
}

/// Everything the profile says about one syscall number.
#[derive(Debug, Default)]
pub(crate) struct SyscallRules {
    pub conditional: Vec<Rule>,
    /// The unconditional action and the index of the rule that gave it.
    pub fallback: Option<(Action, usize)>,
}

/// The decisions for one ABI, by syscall number.
#[derive(Debug)]
pub(crate) struct AbiPlan {
    pub abi: Abi,
    pub syscalls: BTreeMap<u32, SyscallRules>,
}

/// A validated profile.
#[derive(Debug)]
pub(crate) struct Plan {
    pub default: Action,
    /// For syscalls of an ABI the profile does not list (incl. x32 when not listed).
    pub bad_arch: Action,
    /// For syscall numbers above the tables: ENOSYS unless the default lets them run.
    pub unknown_syscall: Action,
    /// x86_64 first (always present, like libseccomp's native arch), then the others.
    pub abis: Vec<AbiPlan>,
    pub flags: FilterFlags,
    pub ignored_syscalls: Vec<String>,
}

impl Plan {
    pub(crate) fn new(seccomp: &Seccomp) -> Result<Plan, Error> {
        if !cfg!(target_arch = "x86_64") {
            return Err(Error::UnsupportedHost);
        }
        let default = Action::parse(
            &seccomp.default_action,
            seccomp.default_errno_ret,
            "linux.seccomp.defaultAction",
        )?;
        if default == Action::Notify {
            return Err(Error::NotifyDefault);
        }
        let mut abis: Vec<AbiPlan> = parse_abis(&seccomp.architectures)?
            .into_iter()
            .map(|abi| AbiPlan {
                abi,
                syscalls: BTreeMap::new(),
            })
            .collect();
        let mut ignored_syscalls = Vec::new();
        let mut notify = false;
        for (index, rule) in seccomp.syscalls.iter().enumerate() {
            let key = format!("linux.seccomp.syscalls[{index}]");
            if rule.names.is_empty() {
                return Err(Error::NoNames { key });
            }
            let action = Action::parse(&rule.action, rule.errno_ret, &format!("{key}.action"))?;
            notify |= action == Action::Notify;
            let conds = rule
                .args
                .iter()
                .enumerate()
                .map(|(j, arg)| parse_arg(arg, &format!("{key}.args[{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            for name in &rule.names {
                for plan in &mut abis {
                    if let Some(nr) = plan.abi.number(name) {
                        let rules = plan.syscalls.entry(nr).or_default();
                        add_rule(rules, index, &conds, action);
                    }
                }
                if !Abi::ALL.iter().any(|abi| abi.number(name).is_some())
                    && !ignored_syscalls.contains(name)
                {
                    ignored_syscalls.push(name.clone());
                }
            }
        }
        Ok(Plan {
            default,
            bad_arch: Action::KillProcess,
            unknown_syscall: if default.lets_syscall_run() {
                default
            } else {
                Action::Errno(libc::ENOSYS as u16)
            },
            abis,
            flags: parse_flags(&seccomp.flags, notify)?,
            ignored_syscalls,
        })
    }

    /// The plan of `abi`, if the profile covers it.
    pub(crate) fn abi(&self, abi: Abi) -> Option<&AbiPlan> {
        self.abis.iter().find(|p| p.abi == abi)
    }
}

/// x86_64 plus the x86 ABIs named; foreign architectures are dropped.
fn parse_abis(names: &[String]) -> Result<Vec<Abi>, Error> {
    let mut abis = vec![Abi::X86_64];
    for name in names {
        match Abi::from_spec(name) {
            Ok(Some(abi)) if !abis.contains(&abi) => abis.push(abi),
            Ok(_) => {}
            Err(()) => return Err(Error::UnknownArch(name.clone())),
        }
    }
    Ok(abis)
}

fn parse_arg(arg: &SyscallArg, key: &str) -> Result<ArgCond, Error> {
    let op = match arg.op.as_str() {
        "SCMP_CMP_NE" => Op::Ne,
        "SCMP_CMP_LT" => Op::Lt,
        "SCMP_CMP_LE" => Op::Le,
        "SCMP_CMP_EQ" => Op::Eq,
        "SCMP_CMP_GE" => Op::Ge,
        "SCMP_CMP_GT" => Op::Gt,
        "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
        other => {
            return Err(Error::UnknownOperator {
                key: format!("{key}.op"),
                value: other.to_owned(),
            })
        }
    };
    // seccomp_data has six arguments.
    let index = u8::try_from(arg.index)
        .ok()
        .filter(|&i| i < 6)
        .ok_or_else(|| Error::ArgIndex {
            key: format!("{key}.index"),
            index: arg.index,
        })?;
    Ok(ArgCond {
        index,
        op,
        value: arg.value,
        value_two: arg.value_two,
    })
}

fn add_rule(rules: &mut SyscallRules, index: usize, conds: &[ArgCond], action: Action) {
    if !conds.is_empty() {
        let rule = Rule {
            conds: conds.to_vec(),
            action,
        };
        if !rules.conditional.contains(&rule) {
            rules.conditional.push(rule);
        }
        return;
    }
    // Two unconditional rules for one syscall (Podman's generated profiles have them,
    // e.g. setns allowed in the big list and refused without CAP_SYS_ADMIN): the more
    // restrictive action wins, in the kernel's own precedence for stacked filters.
    match rules.fallback {
        Some((first, _)) if action.precedence() >= first.precedence() => {}
        _ => rules.fallback = Some((action, index)),
    }
}

/// The seccomp(2) flags: the spec's, plus what NOTIFY needs.
fn parse_flags(names: &[String], notify: bool) -> Result<FilterFlags, Error> {
    let mut flags = FilterFlags::empty();
    let mut wait_killable = false;
    for name in names {
        flags = flags
            | match name.as_str() {
                "SECCOMP_FILTER_FLAG_TSYNC" => FilterFlags::TSYNC,
                "SECCOMP_FILTER_FLAG_LOG" => FilterFlags::LOG,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => FilterFlags::SPEC_ALLOW,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => {
                    wait_killable = true;
                    FilterFlags::empty()
                }
                other => return Err(Error::UnknownFlag(other.to_owned())),
            };
    }
    if notify {
        flags = flags | FilterFlags::NEW_LISTENER;
        // WAIT_KILLABLE_RECV only exists for listeners: the kernel refuses it alone, and
        // without a listener it would mean nothing, so it is dropped there.
        if wait_killable {
            flags = flags | FilterFlags::WAIT_KILLABLE_RECV;
        }
        // The kernel refuses TSYNC with NEW_LISTENER unless TSYNC failures are reported
        // as ESRCH (the return value is the listener fd, not a thread id).
        if flags.contains(FilterFlags::TSYNC) {
            flags = flags | FilterFlags::TSYNC_ESRCH;
        }
    }
    Ok(flags)
}
