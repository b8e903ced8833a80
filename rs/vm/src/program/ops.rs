//! The arithmetic and comparisons of the instruction set as the kernel
//! defines them, as pure functions: the interpreter executes them and the
//! JIT's tests can use them as the reference.
//!
//! - 32-bit operations work on the low halves and zero-extend the result.
//! - Shift counts are masked to the operand width (`& 31`, `& 63`).
//! - Division by zero gives 0; modulo by zero leaves the dividend (for
//!   32-bit modulo, its low half, zero-extended). Signed division of the
//!   smallest integer by -1 wraps (no trap), signed modulo gives 0.
//! - `off` selects the signed forms of DIV and MOD (`off == 1`) and the
//!   sign extension of MOV (`off` = 8, 16 or 32 bits: movsx).

use crate::consts::{alu, jmp};

/// `v`'s low `bits` bits, sign-extended to 64.
#[inline]
pub fn sign_extend(v: u64, bits: u32) -> u64 {
    match bits {
        8 => v as i8 as i64 as u64,
        16 => v as i16 as i64 as u64,
        32 => v as i32 as i64 as u64,
        _ => v,
    }
}

/// A 64-bit ALU operation `op` (the opcode's bits 4-7) of `dst` and `src`.
/// END is handled by [`byte_swap`].
#[inline]
pub fn alu64(op: u8, off: i16, dst: u64, src: u64) -> u64 {
    let signed = off == 1;
    match op {
        alu::ADD => dst.wrapping_add(src),
        alu::SUB => dst.wrapping_sub(src),
        alu::MUL => dst.wrapping_mul(src),
        alu::DIV if src == 0 => 0,
        alu::DIV if signed => (dst as i64).wrapping_div(src as i64) as u64,
        alu::DIV => dst / src,
        alu::MOD if src == 0 => dst,
        alu::MOD if signed => (dst as i64).wrapping_rem(src as i64) as u64,
        alu::MOD => dst % src,
        alu::OR => dst | src,
        alu::AND => dst & src,
        alu::XOR => dst ^ src,
        alu::LSH => dst << (src & 63),
        alu::RSH => dst >> (src & 63),
        alu::ARSH => ((dst as i64) >> (src & 63)) as u64,
        alu::NEG => (dst as i64).wrapping_neg() as u64,
        alu::MOV => sign_extend(src, off as u32),
        _ => dst,
    }
}

/// A 32-bit ALU operation: on the low halves, the result zero-extended.
#[inline]
pub fn alu32(op: u8, off: i16, dst: u64, src: u64) -> u64 {
    let (d, s) = (dst as u32, src as u32);
    let signed = off == 1;
    let r = match op {
        alu::ADD => d.wrapping_add(s),
        alu::SUB => d.wrapping_sub(s),
        alu::MUL => d.wrapping_mul(s),
        alu::DIV if s == 0 => 0,
        alu::DIV if signed => (d as i32).wrapping_div(s as i32) as u32,
        alu::DIV => d / s,
        alu::MOD if s == 0 => d,
        alu::MOD if signed => (d as i32).wrapping_rem(s as i32) as u32,
        alu::MOD => d % s,
        alu::OR => d | s,
        alu::AND => d & s,
        alu::XOR => d ^ s,
        alu::LSH => d << (s & 31),
        alu::RSH => d >> (s & 31),
        alu::ARSH => ((d as i32) >> (s & 31)) as u32,
        alu::NEG => (d as i32).wrapping_neg() as u32,
        alu::MOV => sign_extend(s as u64, off as u32) as u32,
        _ => d,
    };
    r as u64
}

/// END and bswap: `to_be` swaps (on this little-endian ISA: to_be and
/// ALU64 bswap), otherwise the value is only truncated to `bits` (to_le).
#[inline]
pub fn byte_swap(dst: u64, bits: i32, to_be: bool) -> u64 {
    match (bits, to_be) {
        (16, false) => dst as u16 as u64,
        (32, false) => dst as u32 as u64,
        (16, true) => (dst as u16).swap_bytes() as u64,
        (32, true) => (dst as u32).swap_bytes() as u64,
        (_, true) => dst.swap_bytes(),
        _ => dst,
    }
}

/// Whether the conditional jump `op` is taken; `wide` for JMP (64-bit
/// compares), otherwise JMP32 (the low halves).
#[inline]
pub fn jump_taken(op: u8, wide: bool, dst: u64, src: u64) -> bool {
    if !wide {
        let (d, s) = (dst as u32, src as u32);
        return compare(op, d as u64, s as u64, d as i32 as i64, s as i32 as i64);
    }
    compare(op, dst, src, dst as i64, src as i64)
}

#[inline]
fn compare(op: u8, du: u64, su: u64, ds: i64, ss: i64) -> bool {
    match op {
        jmp::JEQ => du == su,
        jmp::JNE => du != su,
        jmp::JSET => du & su != 0,
        jmp::JGT => du > su,
        jmp::JGE => du >= su,
        jmp::JLT => du < su,
        jmp::JLE => du <= su,
        jmp::JSGT => ds > ss,
        jmp::JSGE => ds >= ss,
        jmp::JSLT => ds < ss,
        jmp::JSLE => ds <= ss,
        _ => false,
    }
}

/// An atomic read-modify-write `op` (an STX | ATOMIC `imm` without FETCH)
/// of `old` with `src`: the value stored. XCHG stores `src`; CMPXCHG is
/// handled by the engine.
#[inline]
pub fn atomic_result(op: i32, old: u64, src: u64) -> u64 {
    use crate::consts::atomic;
    match op & !atomic::FETCH {
        atomic::ADD => old.wrapping_add(src),
        atomic::OR => old | src,
        atomic::AND => old & src,
        atomic::XOR => old ^ src,
        _ => src,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_extension_widths() {
        assert_eq!(sign_extend(0x80, 8), u64::MAX << 7);
        assert_eq!(sign_extend(0x7fff, 16), 0x7fff);
        assert_eq!(sign_extend(0xffff_ffff, 32), u64::MAX);
        assert_eq!(sign_extend(0x1234, 0), 0x1234, "off 0 is a plain move");
    }

    #[test]
    fn byte_swaps() {
        assert_eq!(byte_swap(0x1122_3344_5566_7788, 16, false), 0x7788);
        assert_eq!(byte_swap(0x1122_3344_5566_7788, 16, true), 0x8877);
        assert_eq!(byte_swap(0x1122_3344_5566_7788, 64, true), 0x8877_6655_4433_2211);
    }

    #[test]
    fn atomic_results() {
        use crate::consts::atomic;
        assert_eq!(atomic_result(atomic::ADD | atomic::FETCH, 2, 3), 5);
        assert_eq!(atomic_result(atomic::XCHG, 2, 3), 3);
        assert_eq!(atomic_result(atomic::AND, 6, 3), 2);
    }
}
