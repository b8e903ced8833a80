//! Property tests: the interpreter's arithmetic and compares against a
//! reference model written from the ISA's definitions; the safety pass
//! and the interpreter never panic, whatever the bytes.

mod support;

use proctap_vm::map::MapTable;
use proctap_vm::program::{Env, Insn, Program};
use proptest::prelude::*;
use support::asm::*;
use support::fake_os::FakeOs;

/// The reference model of one ALU operation: 128-bit arithmetic, then the
/// width's truncation; signed forms through i128.
fn model(op: u8, wide: bool, signed: bool, dst: u64, src: u64) -> u64 {
    let bits: u32 = if wide { 64 } else { 32 };
    let mask: u128 = if wide { u64::MAX as u128 } else { u32::MAX as u128 };
    let (d, s) = (dst as u128 & mask, src as u128 & mask);
    let sd = if wide { dst as i64 as i128 } else { dst as i32 as i128 };
    let ss = if wide { src as i64 as i128 } else { src as i32 as i128 };
    let r: u128 = match op {
        ADD => d + s,
        SUB => d.wrapping_sub(s),
        MUL => d * s,
        DIV if s == 0 => 0,
        DIV if signed => (sd / ss) as u128,
        DIV => d / s,
        MOD if s == 0 => d,
        MOD if signed => (sd % ss) as u128,
        MOD => d % s,
        OR => d | s,
        AND => d & s,
        XOR => d ^ s,
        LSH => d << (s % bits as u128),
        RSH => d >> (s % bits as u128),
        ARSH => (sd >> (s % bits as u128)) as u128,
        MOV => s,
        NEG => (-sd) as u128,
        _ => unreachable!(),
    };
    (r & mask) as u64
}

const OPS: [u8; 14] = [ADD, SUB, MUL, DIV, MOD, OR, AND, XOR, LSH, RSH, ARSH, MOV, NEG, DIV];

fn run_plain(insns: Vec<Insn>) -> u64 {
    support::run(insns).unwrap()
}

/// An operand that is often an edge case.
fn operand() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(0u64),
        Just(u64::MAX),
        Just(i64::MIN as u64),
        Just(0x8000_0000u64),
        Just(0xffff_ffffu64),
        (0u64..70),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn alu_register_forms_match_the_model(op in prop::sample::select(OPS.to_vec()), wide: bool, signed: bool,
                                          a in operand(), b in operand()) {
        let signed = signed && (op == DIV || op == MOD);
        let i = match (op, wide) {
            (NEG, true) => neg64(0),
            (NEG, false) => neg32(0),
            (_, true) => with_off(alu64_reg(op, 0, 1), signed as i16),
            (_, false) => with_off(alu32_reg(op, 0, 1), signed as i16),
        };
        let got = run_plain(prog![ld_imm64(0, a), ld_imm64(1, b), i, exit()]);
        prop_assert_eq!(got, model(op, wide, signed, a, b));
    }

    #[test]
    fn alu_immediate_forms_match_the_model(op in prop::sample::select(OPS.to_vec()), wide: bool, signed: bool,
                                           a in operand(), imm: i32) {
        prop_assume!(op != NEG);
        let signed = signed && (op == DIV || op == MOD);
        let bits = if wide { 64 } else { 32 };
        let imm = match op {
            LSH | RSH | ARSH => imm.rem_euclid(bits),
            DIV | MOD if imm == 0 => 1,
            _ => imm,
        };
        let i = if wide { alu64_imm(op, 0, imm) } else { alu32_imm(op, 0, imm) };
        let got = run_plain(prog![ld_imm64(0, a), with_off(i, signed as i16), exit()]);
        // The immediate is sign-extended to 64 bits.
        prop_assert_eq!(got, model(op, wide, signed, a, imm as i64 as u64));
    }

    #[test]
    fn jumps_match_the_model(op in prop::sample::select(vec![JEQ, JNE, JGT, JGE, JLT, JLE, JSET, JSGT, JSGE, JSLT, JSLE]),
                             wide: bool, a in operand(), b in operand()) {
        let j = if wide { jmp_reg(op, 1, 2, 1) } else { jmp32_reg(op, 1, 2, 1) };
        let got = run_plain(prog![ld_imm64(1, a), ld_imm64(2, b), mov64_imm(0, 1), j, mov64_imm(0, 0), exit()]);
        let (ua, ub, sa, sb) = if wide {
            (a as u128, b as u128, a as i64 as i128, b as i64 as i128)
        } else {
            (a as u32 as u128, b as u32 as u128, a as i32 as i128, b as i32 as i128)
        };
        let want = match op {
            JEQ => ua == ub, JNE => ua != ub, JGT => ua > ub, JGE => ua >= ub, JLT => ua < ub,
            JLE => ua <= ub, JSET => ua & ub != 0, JSGT => sa > sb, JSGE => sa >= sb, JSLT => sa < sb,
            _ => sa <= sb,
        };
        prop_assert_eq!(got, want as u64);
    }

    #[test]
    fn the_safety_pass_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let len = bytes.len() / 8 * 8;
        let insns = Insn::decode_all(&bytes[..len]).unwrap();
        let _ = Program::load("random", 0, insns, &MapTable::new());
    }

    #[test]
    fn loaded_random_programs_run_without_panicking(parts in prop::collection::vec(random_insn(), 1..40)) {
        let mut insns = prog![mov64_imm(0, 1), mov64_imm(2, 2), mov64_imm(3, -3)];
        insns.extend(parts.into_iter().flatten());
        insns.push(exit());
        let mut maps = MapTable::new();
        if let Ok(prog) = Program::load("random", 0, insns, &maps) {
            let os = FakeOs::default();
            let mut ctx = [7u8; 64];
            let mut env = Env::new(&os, &mut maps, &mut ctx);
            env.budget = 2000;
            env.ctx_writable = true;
            let _ = prog.run(&mut env);
        }
    }
}

/// Instructions drawn mostly from valid forms over few registers, so that
/// many programs pass the safety pass and then run (and some do not).
fn random_insn() -> impl Strategy<Value = Vec<Insn>> {
    let kinds = prop::sample::select(vec![
        0x07u8, 0x0f, 0x04, 0x0c, 0x05, 0x15, 0x16, 0x1d, 0x61, 0x79, 0x63, 0x7b, 0x72, 0xdb, 0xc3, 0x81, 0x91, 0xd4,
        0xdc, 0xd7, 0x85, 0x18,
    ]);
    let alu_op =
        prop::sample::select(vec![0x00u8, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0]);
    let imm = prop_oneof![any::<i32>(), -16i32..16];
    (kinds, alu_op, 0u8..4, 0u8..4, 0i16..4, imm, any::<u64>()).prop_map(|(kind, op, dst, src, off, imm, r)| {
        let mut i = Insn { op: kind, dst, src: 0, off: 0, imm: 0 };
        match kind {
            0x07 | 0x0f | 0x04 | 0x0c => {
                i.op = kind | op;
                let wide = kind & 0x07 == 0x07;
                let x = kind & 0x08 != 0;
                match op {
                    0x80 => i.op = (kind & 0x07) | op,
                    _ if x => i.src = src,
                    0x60 | 0x70 | 0xc0 => i.imm = imm.rem_euclid(if wide { 64 } else { 32 }),
                    0x30 | 0x90 if imm == 0 => i.imm = 3,
                    _ => i.imm = imm,
                }
                if (op == 0x30 || op == 0x90) && r % 3 == 0 {
                    i.off = 1;
                }
            }
            0x05 => (i.off, i.dst) = (off, 0),
            0x15 | 0x16 => (i.off, i.imm) = (off, imm.rem_euclid(4)),
            0x1d => (i.off, i.src) = (off, src),
            0x61 | 0x79 | 0x63 | 0x7b | 0x72 | 0xdb | 0xc3 | 0x81 | 0x91 => {
                let on_stack = r % 2 == 0;
                let base = if on_stack { 10 } else { 1 };
                i.off = if on_stack { -8 * (off + 1) } else { 8 * off };
                if kind & 0x07 == 0x01 {
                    (i.dst, i.src) = (dst, base);
                } else {
                    (i.dst, i.src) = (base, if kind == 0x72 { 0 } else { src });
                }
                i.imm = match kind {
                    0x72 => imm,
                    0xdb | 0xc3 => [0x00, 0x01, 0x40, 0x41, 0x50, 0xa1, 0xe1, 0xf1][(r >> 8) as usize % 8],
                    _ => 0,
                };
            }
            0xd4 | 0xdc | 0xd7 => i.imm = [16, 32, 64][(r >> 8) as usize % 3],
            0x85 => (i.imm, i.dst) = ([5, 7, 8, 14][imm.rem_euclid(4) as usize], 0),
            _ => return ld_imm64(dst, r).to_vec(),
        }
        vec![i]
    })
}
