//! Lowering a validated plan to classic BPF.
//!
//! Layout (the filter runs on every syscall, so the common path is short):
//!
//! ```text
//!   A = arch; x86_64? -> X64;  i386? -> I386;  else bad-arch
//! X64:  A = nr; nr >= 0x40000000 -> HIGH; <x86_64 search tree>
//! HIGH: nr == -1 -> unknown; <x32 search tree> or bad-arch when x32 is not listed
//! I386: A = nr; <i386 search tree>
//! ```
//!
//! Each ABI's syscall numbers are cut into segments of equal outcome (a return value, or
//! the argument checks of one syscall), gaps and numbers above the table included; a
//! binary search over segment starts (`JGE`) reaches any outcome in about log2(segments)
//! jumps. Decisions that depend only on the number stay argument-free, which lets the
//! kernel's per-syscall action cache skip the filter for always-allowed syscalls.

use jaula_sys::seccomp::sock_filter;

use crate::arch::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use crate::asm::{Asm, Cond, Label};
use crate::plan::{AbiPlan, ArgCond, Op, Plan, SyscallRules};
use crate::{Abi, Error};

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// Compiles `plan` into a program.
pub(crate) fn generate(plan: &Plan) -> Result<Vec<sock_filter>, Error> {
    let mut gen = Gen {
        asm: Asm::default(),
        plan,
    };
    gen.program();
    gen.asm.assemble()
}

struct Gen<'p> {
    asm: Asm,
    plan: &'p Plan,
}

/// What a range of syscall numbers gets.
#[derive(Clone, Copy)]
enum Outcome<'p> {
    Ret(u32),
    Rules(&'p SyscallRules),
}

/// Numbers from `start` up to the next segment's start.
struct Segment<'p> {
    start: u32,
    outcome: Outcome<'p>,
}

impl<'p> Gen<'p> {
    fn program(&mut self) {
        let plan = self.plan;
        let (x86_64, bad_arch) = (self.asm.label(), self.asm.label());
        self.asm.load(OFF_ARCH);
        let i386 = plan.abi(Abi::I386).map(|p| (p, self.asm.label()));
        match i386 {
            Some((_, i386_label)) => {
                let next = self.asm.label();
                self.asm.jump(Cond::Eq, AUDIT_ARCH_X86_64, x86_64, next);
                self.asm.bind(next);
                self.asm
                    .jump(Cond::Eq, AUDIT_ARCH_I386, i386_label, bad_arch);
            }
            None => self.asm.jump(Cond::Eq, AUDIT_ARCH_X86_64, x86_64, bad_arch),
        }
        self.asm.bind(bad_arch);
        self.asm.ret(plan.bad_arch.ret_value());

        self.asm.bind(x86_64);
        self.asm.load(OFF_NR);
        let (high, low) = (self.asm.label(), self.asm.label());
        self.asm.jump(Cond::Ge, X32_SYSCALL_BIT, high, low);
        self.asm.bind(low);
        if let Some(native) = plan.abi(Abi::X86_64) {
            self.section(native, 0, X32_SYSCALL_BIT - 1);
        }

        // Numbers with the x32 bit: x32 syscalls, or -1 (a tracer's "skip this syscall",
        // which libseccomp also lets through to the normal decision).
        self.asm.bind(high);
        let (minus_one, x32) = (self.asm.label(), self.asm.label());
        self.asm.jump(Cond::Eq, u32::MAX, minus_one, x32);
        self.asm.bind(x32);
        match plan.abi(Abi::X32) {
            Some(x32_plan) => self.section(x32_plan, X32_SYSCALL_BIT, u32::MAX - 1),
            // Without this check x32 syscalls would bypass the x86_64 rules entirely.
            None => self.asm.ret(plan.bad_arch.ret_value()),
        }
        self.asm.bind(minus_one);
        self.asm.ret(plan.unknown_syscall.ret_value());

        if let Some((i386_plan, i386_label)) = i386 {
            self.asm.bind(i386_label);
            self.asm.load(OFF_NR);
            self.section(i386_plan, 0, u32::MAX);
        }
    }

    /// Code for the syscall numbers `lo..=hi` of one ABI; A holds the number.
    fn section(&mut self, abi: &'p AbiPlan, lo: u32, hi: u32) {
        let segments = self.segments(abi, lo, hi);
        self.tree(&segments, abi.abi.wide_args());
    }

    fn segments(&self, abi: &'p AbiPlan, lo: u32, hi: u32) -> Vec<Segment<'p>> {
        let default = self.plan.default.ret_value();
        // Ranges with a fixed outcome, sorted: the profile's syscalls, then the numbers
        // above the table (never overlapping: tables hold every listed syscall).
        let mut special: Vec<(u32, u32, Outcome<'p>)> = abi
            .syscalls
            .iter()
            .filter(|(&nr, _)| (lo..=hi).contains(&nr))
            .map(|(&nr, rules)| (nr, nr, self.outcome(rules)))
            .collect();
        let unknown = Outcome::Ret(self.plan.unknown_syscall.ret_value());
        for (first, last) in abi.abi.unknown_ranges() {
            let (first, last) = (first.max(lo), last.min(hi));
            if first <= last {
                special.push((first, last, unknown));
            }
        }
        special.sort_by_key(|&(first, _, _)| first);

        let mut segments: Vec<Segment<'p>> = Vec::new();
        let mut push = |start: u32, outcome: Outcome<'p>| match (segments.last(), outcome) {
            (
                Some(Segment {
                    outcome: Outcome::Ret(prev),
                    ..
                }),
                Outcome::Ret(this),
            ) if *prev == this => {}
            _ => segments.push(Segment { start, outcome }),
        };
        let mut next = Some(lo);
        for (first, last, outcome) in special {
            if let Some(cursor) = next.filter(|&c| c < first) {
                push(cursor, Outcome::Ret(default));
            }
            push(first, outcome);
            next = last.checked_add(1).filter(|&n| n <= hi);
        }
        if let Some(cursor) = next {
            push(cursor, Outcome::Ret(default));
        }
        segments
    }

    fn outcome(&self, rules: &'p SyscallRules) -> Outcome<'p> {
        if rules.conditional.is_empty() {
            let action = rules.fallback.map_or(self.plan.default, |(a, _)| a);
            Outcome::Ret(action.ret_value())
        } else {
            Outcome::Rules(rules)
        }
    }

    /// Binary search over segment starts.
    fn tree(&mut self, segments: &[Segment<'p>], wide: bool) {
        if let [only] = segments {
            match only.outcome {
                Outcome::Ret(value) => self.asm.ret(value),
                Outcome::Rules(rules) => self.rules(rules, wide),
            }
            return;
        }
        let mid = segments.len() / 2;
        let (upper, lower) = (self.asm.label(), self.asm.label());
        self.asm.jump(Cond::Ge, segments[mid].start, upper, lower);
        self.asm.bind(lower);
        self.tree(&segments[..mid], wide);
        self.asm.bind(upper);
        self.tree(&segments[mid..], wide);
    }

    /// One syscall's conditional rules in order, then its fallback.
    fn rules(&mut self, rules: &SyscallRules, wide: bool) {
        for rule in &rules.conditional {
            let next_rule = self.asm.label();
            for cond in &rule.conds {
                self.cond(cond, wide, next_rule);
            }
            self.asm.ret(rule.action.ret_value());
            self.asm.bind(next_rule);
        }
        let fallback = rules.fallback.map_or(self.plan.default, |(a, _)| a);
        self.asm.ret(fallback.ret_value());
    }

    /// Falls through when `cond` holds, jumps to `fail` otherwise. With `wide` arguments
    /// the 64-bit comparison is done on the high half first, then the low half;
    /// otherwise (i386) on the low halves only, as 32-bit values.
    fn cond(&mut self, cond: &ArgCond, wide: bool, fail: Label) {
        let lo_off = OFF_ARGS + 8 * u32::from(cond.index);
        let hi_off = lo_off + 4;
        let (v_lo, v_hi) = split(cond.value);
        let ok = self.asm.label();
        match cond.op {
            Op::Eq | Op::Ne => {
                let (equal, differ) = if cond.op == Op::Eq {
                    (ok, fail)
                } else {
                    (fail, ok)
                };
                if wide {
                    self.asm.load(hi_off);
                    let next = self.asm.label();
                    self.asm.jump(Cond::Eq, v_hi, next, differ);
                    self.asm.bind(next);
                }
                self.asm.load(lo_off);
                self.asm.jump(Cond::Eq, v_lo, equal, differ);
            }
            Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                // arg > v (or >=) is "holds"; < and <= are their negations.
                let (strict, above, not_above) = match cond.op {
                    Op::Gt => (true, ok, fail),
                    Op::Ge => (false, ok, fail),
                    Op::Lt => (false, fail, ok),
                    _ => (true, fail, ok),
                };
                if wide {
                    self.asm.load(hi_off);
                    let (hi_not_greater, hi_equal) = (self.asm.label(), self.asm.label());
                    self.asm.jump(Cond::Gt, v_hi, above, hi_not_greater);
                    self.asm.bind(hi_not_greater);
                    self.asm.jump(Cond::Eq, v_hi, hi_equal, not_above);
                    self.asm.bind(hi_equal);
                }
                self.asm.load(lo_off);
                let low_cond = if strict { Cond::Gt } else { Cond::Ge };
                self.asm.jump(low_cond, v_lo, above, not_above);
            }
            Op::MaskedEq => {
                let (m_lo, m_hi) = split(cond.value);
                let (d_lo, d_hi) = split(cond.value_two);
                if wide {
                    self.masked_half(hi_off, m_hi, d_hi, fail);
                }
                self.masked_half(lo_off, m_lo, d_lo, fail);
                self.asm.goto(ok);
            }
        }
        self.asm.bind(ok);
    }

    /// Falls through when `(word & mask) == datum`, else jumps to `fail`.
    fn masked_half(&mut self, offset: u32, mask: u32, datum: u32, fail: Label) {
        if datum & !mask != 0 {
            // Bits outside the mask can never be set in the masked word.
            self.asm.goto(fail);
            return;
        }
        if mask == 0 {
            // 0 == datum (which is 0 here): always true, nothing to load.
            return;
        }
        self.asm.load(offset);
        if mask != u32::MAX {
            self.asm.and(mask);
        }
        let next = self.asm.label();
        self.asm.jump(Cond::Eq, datum, next, fail);
        self.asm.bind(next);
    }
}

/// (low, high) 32-bit halves.
fn split(value: u64) -> (u32, u32) {
    (value as u32, (value >> 32) as u32)
}
