//! Device access rules: v1 `devices.allow`/`devices.deny` lines, and for v2 an eBPF
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program built from the same rules.
//!
//! Semantics, on both versions: rules apply in spec order, a later rule overrides an earlier
//! one, each access bit (mknod, read, write) separately, and anything no rule mentions is
//! allowed, as in v1 where a new cgroup inherits its parent's (root: allow-all) list. Specs
//! therefore begin with "deny all" and then allow what the container may use.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use jaula_spec::DeviceCgroup;
use jaula_sys::bpf::{self, AluOp, AttachFlags, AttachType, Insn, JmpOp, ProgType, Reg, Size};

use crate::Error;

/// `BPF_DEVCG_DEV_BLOCK` / `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
/// `BPF_DEVCG_ACC_MKNOD` / `_READ` / `_WRITE`.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// One rule, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    allow: bool,
    /// `None` for "a" (all types).
    typ: Option<char>,
    major: Option<u32>,
    minor: Option<u32>,
    /// `ACC_*` bits.
    access: i32,
}

fn invalid(reason: String) -> Error {
    Error::Invalid {
        resource: "linux.resources.devices".into(),
        reason,
    }
}

fn parse(rule: &DeviceCgroup) -> Result<Rule, Error> {
    let typ = match rule.typ.as_deref().unwrap_or("a") {
        "a" => None,
        "b" => Some('b'),
        "c" => Some('c'),
        t => return Err(invalid(format!("device type {t:?} is not a, b or c"))),
    };
    // -1 is runc's spelling of "any", like an absent number.
    let number = |n: Option<i64>, what: &str| match n {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| invalid(format!("device {what} {n} is out of range"))),
    };
    let mut access = 0;
    for c in rule.access.as_deref().unwrap_or("rwm").chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            c => return Err(invalid(format!("device access {c:?} is not r, w or m"))),
        };
    }
    Ok(Rule {
        allow: rule.allow,
        typ,
        major: number(rule.major, "major")?,
        minor: number(rule.minor, "minor")?,
        access,
    })
}

/// The v1 `devices.allow`/`devices.deny` line for a rule, e.g. "c 1:3 rwm".
pub(crate) fn v1_rule(rule: &DeviceCgroup) -> Result<String, Error> {
    let r = parse(rule)?;
    let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
    let mut access = String::new();
    for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
        if r.access & bit != 0 {
            access.push(c);
        }
    }
    let typ = r.typ.unwrap_or('a');
    Ok(format!("{typ} {}:{} {access}", num(r.major), num(r.minor)))
}

/// Builds the device program. Registers: r2 device type, r3 requested access, r4 major,
/// r5 minor, r6 requested access bits not yet decided by a (later) rule.
/// Rules are checked from last to first: a matching deny that covers an undecided bit denies;
/// a matching allow decides its bits, and once every requested bit is allowed, access is granted.
pub(crate) fn program(rules: &[DeviceCgroup]) -> Result<Vec<Insn>, Error> {
    let rules = rules.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    let mut p = vec![
        Insn::ldx(Size::W, Reg::R2, Reg::R1, 0),
        Insn::alu_imm(AluOp::And, Reg::R2, 0xffff),
        Insn::ldx(Size::W, Reg::R3, Reg::R1, 0),
        Insn::alu_imm(AluOp::Rsh, Reg::R3, 16),
        Insn::ldx(Size::W, Reg::R4, Reg::R1, 4),
        Insn::ldx(Size::W, Reg::R5, Reg::R1, 8),
        Insn::mov(Reg::R6, Reg::R3),
    ];
    for rule in rules.iter().rev() {
        p.extend(rule_block(rule));
    }
    // No rule decided the remaining bits: the inherited default, allow.
    p.extend([Insn::mov_imm(Reg::R0, 1), Insn::exit()]);
    Ok(p)
}

fn rule_block(rule: &Rule) -> Vec<Insn> {
    let action = if rule.allow {
        vec![
            Insn::alu_imm(AluOp::And, Reg::R6, !rule.access),
            Insn::jmp_imm(JmpOp::Ne, Reg::R6, 0, 2),
            Insn::mov_imm(Reg::R0, 1),
            Insn::exit(),
        ]
    } else {
        vec![
            Insn::mov(Reg::R7, Reg::R6),
            Insn::alu_imm(AluOp::And, Reg::R7, rule.access),
            Insn::jmp_imm(JmpOp::Eq, Reg::R7, 0, 2),
            Insn::mov_imm(Reg::R0, 0),
            Insn::exit(),
        ]
    };
    let mut checks = Vec::new();
    if let Some(t) = rule.typ {
        checks.push((Reg::R2, if t == 'b' { DEV_BLOCK } else { DEV_CHAR }));
    }
    if let Some(m) = rule.major {
        checks.push((Reg::R4, m as i32));
    }
    if let Some(m) = rule.minor {
        checks.push((Reg::R5, m as i32));
    }
    let mut block = Vec::with_capacity(checks.len() + action.len());
    for (i, (reg, value)) in checks.iter().enumerate() {
        // Skip the rest of the checks and the whole action when this one does not match.
        let skip = (checks.len() - i - 1 + action.len()) as i16;
        block.push(Insn::jmp_imm(JmpOp::Ne, *reg, *value, skip));
    }
    block.extend(action);
    block
}

/// Loads the program for `rules` and attaches it to the v2 cgroup `dir`, then detaches the
/// programs that were there before (an `update` replaces the filter). `ALLOW_MULTI` lets a
/// nested runtime add its own, stricter filter below; it can never loosen this one.
pub(crate) fn install_v2(dir: &Path, rules: &[DeviceCgroup]) -> Result<(), Error> {
    let insns = program(rules)?;
    let bpf_err = |source| Error::DeviceFilter {
        path: dir.to_path_buf(),
        source,
    };
    let cgroup = File::open(dir).map_err(|source| Error::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    let old = bpf::prog_query(cgroup.as_fd(), AttachType::CgroupDevice).map_err(bpf_err)?;
    let prog =
        bpf::prog_load(ProgType::CgroupDevice, None, &insns, c"Apache-2.0").map_err(bpf_err)?;
    bpf::prog_attach(
        cgroup.as_fd(),
        prog.as_fd(),
        AttachType::CgroupDevice,
        AttachFlags::ALLOW_MULTI,
    )
    .map_err(bpf_err)?;
    for id in old {
        let fd = bpf::prog_get_fd_by_id(id).map_err(bpf_err)?;
        bpf::prog_detach(cgroup.as_fd(), fd.as_fd(), AttachType::CgroupDevice).map_err(bpf_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        typ: &str,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceCgroup {
        DeviceCgroup {
            allow,
            typ: Some(typ.into()),
            major,
            minor,
            access: Some(access.into()),
        }
    }

    #[test]
    fn v1_lines() {
        assert_eq!(
            v1_rule(&rule(false, "a", None, None, "rwm")).unwrap(),
            "a *:* rwm"
        );
        assert_eq!(
            v1_rule(&rule(true, "c", Some(1), Some(3), "mwr")).unwrap(),
            "c 1:3 rwm"
        );
        assert_eq!(
            v1_rule(&rule(true, "b", Some(8), Some(-1), "r")).unwrap(),
            "b 8:* r"
        );
        assert!(v1_rule(&rule(true, "x", None, None, "r")).is_err());
        assert!(v1_rule(&rule(true, "c", None, None, "rx")).is_err());
        assert!(v1_rule(&rule(true, "c", Some(-7), None, "r")).is_err());
    }

    /// Runs the program the way the kernel would, on one request, to check the semantics
    /// without loading it. Supports exactly the instructions `program` emits.
    fn run(p: &[Insn], typ: i32, access: i32, major: u32, minor: u32) -> u64 {
        let mut r = [0u64; 11];
        let ctx = [((access as u32) << 16 | typ as u32), major, minor];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (d, s) = (i.dst() as usize, i.src() as usize);
            pc += 1;
            match i.code {
                0x61 => r[d] = u64::from(ctx[i.off as usize / 4]),
                0x57 => r[d] &= i.imm as i64 as u64,
                0x77 => r[d] >>= i.imm,
                0xbf => r[d] = r[s],
                0xb7 => r[d] = i.imm as i64 as u64,
                0x55 if r[d] != i.imm as i64 as u64 => pc += i.off as usize,
                0x15 if r[d] == i.imm as i64 as u64 => pc += i.off as usize,
                0x55 | 0x15 => {}
                0x95 => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn later_rules_win_per_access_bit() {
        let rules = [
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), Some(3), "r"),
            rule(true, "c", Some(1), Some(3), "w"),
            rule(true, "c", Some(5), None, "rw"),
            rule(false, "c", Some(5), Some(2), "w"),
        ];
        let p = program(&rules).unwrap();
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(
            run(&p, DEV_CHAR, rw, 1, 3),
            1,
            "r and w allowed by two rules"
        );
        assert_eq!(run(&p, DEV_CHAR, ACC_MKNOD, 1, 3), 0, "mknod still denied");
        assert_eq!(
            run(&p, DEV_BLOCK, ACC_READ, 1, 3),
            0,
            "block 1:3 never allowed"
        );
        assert_eq!(run(&p, DEV_CHAR, rw, 5, 0), 1, "5:* allowed");
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 5, 2), 1, "5:2 read allowed");
        assert_eq!(run(&p, DEV_CHAR, rw, 5, 2), 0, "5:2 write denied");
        assert_eq!(
            run(&p, DEV_CHAR, ACC_READ, 4, 1),
            0,
            "everything else denied"
        );
    }

    #[test]
    fn no_deny_all_means_allow_by_default() {
        let p = program(&[rule(false, "c", Some(1), Some(3), "w")]).unwrap();
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 1, 3), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_WRITE, 8, 0), 1);
    }
}
