//! Arithmetic: ALU64 and ALU32 with the kernel's rules (32-bit results
//! zero-extended, shift counts masked, division by zero and signed
//! `MIN / -1` defined), movsx and the byte swaps.

use super::emit::{unsupported, Emitter};
use super::x86_64::{Alu, Cond, Reg, Rm, Shift, Width};
use crate::consts::{alu, class, src};
use crate::program::Insn;
use crate::retcode::LoadError;

impl Emitter<'_> {
    pub(super) fn alu(&mut self, pc: usize, i: Insn) -> Result<(), LoadError> {
        let w = if i.op & 7 == class::ALU64 { Width::Q } else { Width::W };
        let d = self.dst(pc, i)?;
        let x = i.op & src::X != 0;
        let op = i.op & 0xf0;
        match op {
            alu::END => self.byte_swap(d, i.imm, w == Width::Q || x),
            alu::NEG => self.a.neg(w, d),
            alu::DIV | alu::MOD => {
                if x {
                    let s = self.read(pc, i.src, Reg::R10)?;
                    self.a.mov(w, Reg::R11, s);
                } else if w == Width::Q {
                    self.a.mov_imm(Reg::R11, i.imm as i64 as u64);
                } else {
                    self.a.mov_imm32(Reg::R11, i.imm as u32);
                }
                self.divide(w, d, op == alu::MOD, i.off == 1);
            }
            alu::LSH | alu::RSH | alu::ARSH => {
                let kind = match op {
                    alu::LSH => Shift::Shl,
                    alu::RSH => Shift::Shr,
                    _ => Shift::Sar,
                };
                if x {
                    let s = self.read(pc, i.src, Reg::R10)?;
                    self.shift_by_reg(kind, w, d, s);
                } else {
                    let mask = if w == Width::Q { 63 } else { 31 };
                    let n = (i.imm & mask) as u8;
                    if n == 0 {
                        self.a.mov(w, d, d);
                    } else {
                        self.a.shift_imm(kind, w, d, n);
                    }
                }
            }
            alu::MOV if !x => {
                let v = crate::program::ops::sign_extend(i.imm as i64 as u64, i.off as u32);
                if w == Width::Q {
                    self.a.mov_imm(d, v);
                } else {
                    self.a.mov_imm32(d, v as u32);
                }
            }
            alu::MOV => {
                let s = self.read(pc, i.src, Reg::R10)?;
                match (i.off, w) {
                    (8, _) => self.a.movsx(w, Width::B, d, Rm::R(s)),
                    (16, _) => self.a.movsx(w, Width::H, d, Rm::R(s)),
                    (32, Width::Q) => self.a.movsx(w, Width::W, d, Rm::R(s)),
                    _ => self.a.mov(w, d, s),
                }
            }
            alu::MUL if x => {
                let s = self.read(pc, i.src, Reg::R10)?;
                self.a.imul(w, d, s);
            }
            alu::MUL => self.a.imul_imm(w, d, i.imm),
            _ => {
                let kind = match op {
                    alu::ADD => Alu::Add,
                    alu::SUB => Alu::Sub,
                    alu::OR => Alu::Or,
                    alu::AND => Alu::And,
                    alu::XOR => Alu::Xor,
                    _ => return Err(unsupported(pc)),
                };
                if x {
                    let s = self.read(pc, i.src, Reg::R10)?;
                    self.a.alu(kind, w, d, s);
                } else {
                    self.a.alu_imm(kind, w, Rm::R(d), i.imm);
                }
            }
        }
        Ok(())
    }

    /// END (to_le, to_be) and bswap of `d`, `bits` wide.
    fn byte_swap(&mut self, d: Reg, bits: i32, swap: bool) {
        match (bits, swap) {
            (16, false) => self.a.movzx(Width::H, d, Rm::R(d)),
            (32, false) => self.a.mov(Width::W, d, d),
            (16, true) => {
                self.a.shift_imm(Shift::Ror, Width::H, d, 8);
                self.a.movzx(Width::H, d, Rm::R(d));
            }
            (32, true) => self.a.bswap(Width::W, d),
            (_, true) => self.a.bswap(Width::Q, d),
            _ => {}
        }
    }

    /// `d <<= s` (or >>, arithmetic >>) with the count in cl, r4's rcx
    /// kept; 32-bit results zero-extended even for a count of 0.
    fn shift_by_reg(&mut self, kind: Shift, w: Width, d: Reg, s: Reg) {
        if s == Reg::RCX {
            self.a.shift_cl(kind, w, d);
        } else if d == Reg::RCX {
            self.a.mov(Width::Q, Reg::R11, Reg::RCX);
            self.a.mov(Width::Q, Reg::RCX, s);
            self.a.shift_cl(kind, w, Reg::R11);
            self.a.mov(w, Reg::RCX, Reg::R11);
            return;
        } else {
            self.a.mov(Width::Q, Reg::R11, Reg::RCX);
            self.a.mov(Width::Q, Reg::RCX, s);
            self.a.shift_cl(kind, w, d);
            self.a.mov(Width::Q, Reg::RCX, Reg::R11);
        }
        if w == Width::W {
            self.a.mov(w, d, d);
        }
    }

    /// `d = d / r11` or `d % r11` with the kernel's rules: by zero, a
    /// quotient of 0 and a remainder of `d`; signed `MIN / -1` wraps
    /// (x86 would trap), its remainder is 0.
    fn divide(&mut self, w: Width, d: Reg, modulo: bool, signed: bool) {
        let (zero, done) = (self.a.label(), self.a.label());
        self.a.push(Reg::RAX);
        self.a.push(Reg::RDX);
        if d != Reg::RAX {
            self.a.mov(Width::Q, Reg::RAX, d);
        }
        self.a.test(w, Reg::R11, Reg::R11);
        self.a.jcc(Cond::E, zero);
        let divide = self.a.label();
        if signed {
            self.a.alu_imm(Alu::Cmp, w, Rm::R(Reg::R11), -1);
            self.a.jcc(Cond::Ne, divide);
            if modulo {
                self.a.mov_imm32(Reg::RAX, 0);
            } else {
                self.a.neg(w, Reg::RAX);
            }
            self.a.jmp(done);
        }
        self.a.bind(divide);
        if signed {
            self.a.sign_extend_rax(w);
        } else {
            self.a.alu(Alu::Xor, Width::W, Reg::RDX, Reg::RDX);
        }
        self.a.div(w, Reg::R11, signed);
        if modulo {
            self.a.mov(Width::Q, Reg::RAX, Reg::RDX);
        }
        self.a.jmp(done);
        self.a.bind(zero);
        if !modulo {
            self.a.mov_imm32(Reg::RAX, 0);
        } else if w == Width::W {
            self.a.mov(w, Reg::RAX, Reg::RAX);
        }
        self.a.bind(done);
        self.a.mov(Width::Q, Reg::R11, Reg::RAX);
        self.a.pop(Reg::RDX);
        self.a.pop(Reg::RAX);
        self.a.mov(Width::Q, d, Reg::R11);
    }
}
