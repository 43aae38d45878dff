//! A tiny eBPF assembler: emits instructions and resolves jumps to named labels.
//!
//! The isolation programs branch a lot (one compare per owned address); counting jump
//! offsets by hand would be the main source of bugs, so jumps name a [`Label`] instead.

use jaula_sys::bpf::{Insn, JmpOp, Reg};

/// A jump target; bound to a position with [`Asm::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Label(usize);

/// Errors of assembling: always a bug in the program generator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    #[error("jump to label {0} which was never bound")]
    Unbound(usize),
    #[error("jump from instruction {from} to label {label} is out of range")]
    Range { from: usize, label: usize },
}

#[derive(Debug, Default)]
pub(crate) struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    pub(crate) fn new() -> Asm {
        Asm::default()
    }

    pub(crate) fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Makes `label` point at the next emitted instruction.
    pub(crate) fn bind(&mut self, label: Label) {
        self.labels[label.0] = Some(self.insns.len());
    }

    pub(crate) fn emit(&mut self, insn: Insn) -> &mut Asm {
        self.insns.push(insn);
        self
    }

    /// `if (u32)reg OP imm goto label`.
    pub(crate) fn jmp32_imm(&mut self, op: JmpOp, reg: Reg, imm: u32, label: Label) {
        self.fixups.push((self.insns.len(), label));
        self.insns.push(Insn::jmp32_imm(op, reg, imm as i32, 0));
    }

    /// `goto label`.
    pub(crate) fn ja(&mut self, label: Label) {
        self.fixups.push((self.insns.len(), label));
        self.insns.push(Insn::ja(0));
    }

    /// `return value`.
    pub(crate) fn ret(&mut self, value: i32) {
        self.emit(Insn::mov_imm(Reg::R0, value)).emit(Insn::exit());
    }

    /// Resolves every jump and returns the program.
    pub(crate) fn finish(mut self) -> Result<Vec<Insn>, AsmError> {
        for &(at, label) in &self.fixups {
            let target = self.labels[label.0].ok_or(AsmError::Unbound(label.0))?;
            let off = target as i64 - (at as i64 + 1);
            self.insns[at].off = i16::try_from(off).map_err(|_| AsmError::Range {
                from: at,
                label: label.0,
            })?;
        }
        Ok(self.insns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_forward_and_backward_jumps() {
        let mut a = Asm::new();
        let top = a.label();
        let end = a.label();
        a.bind(top);
        a.jmp32_imm(JmpOp::Eq, Reg::R1, 5, end); // 0 -> 3
        a.emit(Insn::mov_imm(Reg::R1, 5)); // 1
        a.ja(top); // 2 -> 0
        a.bind(end);
        a.ret(1); // 3, 4
        let p = a.finish().unwrap();
        assert_eq!(p.len(), 5);
        assert_eq!(p[0].off, 2);
        assert_eq!(p[2].off, -3);
    }

    #[test]
    fn unbound_label_is_an_error() {
        let mut a = Asm::new();
        let nowhere = a.label();
        a.ja(nowhere);
        assert_eq!(a.finish(), Err(AsmError::Unbound(0)));
    }
}
