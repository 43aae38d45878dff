//! The eBPF `cgroup/sock_addr` programs of isolated mode, assembled for one server's addresses.
//!
//! The addresses are compiled into the instructions as immediates: there are no maps, so
//! nothing can change a server's policy after attach except replacing its programs.
//! These hooks run when a socket calls bind(), connect() or (for unconnected UDP)
//! sendmsg(): an established TCP connection or a connected UDP socket costs nothing per
//! packet, and an unconnected UDP socket pays one short program run per sendmsg() call.
//!
//! Policy (Linux-VServer's chbind, restated):
//! - bind: the wildcard address becomes the server's first address of the family; the
//!   localhost address (127.0.0.1, ::1) becomes the server's loopback address if it has
//!   one; any other address the server does not own is refused with EPERM.
//! - connect: a connection to localhost goes to the server's loopback address instead;
//!   an unbound socket is bound (port left to the kernel) to the server's loopback address
//!   when talking to loopback, otherwise to its first address, with the `bpf_bind` helper.
//! - UDP sendmsg: the same destination remap, and the source becomes a server address
//!   unless it already is one.

use std::net::{Ipv4Addr, Ipv6Addr};

use jaula_sys::bpf::{AluOp, Helper, Insn, JmpOp, Reg, Size};

use crate::asm::{Asm, AsmError, Label};

/// Offsets in `struct bpf_sock_addr`.
const USER_IP4: i16 = 4;
const USER_IP6: i16 = 8;
const MSG_SRC_IP4: i16 = 40;
const MSG_SRC_IP6: i16 = 44;

const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;

/// The addresses a server owns, as its programs see them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrSet {
    /// IPv4 addresses; the first is the default.
    pub v4: Vec<Ipv4Addr>,
    /// IPv6 addresses; the first is the default.
    pub v6: Vec<Ipv6Addr>,
    /// Where 127.0.0.1 is redirected: the first owned address in 127.0.0.0/8.
    pub v4_loopback: Option<Ipv4Addr>,
    /// Where ::1 is redirected: the first owned IPv6 address that lives on `lo`.
    pub v6_loopback: Option<Ipv6Addr>,
}

/// A 4-byte network-order field as the program loads it into a register.
fn word4(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// The four 4-byte words of an IPv6 address, as loaded from the context.
fn words6(ip: Ipv6Addr) -> [u32; 4] {
    let o = ip.octets();
    std::array::from_fn(|i| {
        u32::from_ne_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
    })
}

/// Third word of a v4-mapped IPv6 address (`::ffff:a.b.c.d`).
fn mapped_word() -> u32 {
    u32::from_ne_bytes([0, 0, 0xff, 0xff])
}

const LOCALHOST4: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Registers holding the four words of an IPv6 address.
const V6_REGS: [Reg; 4] = [Reg::R2, Reg::R3, Reg::R4, Reg::R5];

/// Loads the IPv6 address at context offset `off` into [`V6_REGS`].
fn load6(a: &mut Asm, off: i16) {
    for (i, reg) in V6_REGS.iter().enumerate() {
        a.emit(Insn::ldx(Size::W, *reg, Reg::R6, off + 4 * i as i16));
    }
}

/// Jumps to `target` if [`V6_REGS`] hold `words`.
fn jump_if6(a: &mut Asm, words: [u32; 4], target: Label) {
    let next = a.label();
    for (reg, w) in V6_REGS.iter().zip(words) {
        a.jmp32_imm(JmpOp::Ne, *reg, w, next);
    }
    a.ja(target);
    a.bind(next);
}

/// Jumps to `target` if [`V6_REGS`] hold a v4-mapped address.
fn jump_if_mapped(a: &mut Asm, target: Label) {
    let next = a.label();
    a.jmp32_imm(JmpOp::Ne, Reg::R2, 0, next);
    a.jmp32_imm(JmpOp::Ne, Reg::R3, 0, next);
    a.jmp32_imm(JmpOp::Ne, Reg::R4, mapped_word(), next);
    a.ja(target);
    a.bind(next);
}

/// Stores a 32-bit constant into the context at `off`. The verifier forbids immediate
/// stores into the context, so the value goes through R1, free once R6 holds the context.
fn store_ctx(a: &mut Asm, off: i16, value: u32) {
    a.emit(Insn::mov_imm(Reg::R1, value as i32))
        .emit(Insn::stx(Size::W, Reg::R6, off, Reg::R1));
}

fn store_ctx6(a: &mut Asm, off: i16, words: [u32; 4]) {
    for (i, w) in words.iter().enumerate() {
        store_ctx(a, off + 4 * i as i16, *w);
    }
}

/// `bpf_bind(ctx, &sockaddr_in{addr, port 0}, 16)`: binds an unbound socket. Its result is
/// ignored on purpose: it fails only when the socket is already bound, and a bound socket
/// went through the bind program.
fn bind4(a: &mut Asm, addr: Ipv4Addr) {
    a.emit(Insn::st(Size::W, Reg::R10, -16, AF_INET))
        .emit(Insn::st(Size::W, Reg::R10, -12, word4(addr) as i32))
        .emit(Insn::st(Size::DW, Reg::R10, -8, 0));
    call_bind(a, -16, 16);
}

/// `bpf_bind(ctx, &sockaddr_in6{addr, port 0}, 28)`.
fn bind6(a: &mut Asm, words: [u32; 4]) {
    a.emit(Insn::st(Size::W, Reg::R10, -32, AF_INET6))
        .emit(Insn::st(Size::W, Reg::R10, -28, 0));
    for (i, w) in words.iter().enumerate() {
        a.emit(Insn::st(Size::W, Reg::R10, -24 + 4 * i as i16, *w as i32));
    }
    a.emit(Insn::st(Size::DW, Reg::R10, -8, 0));
    call_bind(a, -32, 28);
}

fn call_bind(a: &mut Asm, stack_off: i32, len: i32) {
    a.emit(Insn::mov(Reg::R1, Reg::R6))
        .emit(Insn::mov(Reg::R2, Reg::R10))
        .emit(Insn::alu_imm(AluOp::Add, Reg::R2, stack_off))
        .emit(Insn::mov_imm(Reg::R3, len))
        .emit(Insn::call(Helper::Bind));
}

/// Jumps to `target` if the IPv4 address in `reg` is in 127.0.0.0/8 (clobbers R8).
fn jump_if_loopback4(a: &mut Asm, reg: Reg, target: Label) {
    a.emit(Insn::mov(Reg::R8, reg))
        .emit(Insn::alu_imm(AluOp::And, Reg::R8, 0xff));
    a.jmp32_imm(JmpOp::Eq, Reg::R8, 127, target);
}

/// The program of a server without any address of the family: every call is refused.
/// (A generated program with such gaps would contain unreachable code, which the verifier
/// rejects.)
fn refuse_all() -> Result<Vec<Insn>, AsmError> {
    let mut a = Asm::new();
    a.ret(0);
    a.finish()
}

fn mapped(v4: Ipv4Addr) -> [u32; 4] {
    words6(v4.to_ipv6_mapped())
}

impl AddrSet {
    /// The IPv6 address a wildcard `::` bind becomes: the first IPv6 address, or the
    /// v4-mapped first IPv4 address for a server without IPv6.
    fn default6(&self) -> Option<[u32; 4]> {
        self.v6
            .first()
            .map(|ip| words6(*ip))
            .or_else(|| self.v4.first().map(|ip| mapped(*ip)))
    }

    /// bind4: rewrite 0.0.0.0 and 127.0.0.1, allow owned addresses, refuse the rest.
    pub fn bind4(&self) -> Result<Vec<Insn>, AsmError> {
        if self.v4.is_empty() {
            return refuse_all();
        }
        let mut a = Asm::new();
        let (allow, any, local) = (a.label(), a.label(), a.label());
        a.emit(Insn::mov(Reg::R6, Reg::R1))
            .emit(Insn::ldx(Size::W, Reg::R7, Reg::R6, USER_IP4));
        a.jmp32_imm(JmpOp::Eq, Reg::R7, 0, any);
        if self.v4_loopback.is_some() {
            a.jmp32_imm(JmpOp::Eq, Reg::R7, word4(LOCALHOST4), local);
        }
        for ip in &self.v4 {
            a.jmp32_imm(JmpOp::Eq, Reg::R7, word4(*ip), allow);
        }
        a.ret(0);
        a.bind(any);
        match self.v4.first() {
            Some(ip) => {
                store_ctx(&mut a, USER_IP4, word4(*ip));
                a.ja(allow);
            }
            None => a.ret(0),
        }
        a.bind(local);
        if let Some(lo) = self.v4_loopback {
            store_ctx(&mut a, USER_IP4, word4(lo));
            a.ja(allow);
        }
        a.bind(allow);
        a.ret(1);
        a.finish()
    }

    /// bind6: the same for IPv6 sockets, including v4-mapped addresses of dual-stack ones.
    pub fn bind6(&self) -> Result<Vec<Insn>, AsmError> {
        if self.v4.is_empty() && self.v6.is_empty() {
            return refuse_all();
        }
        let mut a = Asm::new();
        let (allow, any, local, is_mapped) = (a.label(), a.label(), a.label(), a.label());
        a.emit(Insn::mov(Reg::R6, Reg::R1));
        load6(&mut a, USER_IP6);
        jump_if6(&mut a, [0; 4], any);
        if self.v6_loopback.is_some() {
            jump_if6(&mut a, words6(Ipv6Addr::LOCALHOST), local);
        }
        for ip in &self.v6 {
            jump_if6(&mut a, words6(*ip), allow);
        }
        jump_if_mapped(&mut a, is_mapped);
        a.ret(0);

        a.bind(is_mapped);
        let mapped_local = a.label();
        if self.v4_loopback.is_some() {
            a.jmp32_imm(JmpOp::Eq, Reg::R5, word4(LOCALHOST4), mapped_local);
        }
        for ip in &self.v4 {
            a.jmp32_imm(JmpOp::Eq, Reg::R5, word4(*ip), allow);
        }
        a.ret(0);
        a.bind(mapped_local);
        if let Some(lo) = self.v4_loopback {
            store_ctx(&mut a, USER_IP6 + 12, word4(lo));
            a.ja(allow);
        }

        a.bind(any);
        match self.default6() {
            Some(words) => {
                store_ctx6(&mut a, USER_IP6, words);
                a.ja(allow);
            }
            None => a.ret(0),
        }
        a.bind(local);
        if let Some(lo) = self.v6_loopback {
            store_ctx6(&mut a, USER_IP6, words6(lo));
            a.ja(allow);
        }
        a.bind(allow);
        a.ret(1);
        a.finish()
    }

    /// Emits the IPv4 destination remap and source choice of connect4 and sendmsg4 for the
    /// destination in R7; jumps to `to_lo` or `to_default` for the source to use.
    fn remap_dst4(&self, a: &mut Asm, dst_off: i16, to_lo: Label, to_default: Label) {
        if let Some(lo) = self.v4_loopback {
            let keep = a.label();
            a.jmp32_imm(JmpOp::Ne, Reg::R7, word4(LOCALHOST4), keep);
            store_ctx(a, dst_off, word4(lo));
            a.ja(to_lo);
            a.bind(keep);
            jump_if_loopback4(a, Reg::R7, to_lo);
        }
        a.ja(to_default);
    }

    /// connect4: remap localhost, then bind an unbound socket to a server address.
    pub fn connect4(&self) -> Result<Vec<Insn>, AsmError> {
        if self.v4.is_empty() {
            return refuse_all();
        }
        let mut a = Asm::new();
        let (to_lo, to_default, done) = (a.label(), a.label(), a.label());
        a.emit(Insn::mov(Reg::R6, Reg::R1))
            .emit(Insn::ldx(Size::W, Reg::R7, Reg::R6, USER_IP4));
        self.remap_dst4(&mut a, USER_IP4, to_lo, to_default);
        a.bind(to_lo);
        if let Some(lo) = self.v4_loopback {
            bind4(&mut a, lo);
            a.ja(done);
        }
        a.bind(to_default);
        match self.v4.first() {
            Some(ip) => bind4(&mut a, *ip),
            // No IPv4 address: the server may not talk IPv4 at all.
            None => a.ret(0),
        }
        a.bind(done);
        a.ret(1);
        a.finish()
    }

    /// connect6: the same for IPv6 sockets; v4-mapped destinations get v4-mapped sources.
    pub fn connect6(&self) -> Result<Vec<Insn>, AsmError> {
        if self.v4.is_empty() && self.v6.is_empty() {
            return refuse_all();
        }
        let mut a = Asm::new();
        let done = a.label();
        let is_mapped = a.label();
        a.emit(Insn::mov(Reg::R6, Reg::R1));
        load6(&mut a, USER_IP6);
        jump_if_mapped(&mut a, is_mapped);

        // Native IPv6 destination.
        let (to_lo6, to_default6) = (a.label(), a.label());
        if let Some(lo) = self.v6_loopback {
            let keep = a.label();
            jump_if6(&mut a, words6(Ipv6Addr::LOCALHOST), keep);
            jump_if6(&mut a, words6(lo), to_lo6);
            a.ja(to_default6);
            a.bind(keep);
            store_ctx6(&mut a, USER_IP6, words6(lo));
            a.ja(to_lo6);
        } else {
            a.ja(to_default6);
        }
        a.bind(to_lo6);
        if let Some(lo) = self.v6_loopback {
            bind6(&mut a, words6(lo));
            a.ja(done);
        }
        a.bind(to_default6);
        match self.v6.first() {
            Some(ip) => {
                bind6(&mut a, words6(*ip));
                a.ja(done);
            }
            None => a.ret(0),
        }

        // v4-mapped destination: the IPv4 policy, with mapped addresses.
        a.bind(is_mapped);
        let (to_lo, to_default) = (a.label(), a.label());
        a.emit(Insn::mov(Reg::R7, Reg::R5));
        self.remap_dst4(&mut a, USER_IP6 + 12, to_lo, to_default);
        a.bind(to_lo);
        if let Some(lo) = self.v4_loopback {
            bind6(&mut a, mapped(lo));
            a.ja(done);
        }
        a.bind(to_default);
        match self.v4.first() {
            Some(ip) => bind6(&mut a, mapped(*ip)),
            None => a.ret(0),
        }
        a.bind(done);
        a.ret(1);
        a.finish()
    }

    /// sendmsg4: remap localhost; pin the source unless it already is a server address.
    pub fn sendmsg4(&self) -> Result<Vec<Insn>, AsmError> {
        if self.v4.is_empty() {
            return refuse_all();
        }
        let mut a = Asm::new();
        let (to_lo, to_default, done, choose) = (a.label(), a.label(), a.label(), a.label());
        a.emit(Insn::mov(Reg::R6, Reg::R1))
            .emit(Insn::ldx(Size::W, Reg::R7, Reg::R6, USER_IP4))
            .emit(Insn::ldx(Size::W, Reg::R9, Reg::R6, MSG_SRC_IP4));
        for ip in &self.v4 {
            a.jmp32_imm(JmpOp::Eq, Reg::R9, word4(*ip), done);
        }
        a.ja(choose);
        // The source is already ours: only the destination may need remapping.
        a.bind(done);
        if let Some(lo) = self.v4_loopback {
            let keep = a.label();
            a.jmp32_imm(JmpOp::Ne, Reg::R7, word4(LOCALHOST4), keep);
            store_ctx(&mut a, USER_IP4, word4(lo));
            a.bind(keep);
        }
        a.ret(1);

        a.bind(choose);
        self.remap_dst4(&mut a, USER_IP4, to_lo, to_default);
        a.bind(to_lo);
        let finish = a.label();
        if let Some(lo) = self.v4_loopback {
            store_ctx(&mut a, MSG_SRC_IP4, word4(lo));
            a.ja(finish);
        }
        a.bind(to_default);
        match self.v4.first() {
            Some(ip) => store_ctx(&mut a, MSG_SRC_IP4, word4(*ip)),
            None => a.ret(0),
        }
        a.bind(finish);
        a.ret(1);
        a.finish()
    }

    /// sendmsg6: the same for IPv6. v4-mapped destinations are left to sendmsg4, which the
    /// kernel runs for them.
    pub fn sendmsg6(&self) -> Result<Vec<Insn>, AsmError> {
        if self.v4.is_empty() && self.v6.is_empty() {
            return refuse_all();
        }
        let mut a = Asm::new();
        let (allow, choose, is_mapped) = (a.label(), a.label(), a.label());
        let (to_lo, to_default) = (a.label(), a.label());
        a.emit(Insn::mov(Reg::R6, Reg::R1));
        load6(&mut a, USER_IP6);
        jump_if_mapped(&mut a, is_mapped);
        // R9 = 1 when the destination is (or was remapped to) the server's loopback.
        a.emit(Insn::mov_imm(Reg::R9, 0));
        if let Some(lo) = self.v6_loopback {
            let (keep, mark) = (a.label(), a.label());
            jump_if6(&mut a, words6(lo), mark);
            jump_if6(&mut a, words6(Ipv6Addr::LOCALHOST), keep);
            a.ja(choose);
            a.bind(keep);
            store_ctx6(&mut a, USER_IP6, words6(lo));
            a.bind(mark);
            a.emit(Insn::mov_imm(Reg::R9, 1));
        }
        a.bind(choose);
        load6(&mut a, MSG_SRC_IP6);
        for ip in &self.v6 {
            jump_if6(&mut a, words6(*ip), allow);
        }
        if let Some(lo) = self.v6_loopback {
            a.jmp32_imm(JmpOp::Ne, Reg::R9, 1, to_default);
            a.bind(to_lo);
            store_ctx6(&mut a, MSG_SRC_IP6, words6(lo));
            a.ja(allow);
        } else {
            a.bind(to_lo);
        }
        a.bind(to_default);
        match self.v6.first() {
            Some(ip) => {
                store_ctx6(&mut a, MSG_SRC_IP6, words6(*ip));
                a.ja(allow);
            }
            None => a.ret(0),
        }
        a.bind(is_mapped);
        a.bind(allow);
        a.ret(1);
        a.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> AddrSet {
        AddrSet {
            v4: vec![Ipv4Addr::new(127, 0, 77, 1), Ipv4Addr::new(192, 0, 2, 7)],
            v6: vec!["fd00:77::1".parse().unwrap()],
            v4_loopback: Some(Ipv4Addr::new(127, 0, 77, 1)),
            v6_loopback: Some("fd00:77::1".parse().unwrap()),
        }
    }

    #[test]
    fn words_are_network_order_in_memory() {
        assert_eq!(
            word4(Ipv4Addr::new(127, 0, 0, 1)).to_ne_bytes(),
            [127, 0, 0, 1]
        );
        let w = words6("::ffff:1.2.3.4".parse().unwrap());
        assert_eq!(w[2], mapped_word());
        assert_eq!(w[3].to_ne_bytes(), [1, 2, 3, 4]);
    }

    #[test]
    fn every_program_assembles_and_returns() {
        for s in [set(), AddrSet::default()] {
            for prog in [
                s.bind4(),
                s.bind6(),
                s.connect4(),
                s.connect6(),
                s.sendmsg4(),
                s.sendmsg6(),
            ] {
                let prog = prog.unwrap();
                assert_eq!(prog.last(), Some(&Insn::exit()));
                // Every jump lands inside the program.
                for (i, insn) in prog.iter().enumerate() {
                    let class = insn.code & 0x07;
                    if (class == 0x05 || class == 0x06) && insn.code & 0xf0 < 0x80 {
                        let target = i as i64 + 1 + i64::from(insn.off);
                        assert!((0..prog.len() as i64).contains(&target), "{i}: {insn:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn bind4_compiles_each_owned_address_in() {
        let prog = set().bind4().unwrap();
        for ip in set().v4 {
            assert!(prog.iter().any(|i| i.imm == word4(ip) as i32), "{ip}");
        }
    }

    #[test]
    fn server_without_ipv4_refuses_ipv4_connects() {
        let s = AddrSet {
            v6: vec!["fd00::5".parse().unwrap()],
            ..Default::default()
        };
        let prog = s.connect4().unwrap();
        assert!(
            !prog.iter().any(|i| i.code == 0x85),
            "no bpf_bind call without an address"
        );
    }
}
