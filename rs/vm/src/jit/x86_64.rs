//! An x86-64 machine-code encoder: the few instruction forms the JIT emits,
//! with labels patched once the code is complete.
//!
//! Every method appends one instruction to [`Asm::code`]. Register operands
//! are [`Reg`] numbers as the hardware numbers them; memory operands are a
//! base register plus an optional scaled index and a 32-bit displacement.

use alloc::vec::Vec;

mod operands;
pub use operands::{Alu, Cond, Mem, Reg, Rm, Shift, Width};

/// A position in the code that jumps can target before it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(u32);

/// The code being assembled.
#[derive(Default)]
pub struct Asm {
    /// The machine code so far.
    pub code: Vec<u8>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    /// Empty code.
    pub fn new() -> Asm {
        Asm::default()
    }

    /// A label not yet placed.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() as u32 - 1)
    }

    /// Places `l` at the current position.
    pub fn bind(&mut self, l: Label) {
        self.labels[l.0 as usize] = Some(self.code.len());
    }

    /// The position `l` was placed at, if it was.
    pub fn position(&self, l: Label) -> Option<usize> {
        self.labels[l.0 as usize]
    }

    /// Patches every jump to its label; `None` if a label was never placed.
    pub fn finish(mut self) -> Option<Vec<u8>> {
        for &(at, l) in &self.fixups {
            let target = self.labels[l.0 as usize]?;
            let rel = target as i64 - (at as i64 + 4);
            self.code[at..at + 4].copy_from_slice(&(rel as i32).to_le_bytes());
        }
        self.fixups.clear();
        Some(self.code)
    }

    fn bytes(&mut self, b: &[u8]) {
        self.code.extend_from_slice(b);
    }

    fn rel32(&mut self, l: Label) {
        self.fixups.push((self.code.len(), l));
        self.bytes(&[0; 4]);
    }

    /// One instruction: prefixes, REX, `opcode`, ModRM (with `reg` in its
    /// reg field) and the r/m operand. `byte_regs` (byte operands: the reg
    /// field when `w` is B, a register r/m) forces a REX prefix so that
    /// registers 4-7 mean spl/bpl/sil/dil, not ah/ch/dh/bh.
    fn op(&mut self, w: Width, opcode: &[u8], reg: u8, rm: Rm, byte_regs: bool) {
        if w == Width::H {
            self.code.push(0x66);
        }
        let (b, x) = match rm {
            Rm::R(r) => (r.high(), false),
            Rm::M(m) => (m.base.high(), m.index.is_some_and(|(i, _)| i.high())),
        };
        let rex = 0x40 | ((w == Width::Q) as u8) << 3 | ((reg >= 8) as u8) << 2 | (x as u8) << 1 | b as u8;
        let low_byte_reg = |r: u8| (4..8).contains(&r);
        let needs_byte_rex =
            byte_regs && (w == Width::B && low_byte_reg(reg) || matches!(rm, Rm::R(r) if low_byte_reg(r.0)));
        if rex != 0x40 || needs_byte_rex {
            self.code.push(rex);
        }
        self.bytes(opcode);
        self.modrm(reg & 7, rm);
    }

    fn modrm(&mut self, reg: u8, rm: Rm) {
        let m = match rm {
            Rm::R(r) => {
                self.code.push(0xc0 | reg << 3 | r.low());
                return;
            }
            Rm::M(m) => m,
        };
        // rbp and r13 as a base need a displacement; rsp and r12 need a SIB.
        let md = if m.disp == 0 && m.base.low() != 5 {
            0
        } else if i8::try_from(m.disp).is_ok() {
            1
        } else {
            2
        };
        match m.index {
            Some((i, scale)) => {
                let ss = scale.trailing_zeros() as u8;
                self.code.push(md << 6 | reg << 3 | 4);
                self.code.push(ss << 6 | i.low() << 3 | m.base.low());
            }
            None if m.base.low() == 4 => {
                self.code.push(md << 6 | reg << 3 | 4);
                self.code.push(0x24);
            }
            None => self.code.push(md << 6 | reg << 3 | m.base.low()),
        }
        match md {
            1 => self.code.push(m.disp as i8 as u8),
            2 => self.bytes(&m.disp.to_le_bytes()),
            _ => {}
        }
    }

    /// `mov dst, src` (a 32-bit move zero-extends).
    pub fn mov(&mut self, w: Width, dst: Reg, src: Reg) {
        self.op(w, &[0x89], src.0, Rm::R(dst), false);
    }

    /// `mov dst, imm` choosing the shortest form for a 64-bit value.
    pub fn mov_imm(&mut self, dst: Reg, v: u64) {
        if let Ok(v32) = u32::try_from(v) {
            self.mov_imm32(dst, v32);
        } else if let Ok(s) = i32::try_from(v as i64) {
            self.op(Width::Q, &[0xc7], 0, Rm::R(dst), false);
            self.bytes(&s.to_le_bytes());
        } else {
            self.code.push(0x48 | dst.high() as u8);
            self.code.push(0xb8 + dst.low());
            self.bytes(&v.to_le_bytes());
        }
    }

    /// `mov dst32, imm32` (zero-extends).
    pub fn mov_imm32(&mut self, dst: Reg, v: u32) {
        if dst.high() {
            self.code.push(0x41);
        }
        self.code.push(0xb8 + dst.low());
        self.bytes(&v.to_le_bytes());
    }

    /// `op dst, src` for add, or, and, sub, xor, cmp.
    pub fn alu(&mut self, op: Alu, w: Width, dst: Reg, src: Reg) {
        self.op(w, &[(op as u8) << 3 | 1], src.0, Rm::R(dst), false);
    }

    /// `op reg, [mem]` for add, or, and, sub, xor, cmp.
    pub fn alu_load(&mut self, op: Alu, w: Width, reg: Reg, m: Mem) {
        self.op(w, &[(op as u8) << 3 | 3], reg.0, Rm::M(m), false);
    }

    /// `op r/m, imm` (a 64-bit op sign-extends the immediate).
    pub fn alu_imm(&mut self, op: Alu, w: Width, dst: Rm, imm: i32) {
        if let Ok(i) = i8::try_from(imm) {
            self.op(w, &[0x83], op as u8, dst, false);
            self.code.push(i as u8);
        } else {
            self.op(w, &[0x81], op as u8, dst, false);
            self.bytes(&imm.to_le_bytes());
        }
    }

    /// `test a, b`.
    pub fn test(&mut self, w: Width, a: Reg, b: Reg) {
        self.op(w, &[0x85], b.0, Rm::R(a), false);
    }

    /// `test a, imm` (64-bit: the immediate sign-extended).
    pub fn test_imm(&mut self, w: Width, a: Reg, imm: i32) {
        self.op(w, &[0xf7], 0, Rm::R(a), false);
        self.bytes(&imm.to_le_bytes());
    }

    /// `imul dst, src` (the low half, the same for signed and unsigned).
    pub fn imul(&mut self, w: Width, dst: Reg, src: Reg) {
        self.op(w, &[0x0f, 0xaf], dst.0, Rm::R(src), false);
    }

    /// `imul dst, dst, imm`.
    pub fn imul_imm(&mut self, w: Width, dst: Reg, imm: i32) {
        self.op(w, &[0x69], dst.0, Rm::R(dst), false);
        self.bytes(&imm.to_le_bytes());
    }

    /// `neg r/m`.
    pub fn neg(&mut self, w: Width, r: Reg) {
        self.op(w, &[0xf7], 3, Rm::R(r), false);
    }

    /// `div r` (unsigned; `idiv` when `signed`) of rdx:rax.
    pub fn div(&mut self, w: Width, r: Reg, signed: bool) {
        self.op(w, &[0xf7], if signed { 7 } else { 6 }, Rm::R(r), false);
    }

    /// `imul dst, [m]` (the low half).
    pub fn imul_mem(&mut self, w: Width, dst: Reg, m: Mem) {
        self.op(w, &[0x0f, 0xaf], dst.0, Rm::M(m), false);
    }

    /// `mul [m]`: `rdx:rax = rax * [m]`, unsigned.
    pub fn mul_mem(&mut self, w: Width, m: Mem) {
        self.op(w, &[0xf7], 4, Rm::M(m), false);
    }

    /// `movq xmm, r` (xmm registers are scratch space the code keeps
    /// registers in without touching memory).
    pub fn movq_to_xmm(&mut self, xmm: u8, r: Reg) {
        self.code.push(0x66);
        self.op(Width::Q, &[0x0f, 0x6e], xmm, Rm::R(r), false);
    }

    /// `movq r, xmm`.
    pub fn movq_from_xmm(&mut self, r: Reg, xmm: u8) {
        self.code.push(0x66);
        self.op(Width::Q, &[0x0f, 0x7e], xmm, Rm::R(r), false);
    }

    /// `cqo` (64) or `cdq` (32): sign-extends rax into rdx.
    pub fn sign_extend_rax(&mut self, w: Width) {
        if w == Width::Q {
            self.code.push(0x48);
        }
        self.code.push(0x99);
    }

    /// `shift dst, imm`.
    pub fn shift_imm(&mut self, s: Shift, w: Width, dst: Reg, imm: u8) {
        self.op(w, &[0xc1], s as u8, Rm::R(dst), false);
        self.code.push(imm);
    }

    /// `shift dst, cl`.
    pub fn shift_cl(&mut self, s: Shift, w: Width, dst: Reg) {
        self.op(w, &[0xd3], s as u8, Rm::R(dst), false);
    }

    /// `movzx dst32, src8/16` (zero-extends to 64).
    pub fn movzx(&mut self, from: Width, dst: Reg, src: Rm) {
        let opc = if from == Width::B { 0xb6 } else { 0xb7 };
        self.op(Width::W, &[0x0f, opc], dst.0, src, from == Width::B);
    }

    /// `movsx dst, src` from 8, 16 or 32 bits into a `to`-wide register
    /// (`to` W zero-extends the 32-bit result to 64).
    pub fn movsx(&mut self, to: Width, from: Width, dst: Reg, src: Rm) {
        match from {
            Width::B => self.op(to, &[0x0f, 0xbe], dst.0, src, true),
            Width::H => self.op(to, &[0x0f, 0xbf], dst.0, src, false),
            _ => self.op(Width::Q, &[0x63], dst.0, src, false),
        }
    }

    /// A zero-extending load of `w` bytes into `dst`.
    pub fn load(&mut self, w: Width, dst: Reg, m: Mem) {
        match w {
            Width::B | Width::H => self.movzx(w, dst, Rm::M(m)),
            _ => self.op(w, &[0x8b], dst.0, Rm::M(m), false),
        }
    }

    /// A store of the low `w` bytes of `src`.
    pub fn store(&mut self, w: Width, m: Mem, src: Reg) {
        let opc = if w == Width::B { 0x88 } else { 0x89 };
        self.op(w, &[opc], src.0, Rm::M(m), true);
    }

    /// A store of an immediate (64-bit: sign-extended 32-bit immediate).
    pub fn store_imm(&mut self, w: Width, m: Mem, imm: i32) {
        match w {
            Width::B => {
                self.op(w, &[0xc6], 0, Rm::M(m), false);
                self.code.push(imm as u8);
            }
            Width::H => {
                self.op(w, &[0xc7], 0, Rm::M(m), false);
                self.bytes(&(imm as u16).to_le_bytes());
            }
            _ => {
                self.op(w, &[0xc7], 0, Rm::M(m), false);
                self.bytes(&imm.to_le_bytes());
            }
        }
    }

    /// `lea dst, [mem]`.
    pub fn lea(&mut self, dst: Reg, m: Mem) {
        self.op(Width::Q, &[0x8d], dst.0, Rm::M(m), false);
    }

    /// `bswap r` (32 or 64 bits).
    pub fn bswap(&mut self, w: Width, r: Reg) {
        if w == Width::Q || r.high() {
            self.code.push(0x40 | ((w == Width::Q) as u8) << 3 | r.high() as u8);
        }
        self.bytes(&[0x0f, 0xc8 + r.low()]);
    }

    /// The `lock` prefix for the next instruction.
    pub fn lock(&mut self) {
        self.code.push(0xf0);
    }

    /// `xadd [m], r` (with [`Asm::lock`] before it).
    pub fn xadd(&mut self, w: Width, m: Mem, r: Reg) {
        self.op(w, &[0x0f, 0xc1], r.0, Rm::M(m), false);
    }

    /// `cmpxchg [m], r` (with [`Asm::lock`] before it).
    pub fn cmpxchg(&mut self, w: Width, m: Mem, r: Reg) {
        self.op(w, &[0x0f, 0xb1], r.0, Rm::M(m), false);
    }

    /// `xchg [m], r` (locked by the hardware).
    pub fn xchg(&mut self, w: Width, m: Mem, r: Reg) {
        self.op(w, &[0x87], r.0, Rm::M(m), false);
    }

    /// `op [m], r` for the locked non-fetching atomics (with [`Asm::lock`]).
    pub fn alu_store(&mut self, op: Alu, w: Width, m: Mem, r: Reg) {
        self.op(w, &[(op as u8) << 3 | 1], r.0, Rm::M(m), false);
    }

    /// `push r`.
    pub fn push(&mut self, r: Reg) {
        if r.high() {
            self.code.push(0x41);
        }
        self.code.push(0x50 + r.low());
    }

    /// `pop r`.
    pub fn pop(&mut self, r: Reg) {
        if r.high() {
            self.code.push(0x41);
        }
        self.code.push(0x58 + r.low());
    }

    /// `push qword [m]`.
    pub fn push_mem(&mut self, m: Mem) {
        self.op(Width::W, &[0xff], 6, Rm::M(m), false);
    }

    /// `pop qword [m]`.
    pub fn pop_mem(&mut self, m: Mem) {
        self.op(Width::W, &[0x8f], 0, Rm::M(m), false);
    }

    /// `jmp label`.
    pub fn jmp(&mut self, l: Label) {
        self.code.push(0xe9);
        self.rel32(l);
    }

    /// `jcc label`.
    pub fn jcc(&mut self, c: Cond, l: Label) {
        self.bytes(&[0x0f, 0x80 | c as u8]);
        self.rel32(l);
    }

    /// `call label`.
    pub fn call(&mut self, l: Label) {
        self.code.push(0xe8);
        self.rel32(l);
    }

    /// `call r`.
    pub fn call_reg(&mut self, r: Reg) {
        self.op(Width::W, &[0xff], 2, Rm::R(r), false);
    }

    /// `ret`.
    pub fn ret(&mut self) {
        self.code.push(0xc3);
    }
}

#[cfg(test)]
mod tests;
