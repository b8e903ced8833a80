//! The interpreter's control flow: 64- and 32-bit conditional jumps with
//! signed and unsigned compares, `ja`, `gotol`, loops and the budget.

mod support;

use proctap_vm::map::MapTable;
use proctap_vm::program::{Env, Program};
use proctap_vm::retcode::Fault;
use support::asm::*;
use support::fake_os::FakeOs;
use support::run;

/// 1 if `if a op b` jumps (64-bit compare of registers), else 0.
fn taken64(op: u8, a: u64, b: u64) -> u64 {
    run(prog![ld_imm64(1, a), ld_imm64(2, b), mov64_imm(0, 1), jmp_reg(op, 1, 2, 1), mov64_imm(0, 0), exit()]).unwrap()
}

/// The same, 32-bit compare.
fn taken32(op: u8, a: u64, b: u64) -> u64 {
    run(prog![ld_imm64(1, a), ld_imm64(2, b), mov64_imm(0, 1), jmp32_reg(op, 1, 2, 1), mov64_imm(0, 0), exit()])
        .unwrap()
}

/// The same with an immediate, 64-bit (the immediate sign-extends).
fn taken64_k(op: u8, a: u64, imm: i32) -> u64 {
    run(prog![ld_imm64(1, a), mov64_imm(0, 1), jmp_imm(op, 1, imm, 1), mov64_imm(0, 0), exit()]).unwrap()
}

/// The same with an immediate, 32-bit.
fn taken32_k(op: u8, a: u64, imm: i32) -> u64 {
    run(prog![ld_imm64(1, a), mov64_imm(0, 1), jmp32_imm(op, 1, imm, 1), mov64_imm(0, 0), exit()]).unwrap()
}

#[test]
fn unsigned_compares() {
    let neg = u64::MAX;
    assert_eq!(taken64(JGT, neg, 1), 1);
    assert_eq!(taken64(JGE, 1, 1), 1);
    assert_eq!(taken64(JLT, 1, neg), 1);
    assert_eq!(taken64(JLE, 2, 1), 0);
    assert_eq!(taken64(JEQ, 5, 5), 1);
    assert_eq!(taken64(JNE, 5, 5), 0);
    assert_eq!(taken64(JSET, 0b1010, 0b0100), 0);
    assert_eq!(taken64(JSET, 0b1010, 0b0010), 1);
}

#[test]
fn signed_compares() {
    let minus_one = u64::MAX;
    assert_eq!(taken64(JSGT, minus_one, 1), 0);
    assert_eq!(taken64(JSLT, minus_one, 1), 1);
    assert_eq!(taken64(JSGE, minus_one, minus_one), 1);
    assert_eq!(taken64(JSLE, 0, minus_one), 0);
    assert_eq!(taken64_k(JSLT, minus_one, 0), 1);
    assert_eq!(taken64_k(JEQ, minus_one, -1), 1, "the immediate sign-extends to 64 bits");
}

#[test]
fn jmp32_compares_the_low_halves() {
    assert_eq!(taken32(JEQ, 0x1_0000_0005, 0x2_0000_0005), 1);
    assert_eq!(taken64(JEQ, 0x1_0000_0005, 0x2_0000_0005), 0);
    assert_eq!(taken32(JSLT, 0x8000_0000, 0), 1, "bit 31 is the sign");
    assert_eq!(taken64(JSLT, 0x8000_0000, 0), 0);
    assert_eq!(taken32_k(JGT, 0xffff_ffff_0000_0001, 0), 1);
    assert_eq!(taken32_k(JSGT, 0xffff_ffff, -2), 1);
    assert_eq!(taken32(JSET, 0x1_0000_0000, 0x1_0000_0000), 0);
}

#[test]
fn ja_and_gotol_jump_forward_and_back() {
    let p = prog![mov64_imm(0, 1), ja(2), mov64_imm(0, 2), exit(), gotol(-3), exit()];
    // 0: r0=1; 1: ja +2 -> 4; 4: gotol -3 -> 2; 2: r0=2; 3: exit
    assert_eq!(run(p).unwrap(), 2);
}

#[test]
fn loops_run_until_their_condition() {
    // r0 = sum of 1..=10
    let p = prog![
        mov64_imm(0, 0),
        mov64_imm(1, 10),
        alu64_reg(ADD, 0, 1),
        alu64_imm(SUB, 1, 1),
        jmp_imm(JNE, 1, 0, -3),
        exit(),
    ];
    assert_eq!(run(p).unwrap(), 55);
}

#[test]
fn an_infinite_loop_runs_out_of_budget() {
    let insns = prog![mov64_imm(0, 0), alu64_imm(ADD, 0, 1), ja(-2), exit()];
    let mut maps = MapTable::new();
    let prog = Program::load("spin", 0, insns, &maps).unwrap();
    let os = FakeOs::default();
    let mut env = Env::new(&os, &mut maps, &mut []);
    env.budget = 1000;
    match prog.run(&mut env) {
        Err(Fault::Budget { budget: 1000, pc }) => assert!(pc == 1 || pc == 2, "pc {pc}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_budget_counts_executed_instructions_exactly() {
    // 3 instructions execute; a budget of 3 is enough and 2 is not.
    let insns = prog![mov64_imm(0, 7), mov64_imm(1, 1), exit()];
    let mut maps = MapTable::new();
    let prog = Program::load("three", 0, insns, &maps).unwrap();
    let os = FakeOs::default();
    let mut env = Env::new(&os, &mut maps, &mut []);
    env.budget = 3;
    assert_eq!(prog.run(&mut env), Ok(7));
    env.budget = 2;
    assert_eq!(prog.run(&mut env), Err(Fault::Budget { pc: 2, budget: 2 }));
}
