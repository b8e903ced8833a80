//! The interpreter's arithmetic: ALU64, ALU32, signed div/mod, movsx,
//! negation, END/bswap, against values worked out by hand from the ISA.

mod support;

use support::asm::*;
use support::run;

/// r0 after `dst = a; dst op= imm`, 64-bit.
fn alu64_k(op: u8, a: u64, imm: i32) -> u64 {
    run(support::asm::prog![ld_imm64(0, a), alu64_imm(op, 0, imm), exit()]).unwrap()
}

/// r0 after `r0 = a; r1 = b; r0 op= r1`, 64-bit (off for signed forms).
fn alu64_x(op: u8, off: i16, a: u64, b: u64) -> u64 {
    run(support::asm::prog![ld_imm64(0, a), ld_imm64(1, b), with_off(alu64_reg(op, 0, 1), off), exit()]).unwrap()
}

/// The same, 32-bit.
fn alu32_x(op: u8, off: i16, a: u64, b: u64) -> u64 {
    run(support::asm::prog![ld_imm64(0, a), ld_imm64(1, b), with_off(alu32_reg(op, 0, 1), off), exit()]).unwrap()
}

#[test]
fn alu64_basic_operations() {
    assert_eq!(alu64_k(ADD, 5, -7), (-2i64) as u64);
    assert_eq!(alu64_x(SUB, 0, 3, 5), (-2i64) as u64);
    assert_eq!(alu64_x(MUL, 0, 1 << 40, 1 << 30), 0);
    assert_eq!(alu64_x(OR, 0, 0xf0, 0x0f), 0xff);
    assert_eq!(alu64_x(AND, 0, 0xf0f0, 0xff00), 0xf000);
    assert_eq!(alu64_x(XOR, 0, 0xff, 0x0f), 0xf0);
    assert_eq!(alu64_k(MOV, 9, -1), u64::MAX, "mov imm sign-extends in ALU64");
}

#[test]
fn alu32_zero_extends_and_truncates() {
    assert_eq!(alu32_x(ADD, 0, 0xffff_ffff, 1), 0);
    assert_eq!(alu32_x(SUB, 0, 0x1_0000_0000, 1), 0xffff_ffff);
    assert_eq!(alu32_x(MOV, 0, 0, u64::MAX), 0xffff_ffff);
    assert_eq!(run(support::asm::prog![mov32_imm(0, -1), exit()]).unwrap(), 0xffff_ffff);
    assert_eq!(alu32_x(MUL, 0, 0x1_0000_0003, 0x2_0000_0005), 15);
}

#[test]
fn shifts_mask_their_count() {
    assert_eq!(alu64_x(LSH, 0, 1, 65), 2, "64-bit shift count & 63");
    assert_eq!(alu32_x(LSH, 0, 1, 33), 2, "32-bit shift count & 31");
    assert_eq!(alu64_x(RSH, 0, u64::MAX, 60), 0xf);
    assert_eq!(alu64_x(ARSH, 0, 0x8000_0000_0000_0000, 63), u64::MAX);
    assert_eq!(alu32_x(ARSH, 0, 0x8000_0000, 31), 0xffff_ffff);
    assert_eq!(alu32_x(RSH, 0, 0xffff_ffff_8000_0000, 31), 1, "only the low half shifts");
}

#[test]
fn division_and_modulo_by_zero_follow_the_kernel() {
    assert_eq!(alu64_x(DIV, 0, 7, 0), 0);
    assert_eq!(alu64_x(MOD, 0, 7, 0), 7);
    assert_eq!(alu32_x(DIV, 0, 7, 0), 0);
    assert_eq!(alu32_x(MOD, 0, 0xffff_ffff_0000_0007, 0), 7, "32-bit mod by 0 zero-extends dst");
    assert_eq!(alu64_x(DIV, 1, 7, 0), 0, "signed");
    assert_eq!(alu64_x(MOD, 1, (-7i64) as u64, 0), (-7i64) as u64);
}

#[test]
fn signed_division_and_modulo() {
    assert_eq!(alu64_x(DIV, 1, (-7i64) as u64, 2), (-3i64) as u64);
    assert_eq!(alu64_x(MOD, 1, (-7i64) as u64, 2), (-1i64) as u64);
    assert_eq!(alu64_x(DIV, 0, (-7i64) as u64, 2), ((-7i64) as u64) / 2, "off 0 is unsigned");
    assert_eq!(alu64_x(DIV, 1, i64::MIN as u64, u64::MAX), i64::MIN as u64, "INT_MIN / -1 wraps");
    assert_eq!(alu64_x(MOD, 1, i64::MIN as u64, u64::MAX), 0);
    assert_eq!(alu32_x(DIV, 1, 0x8000_0000, 0xffff_ffff), 0x8000_0000);
    assert_eq!(alu32_x(MOD, 1, (-7i32) as u32 as u64, 3), (-1i32) as u32 as u64);
}

#[test]
fn negation() {
    assert_eq!(run(support::asm::prog![mov64_imm(0, 5), neg64(0), exit()]).unwrap(), (-5i64) as u64);
    assert_eq!(run(support::asm::prog![mov64_imm(0, 5), neg32(0), exit()]).unwrap(), 0xffff_fffb);
}

#[test]
fn movsx_sign_extends_8_16_32() {
    let sx = |bits, v: u64, wide: bool| {
        let m = if wide { movsx64(0, 1, bits) } else { movsx32(0, 1, bits) };
        run(support::asm::prog![ld_imm64(1, v), m, exit()]).unwrap()
    };
    assert_eq!(sx(8, 0x180, true), 0xffff_ffff_ffff_ff80);
    assert_eq!(sx(16, 0x1_8000, true), 0xffff_ffff_ffff_8000);
    assert_eq!(sx(32, 0x1_8000_0000, true), 0xffff_ffff_8000_0000);
    assert_eq!(sx(8, 0x7f, true), 0x7f);
    assert_eq!(sx(8, 0x80, false), 0xffff_ff80, "32-bit movsx zero-extends the 32-bit result");
    assert_eq!(sx(16, 0xffff_8000, false), 0xffff_8000);
}

#[test]
fn end_and_bswap() {
    let v = 0x0123_4567_89ab_cdef;
    let one = |i| run(support::asm::prog![ld_imm64(0, v), i, exit()]).unwrap();
    assert_eq!(one(le(0, 16)), 0xcdef);
    assert_eq!(one(le(0, 32)), 0x89ab_cdef);
    assert_eq!(one(le(0, 64)), v);
    assert_eq!(one(be(0, 16)), 0xefcd);
    assert_eq!(one(be(0, 32)), 0xefcd_ab89);
    assert_eq!(one(be(0, 64)), 0xefcd_ab89_6745_2301);
    assert_eq!(one(bswap(0, 16)), 0xefcd);
    assert_eq!(one(bswap(0, 32)), 0xefcd_ab89);
    assert_eq!(one(bswap(0, 64)), 0xefcd_ab89_6745_2301);
}

#[test]
fn ld_imm64_loads_all_64_bits() {
    assert_eq!(run(support::asm::prog![ld_imm64(0, 0x1122_3344_5566_7788), exit()]).unwrap(), 0x1122_3344_5566_7788);
}
