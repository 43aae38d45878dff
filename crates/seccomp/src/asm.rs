//! A classic-BPF assembler with labels and long-jump trampolines.
//!
//! Conditional jumps in classic BPF have 8-bit offsets (at most 255 instructions ahead);
//! only `JA` has a 32-bit one. Code generation therefore jumps to symbolic labels, and
//! [`Asm::assemble`] lays the program out, giving every conditional jump whose target is
//! too far a trampoline: the jump lands on a `JA` placed right after it. Inserting a
//! trampoline only ever lengthens distances, so iterating until nothing changes
//! terminates. All jumps go forward, as the kernel requires.

use jaula_sys::seccomp::{sock_filter, MAX_INSNS};

use crate::Error;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_ALU_AND_K: u16 = 0x54;
const BPF_JMP_JA: u16 = 0x05;
const BPF_RET_K: u16 = 0x06;
/// Largest offset of a conditional jump.
const MAX_SHORT_JUMP: usize = 255;

/// Conditional jump kinds (`BPF_JMP | op | BPF_K`), all comparing A with a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cond {
    /// A == k
    Eq,
    /// A > k (unsigned)
    Gt,
    /// A >= k (unsigned)
    Ge,
}

impl Cond {
    fn code(self) -> u16 {
        match self {
            Cond::Eq => 0x15,
            Cond::Gt => 0x25,
            Cond::Ge => 0x35,
        }
    }
}

/// A jump target, bound to a position with [`Asm::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Label(usize);

enum Item {
    Load(u32),
    And(u32),
    Jump {
        cond: Cond,
        k: u32,
        on_true: Label,
        on_false: Label,
    },
    Goto(Label),
    Ret(u32),
    Bind(Label),
}

/// A program under construction.
#[derive(Default)]
pub(crate) struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    /// A new, unbound label.
    pub(crate) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Binds `label` to the next instruction.
    pub(crate) fn bind(&mut self, label: Label) {
        self.items.push(Item::Bind(label));
    }

    /// A = the 32-bit word at `offset` of `seccomp_data`.
    pub(crate) fn load(&mut self, offset: u32) {
        self.items.push(Item::Load(offset));
    }

    /// A &= mask.
    pub(crate) fn and(&mut self, mask: u32) {
        self.items.push(Item::And(mask));
    }

    /// Goes to `on_true` if `A cond k`, else to `on_false`.
    pub(crate) fn jump(&mut self, cond: Cond, k: u32, on_true: Label, on_false: Label) {
        self.items.push(Item::Jump {
            cond,
            k,
            on_true,
            on_false,
        });
    }

    /// Goes to `label` unconditionally.
    pub(crate) fn goto(&mut self, label: Label) {
        self.items.push(Item::Goto(label));
    }

    /// Returns `value` (a `SECCOMP_RET_*`) to the kernel.
    pub(crate) fn ret(&mut self, value: u32) {
        self.items.push(Item::Ret(value));
    }

    /// Lays the program out and encodes it.
    pub(crate) fn assemble(self) -> Result<Vec<sock_filter>, Error> {
        let mut far = vec![(false, false); self.items.len()];
        let layout = loop {
            let layout = self.layout(&far)?;
            if !self.widen_far_jumps(&layout, &mut far)? {
                break layout;
            }
        };
        if layout.len > MAX_INSNS {
            return Err(Error::TooLong(layout.len));
        }
        self.encode(&layout, &far)
    }

    /// Addresses of items and labels given which jumps need trampolines.
    fn layout(&self, far: &[(bool, bool)]) -> Result<Layout, Error> {
        let mut item_addr = Vec::with_capacity(self.items.len());
        let mut label_addr = vec![None; self.labels];
        let mut addr = 0;
        for (item, &(far_t, far_f)) in self.items.iter().zip(far) {
            item_addr.push(addr);
            addr += match item {
                Item::Bind(label) => {
                    label_addr[label.0] = Some(addr);
                    0
                }
                Item::Jump { .. } => 1 + usize::from(far_t) + usize::from(far_f),
                _ => 1,
            };
        }
        let label_addr = label_addr
            .into_iter()
            .enumerate()
            .map(|(i, a)| a.ok_or_else(|| Error::Assembler(format!("label {i} is never bound"))))
            .collect::<Result<_, _>>()?;
        Ok(Layout {
            item_addr,
            label_addr,
            len: addr,
        })
    }

    /// Marks jumps whose targets are out of 8-bit reach; returns whether any changed.
    fn widen_far_jumps(&self, layout: &Layout, far: &mut [(bool, bool)]) -> Result<bool, Error> {
        let mut changed = false;
        for (i, item) in self.items.iter().enumerate() {
            if let Item::Jump {
                on_true, on_false, ..
            } = item
            {
                let from = layout.item_addr[i] + 1;
                let (far_t, far_f) = &mut far[i];
                if !*far_t && layout.distance(from, *on_true)? > MAX_SHORT_JUMP {
                    *far_t = true;
                    changed = true;
                }
                if !*far_f && layout.distance(from, *on_false)? > MAX_SHORT_JUMP {
                    *far_f = true;
                    changed = true;
                }
            }
        }
        Ok(changed)
    }

    fn encode(&self, layout: &Layout, far: &[(bool, bool)]) -> Result<Vec<sock_filter>, Error> {
        let mut out = Vec::with_capacity(layout.len);
        for (item, &(far_t, far_f)) in self.items.iter().zip(far) {
            match *item {
                Item::Bind(_) => {}
                Item::Load(offset) => out.push(insn(BPF_LD_W_ABS, offset)),
                Item::And(mask) => out.push(insn(BPF_ALU_AND_K, mask)),
                Item::Ret(value) => out.push(insn(BPF_RET_K, value)),
                Item::Goto(target) => {
                    let from = out.len() + 1;
                    out.push(goto(layout.distance(from, target)?)?);
                }
                Item::Jump {
                    cond,
                    k,
                    on_true,
                    on_false,
                } => {
                    let from = out.len() + 1;
                    // A far target is reached through the JA right after the jump (the
                    // true one first, then the false one).
                    let jt = if far_t {
                        0
                    } else {
                        layout.distance(from, on_true)?
                    };
                    let jf = match (far_t, far_f) {
                        (true, true) => 1,
                        (false, true) => 0,
                        _ => layout.distance(from, on_false)?,
                    };
                    out.push(sock_filter {
                        code: cond.code(),
                        jt: short(jt)?,
                        jf: short(jf)?,
                        k,
                    });
                    for (is_far, target) in [(far_t, on_true), (far_f, on_false)] {
                        if is_far {
                            let from = out.len() + 1;
                            out.push(goto(layout.distance(from, target)?)?);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

struct Layout {
    item_addr: Vec<usize>,
    label_addr: Vec<usize>,
    len: usize,
}

impl Layout {
    /// Forward distance from the instruction at `from` to `label`.
    fn distance(&self, from: usize, label: Label) -> Result<usize, Error> {
        let to = self.label_addr[label.0];
        to.checked_sub(from)
            .ok_or_else(|| Error::Assembler(format!("backward jump from {from} to {to}")))
    }
}

fn insn(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn goto(offset: usize) -> Result<sock_filter, Error> {
    let k = u32::try_from(offset).map_err(|_| Error::TooLong(offset))?;
    Ok(insn(BPF_JMP_JA, k))
}

fn short(offset: usize) -> Result<u8, Error> {
    u8::try_from(offset).map_err(|_| Error::Assembler(format!("short jump of {offset}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::{run, SeccompData};

    /// A program whose decision sits behind `filler` instructions: `A == 7 ? 1 : 2`.
    fn far_program(filler: usize) -> Vec<sock_filter> {
        let mut asm = Asm::default();
        let (yes, no, skip) = (asm.label(), asm.label(), asm.label());
        asm.load(0);
        asm.jump(Cond::Eq, 7, yes, no);
        asm.goto(skip);
        for _ in 0..filler {
            asm.ret(99);
        }
        asm.bind(skip);
        asm.bind(no);
        asm.ret(2);
        asm.bind(yes);
        asm.ret(1);
        asm.assemble().unwrap()
    }

    #[test]
    fn near_jumps_need_no_trampoline() {
        let prog = far_program(10);
        assert_eq!(prog.len(), 2 + 1 + 10 + 2);
        assert_eq!(run(&prog, &SeccompData::nr(7)), 1);
        assert_eq!(run(&prog, &SeccompData::nr(8)), 2);
    }

    #[test]
    fn far_jumps_go_through_trampolines() {
        for filler in [253, 254, 255, 256, 300, 1000] {
            let prog = far_program(filler);
            assert_eq!(run(&prog, &SeccompData::nr(7)), 1, "filler {filler}");
            assert_eq!(run(&prog, &SeccompData::nr(8)), 2, "filler {filler}");
            assert!(prog.len() <= 2 + 1 + filler + 2 + 2);
        }
    }

    #[test]
    fn unbound_labels_and_overlong_programs_are_errors() {
        let mut asm = Asm::default();
        let nowhere = asm.label();
        asm.goto(nowhere);
        assert!(matches!(asm.assemble(), Err(Error::Assembler(_))));

        let mut asm = Asm::default();
        for _ in 0..=MAX_INSNS {
            asm.ret(0);
        }
        assert!(matches!(asm.assemble(), Err(Error::TooLong(4097))));
    }

    #[test]
    fn backward_jumps_are_refused() {
        let mut asm = Asm::default();
        let back = asm.label();
        asm.bind(back);
        asm.ret(0);
        asm.goto(back);
        assert!(matches!(asm.assemble(), Err(Error::Assembler(_))));
    }
}
