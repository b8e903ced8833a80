//! The JIT's arithmetic, per instruction class, against values worked out
//! by hand from the ISA (and the interpreter agreeing on each).

mod jit_support;
mod support;

use jit_support::same;
use support::asm::*;

fn k64(op: u8, a: u64, imm: i32) -> u64 {
    same(prog![ld_imm64(0, a), alu64_imm(op, 0, imm), exit()]).unwrap()
}
fn x64(op: u8, off: i16, a: u64, b: u64) -> u64 {
    same(prog![ld_imm64(0, a), ld_imm64(4, b), with_off(alu64_reg(op, 0, 4), off), exit()]).unwrap()
}
fn k32(op: u8, off: i16, a: u64, imm: i32) -> u64 {
    same(prog![ld_imm64(0, a), with_off(alu32_imm(op, 0, imm), off), exit()]).unwrap()
}
fn x32(op: u8, off: i16, a: u64, b: u64) -> u64 {
    same(prog![ld_imm64(0, a), ld_imm64(1, b), with_off(alu32_reg(op, 0, 1), off), exit()]).unwrap()
}
/// `dst op= src` in registers other than r0: dst r3 (rdx), src r4 (rcx).
fn x64_in(op: u8, dst: u8, src: u8, a: u64, b: u64) -> u64 {
    let p = prog![ld_imm64(dst, a), ld_imm64(src, b), alu64_reg(op, dst, src), mov64_reg(0, dst), exit()];
    same(p).unwrap()
}

const MIN64: u64 = 1 << 63;

#[test]
fn add_sub_mul_logic_64() {
    assert_eq!(k64(ADD, 5, -7), (-2i64) as u64);
    assert_eq!(x64(SUB, 0, 3, 5), (-2i64) as u64);
    assert_eq!(x64(MUL, 0, 1 << 40, (1 << 30) + 3), 3 << 40);
    assert_eq!(k64(MUL, 7, -3), (-21i64) as u64);
    assert_eq!(x64(OR, 0, 0xf0, 0x0f), 0xff);
    assert_eq!(k64(AND, u64::MAX, -16), !15);
    assert_eq!(x64(XOR, 0, 0xff, 0x0f), 0xf0);
    assert_eq!(k64(MOV, 9, -1), u64::MAX);
    assert_eq!(k64(NEG, 5, 0), (-5i64) as u64);
}

#[test]
fn alu32_works_on_low_halves_and_zero_extends() {
    assert_eq!(x32(ADD, 0, 0xffff_ffff, 1), 0);
    assert_eq!(x32(SUB, 0, 0x1_0000_0000, 1), 0xffff_ffff);
    assert_eq!(x32(MOV, 0, 0, u64::MAX), 0xffff_ffff);
    assert_eq!(k32(MOV, 0, u64::MAX, -1), 0xffff_ffff);
    assert_eq!(x32(MUL, 0, 0x1_0000_0003, 0x2_0000_0005), 15);
    assert_eq!(k32(NEG, 0, 0xffff_ffff_0000_0001, 0), 0xffff_ffff);
    assert_eq!(k32(AND, 0, u64::MAX, -1), 0xffff_ffff);
}

#[test]
fn shifts_mask_their_counts_in_every_register() {
    assert_eq!(x64(LSH, 0, 1, 65), 2);
    assert_eq!(x32(LSH, 0, 1, 33), 2);
    assert_eq!(x64(RSH, 0, u64::MAX, 60), 0xf);
    assert_eq!(x64(ARSH, 0, MIN64, 63), u64::MAX);
    assert_eq!(x32(ARSH, 0, 0x8000_0000, 31), 0xffff_ffff);
    assert_eq!(k64(LSH, 3, 4), 48);
    assert_eq!(k32(RSH, 0, 0xffff_ffff_8000_0000, 31), 1);
    assert_eq!(k32(LSH, 0, 0xffff_ffff_0000_0001, 0), 1, "a 32-bit shift by 0 still zero-extends");
    assert_eq!(x32(LSH, 0, 0xffff_ffff_0000_0001, 32), 1, "count & 31 = 0 zero-extends too");
    // The count in r4 (rcx), the shifted value in r4, both in r4.
    assert_eq!(x64_in(LSH, 3, 4, 1, 5), 32);
    assert_eq!(x64_in(LSH, 4, 3, 1, 5), 32);
    assert_eq!(x64_in(RSH, 4, 3, 0x100, 4), 0x10);
    assert_eq!(x64_in(LSH, 6, 7, 3, 2), 12);
    let r4_kept = prog![
        mov64_imm(4, 9),
        mov64_imm(1, 1),
        mov64_imm(2, 3),
        alu64_reg(LSH, 1, 2),
        alu64_reg(ADD, 1, 4),
        mov64_reg(0, 1),
        exit()
    ];
    assert_eq!(same(r4_kept).unwrap(), 8 + 9, "r4 survives a shift by another register");
    let own = prog![mov32_imm(4, 3), alu32_reg(LSH, 4, 4), mov64_reg(0, 4), exit()];
    assert_eq!(same(own).unwrap(), 24);
}

#[test]
fn division_and_modulo_follow_the_kernel() {
    assert_eq!(x64(DIV, 0, 100, 7), 14);
    assert_eq!(x64(MOD, 0, 100, 7), 2);
    assert_eq!(x64(DIV, 0, 100, 0), 0, "by zero: 0");
    assert_eq!(x64(MOD, 0, 100, 0), 100, "by zero: the dividend");
    assert_eq!(x32(MOD, 0, 0xffff_ffff_0000_0064, 0), 100, "32-bit by zero: low half, zero-extended");
    assert_eq!(x32(DIV, 0, 0x5_0000_0064, 0x3_0000_0007), 14);
    assert_eq!(k64(DIV, u64::MAX, -1), 1, "64-bit unsigned by a sign-extended immediate");
    assert_eq!(k32(DIV, 0, 0xffff_ffff, -1), 1);
    assert_eq!(x64(DIV, 1, (-100i64) as u64, 7), (-14i64) as u64);
    assert_eq!(x64(MOD, 1, (-100i64) as u64, 7), (-2i64) as u64);
    assert_eq!(x64(DIV, 1, MIN64, u64::MAX), MIN64, "MIN / -1 wraps, no trap");
    assert_eq!(x64(MOD, 1, MIN64, u64::MAX), 0);
    assert_eq!(x32(DIV, 1, 0x8000_0000, 0xffff_ffff), 0x8000_0000);
    assert_eq!(x32(MOD, 1, 0x8000_0000, 0xffff_ffff), 0);
    assert_eq!(x32(DIV, 1, (-9i32) as u32 as u64, 2), (-4i32) as u32 as u64);
    assert_eq!(x64(DIV, 1, 5, 0), 0);
    assert_eq!(x64(MOD, 1, 5, 0), 5);
    assert_eq!(k32(MOD, 1, (-7i32) as u32 as u64, 3), (-1i32) as u32 as u64);
    // The registers division borrows (r0 = rax, r3 = rdx) keep their values.
    let p = prog![
        mov64_imm(0, 11),
        mov64_imm(3, 1000),
        mov64_imm(6, 70),
        mov64_imm(7, 8),
        alu64_reg(DIV, 6, 7),
        alu64_reg(ADD, 0, 3),
        alu64_reg(ADD, 0, 6),
        exit()
    ];
    assert_eq!(same(p).unwrap(), 11 + 1000 + 8);
    assert_eq!(x64_in(MOD, 3, 4, 100, 7), 2, "dividend in rdx");
    assert_eq!(x64_in(DIV, 4, 3, 100, 7), 14, "divisor in rdx");
    assert_eq!(x64_in(DIV, 3, 3, 9, 9), 1);
}

#[test]
fn movsx_and_byte_swaps() {
    assert_eq!(same(prog![ld_imm64(1, 0x80), movsx64(0, 1, 8), exit()]).unwrap(), 0xffff_ffff_ffff_ff80);
    assert_eq!(same(prog![ld_imm64(1, 0x8000), movsx64(0, 1, 16), exit()]).unwrap(), 0xffff_ffff_ffff_8000);
    assert_eq!(same(prog![ld_imm64(1, 0x8000_0000), movsx64(0, 1, 32), exit()]).unwrap(), 0xffff_ffff_8000_0000);
    assert_eq!(same(prog![ld_imm64(6, 0x1_0000_0080), movsx32(0, 6, 8), exit()]).unwrap(), 0xffff_ff80);
    assert_eq!(same(prog![ld_imm64(2, 0x8000), movsx32(0, 2, 16), exit()]).unwrap(), 0xffff_8000);
    let v = 0x0102_0304_0506_0708u64;
    assert_eq!(same(prog![ld_imm64(0, v), le(0, 16), exit()]).unwrap(), 0x0708);
    assert_eq!(same(prog![ld_imm64(0, v), le(0, 32), exit()]).unwrap(), 0x0506_0708);
    assert_eq!(same(prog![ld_imm64(0, v), le(0, 64), exit()]).unwrap(), v);
    assert_eq!(same(prog![ld_imm64(0, v), be(0, 16), exit()]).unwrap(), 0x0807);
    assert_eq!(same(prog![ld_imm64(0, v), be(0, 32), exit()]).unwrap(), 0x0807_0605);
    assert_eq!(same(prog![ld_imm64(0, v), be(0, 64), exit()]).unwrap(), 0x0807_0605_0403_0201);
    assert_eq!(same(prog![ld_imm64(7, v), bswap(7, 16), mov64_reg(0, 7), exit()]).unwrap(), 0x0807);
    assert_eq!(same(prog![ld_imm64(0, v), bswap(0, 64), exit()]).unwrap(), 0x0807_0605_0403_0201);
}

#[test]
fn r10_reads_as_the_frame_address() {
    assert_eq!(same(prog![mov64_reg(0, 10), exit()]).unwrap(), (1 << 32) | 512);
    assert_eq!(same(prog![mov64_imm(0, 1), alu64_reg(ADD, 0, 10), exit()]).unwrap(), (1 << 32) | 513);
}
