//! A tiny assembler for tests: one function per instruction form, each
//! returning the [`Insn`] (ld_imm64 forms return both halves), and
//! [`prog!`] to put them in a program:
//!
//! ```ignore
//! let p = prog![mov64_imm(0, 1), ld_imm64(1, 0x1_0000_0000), alu64_reg(ADD, 0, 1), exit()];
//! ```

use proctap_vm::consts::{alu, atomic, class, jmp, mode, pseudo, size, src};
use proctap_vm::program::Insn;

#[allow(unused_imports)]
pub use proctap_vm::consts::alu::*;
#[allow(unused_imports)]
pub use proctap_vm::consts::jmp::{JA, JEQ, JGE, JGT, JLE, JLT, JNE, JSET, JSGE, JSGT, JSLE, JSLT};
#[allow(unused_imports)]
pub use proctap_vm::consts::size::{B, DW, H, W};

/// Something a program is made of: one instruction or an ld_imm64's two.
pub trait Emit {
    /// Appends the instruction(s) to `out`.
    fn emit(self, out: &mut Vec<Insn>);
}

impl Emit for Insn {
    fn emit(self, out: &mut Vec<Insn>) {
        out.push(self);
    }
}

impl Emit for [Insn; 2] {
    fn emit(self, out: &mut Vec<Insn>) {
        out.extend(self);
    }
}

impl Emit for Vec<Insn> {
    fn emit(self, out: &mut Vec<Insn>) {
        out.extend(self);
    }
}

/// A program from instructions and ld_imm64 pairs.
macro_rules! prog {
    ($($e:expr),* $(,)?) => {{
        let mut v: Vec<proctap_vm::program::Insn> = Vec::new();
        $( $crate::support::asm::Emit::emit($e, &mut v); )*
        v
    }};
}
#[allow(unused_imports)]
pub(crate) use prog;

/// Any instruction, field by field.
pub fn insn(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { op, dst, src, off, imm }
}

/// 64-bit `dst op= imm`.
pub fn alu64_imm(op: u8, dst: u8, imm: i32) -> Insn {
    insn(class::ALU64 | op | src::K, dst, 0, 0, imm)
}
/// 64-bit `dst op= src`.
pub fn alu64_reg(op: u8, dst: u8, s: u8) -> Insn {
    insn(class::ALU64 | op | src::X, dst, s, 0, 0)
}
/// 32-bit `dst op= imm`.
pub fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
    insn(class::ALU | op | src::K, dst, 0, 0, imm)
}
/// 32-bit `dst op= src`.
pub fn alu32_reg(op: u8, dst: u8, s: u8) -> Insn {
    insn(class::ALU | op | src::X, dst, s, 0, 0)
}
/// The same instruction with `off` set (signed div/mod: 1; movsx: 8/16/32).
pub fn with_off(mut i: Insn, off: i16) -> Insn {
    i.off = off;
    i
}
/// `dst = imm` (sign-extended to 64 bits).
pub fn mov64_imm(dst: u8, imm: i32) -> Insn {
    alu64_imm(alu::MOV, dst, imm)
}
/// `dst = src`.
pub fn mov64_reg(dst: u8, s: u8) -> Insn {
    alu64_reg(alu::MOV, dst, s)
}
/// `w(dst) = imm` (zero-extended).
pub fn mov32_imm(dst: u8, imm: i32) -> Insn {
    alu32_imm(alu::MOV, dst, imm)
}
/// `w(dst) = w(src)`.
pub fn mov32_reg(dst: u8, s: u8) -> Insn {
    alu32_reg(alu::MOV, dst, s)
}
/// movsx: `dst = (s8/s16/s32) src`.
pub fn movsx64(dst: u8, s: u8, bits: i16) -> Insn {
    with_off(mov64_reg(dst, s), bits)
}
/// movsx, 32-bit: `w(dst) = (s8/s16) w(src)`.
pub fn movsx32(dst: u8, s: u8, bits: i16) -> Insn {
    with_off(mov32_reg(dst, s), bits)
}
/// `dst = -dst`, 64-bit.
pub fn neg64(dst: u8) -> Insn {
    alu64_imm(alu::NEG, dst, 0)
}
/// `dst = -dst`, 32-bit.
pub fn neg32(dst: u8) -> Insn {
    alu32_imm(alu::NEG, dst, 0)
}
/// to_le (truncate to `bits`).
pub fn le(dst: u8, bits: i32) -> Insn {
    insn(class::ALU | alu::END | src::K, dst, 0, 0, bits)
}
/// to_be (swap the low `bits`).
pub fn be(dst: u8, bits: i32) -> Insn {
    insn(class::ALU | alu::END | src::X, dst, 0, 0, bits)
}
/// bswap (cpu v4).
pub fn bswap(dst: u8, bits: i32) -> Insn {
    insn(class::ALU64 | alu::END | src::K, dst, 0, 0, bits)
}

/// `dst = imm64`.
pub fn ld_imm64(dst: u8, v: u64) -> [Insn; 2] {
    [insn(class::LD | size::DW, dst, 0, 0, v as u32 as i32), insn(0, 0, 0, 0, (v >> 32) as u32 as i32)]
}
/// `dst = map id`'s handle (BPF_PSEUDO_MAP_FD).
pub fn ld_map_fd(dst: u8, id: u32) -> [Insn; 2] {
    [insn(class::LD | size::DW, dst, pseudo::MAP_FD, 0, id as i32), insn(0, 0, 0, 0, 0)]
}
/// `dst = &map id's value + off` (BPF_PSEUDO_MAP_VALUE).
pub fn ld_map_value(dst: u8, id: u32, off: u32) -> [Insn; 2] {
    [insn(class::LD | size::DW, dst, pseudo::MAP_VALUE, 0, id as i32), insn(0, 0, 0, 0, off as i32)]
}
/// `dst = the function at pc + 1 + rel` (BPF_PSEUDO_FUNC).
pub fn ld_func(dst: u8, rel: i32) -> [Insn; 2] {
    [insn(class::LD | size::DW, dst, 4, 0, rel), insn(0, 0, 0, 0, 0)]
}

/// `dst = *(size *)(src + off)`.
pub fn ldx(sz: u8, dst: u8, s: u8, off: i16) -> Insn {
    insn(class::LDX | mode::MEM | sz, dst, s, off, 0)
}
/// `dst = *(signed size *)(src + off)`, sign-extended.
pub fn ldsx(sz: u8, dst: u8, s: u8, off: i16) -> Insn {
    insn(class::LDX | mode::MEMSX | sz, dst, s, off, 0)
}
/// `*(size *)(dst + off) = src`.
pub fn stx(sz: u8, dst: u8, s: u8, off: i16) -> Insn {
    insn(class::STX | mode::MEM | sz, dst, s, off, 0)
}
/// `*(size *)(dst + off) = imm`.
pub fn st(sz: u8, dst: u8, off: i16, imm: i32) -> Insn {
    insn(class::ST | mode::MEM | sz, dst, 0, off, imm)
}
/// An atomic `op` (consts::atomic, with FETCH or not) on `*(size *)(dst + off)` with `src`.
pub fn atomic_op(sz: u8, dst: u8, s: u8, off: i16, op: i32) -> Insn {
    insn(class::STX | mode::ATOMIC | sz, dst, s, off, op)
}
/// Atomic exchange.
pub fn xchg(sz: u8, dst: u8, s: u8, off: i16) -> Insn {
    atomic_op(sz, dst, s, off, atomic::XCHG)
}
/// Atomic compare (with r0) and exchange.
pub fn cmpxchg(sz: u8, dst: u8, s: u8, off: i16) -> Insn {
    atomic_op(sz, dst, s, off, atomic::CMPXCHG)
}

/// `goto pc + 1 + off`.
pub fn ja(off: i16) -> Insn {
    insn(class::JMP | jmp::JA, 0, 0, off, 0)
}
/// `gotol pc + 1 + imm` (cpu v4).
pub fn gotol(imm: i32) -> Insn {
    insn(class::JMP32 | jmp::JA, 0, 0, 0, imm)
}
/// `if dst op imm goto +off`, 64-bit.
pub fn jmp_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    insn(class::JMP | op | src::K, dst, 0, off, imm)
}
/// `if dst op src goto +off`, 64-bit.
pub fn jmp_reg(op: u8, dst: u8, s: u8, off: i16) -> Insn {
    insn(class::JMP | op | src::X, dst, s, off, 0)
}
/// `if w(dst) op imm goto +off`.
pub fn jmp32_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    insn(class::JMP32 | op | src::K, dst, 0, off, imm)
}
/// `if w(dst) op w(src) goto +off`.
pub fn jmp32_reg(op: u8, dst: u8, s: u8, off: i16) -> Insn {
    insn(class::JMP32 | op | src::X, dst, s, off, 0)
}
/// Calls helper `id`.
pub fn call(id: u32) -> Insn {
    insn(class::JMP | jmp::CALL, 0, 0, 0, id as i32)
}
/// Calls the subprogram at `pc + 1 + rel`.
pub fn call_local(rel: i32) -> Insn {
    insn(class::JMP | jmp::CALL, 0, pseudo::CALL, 0, rel)
}
/// Returns r0.
pub fn exit() -> Insn {
    insn(class::JMP | jmp::EXIT, 0, 0, 0, 0)
}
