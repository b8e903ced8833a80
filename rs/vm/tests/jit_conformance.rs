//! The conformance suite's plugin convention under the JIT: r1 = the
//! memory (writable), r2 = its length, programs loaded with r2 set at the
//! entry; each program also runs in the interpreter and must agree.

mod jit_support;
mod support;

use jit_support::{compile, run_one, Setup};
use proctap_vm::consts::helper;
use proctap_vm::map::MapTable;
use proctap_vm::mem::{vaddr, REGION_CTX};
use proctap_vm::program::verify::Options;
use proctap_vm::program::{Insn, Program};
use support::asm::*;

/// r0 as the plugin prints it, the same in both engines.
fn plugin(insns: Vec<Insn>, mem: &[u8]) -> u64 {
    let opts = Options { entry_args: 2 };
    let prog = Program::load_with("conformance", 0, insns, &MapTable::new(), &opts).unwrap();
    let setup = Setup { ctx: mem.to_vec(), regs: Some((vaddr(REGION_CTX, 0), mem.len() as u64)), ..Setup::default() };
    let jit = compile(&prog);
    let (i, j) = (run_one(&prog, None, &setup), run_one(&prog, Some(&jit), &setup));
    assert_eq!(i, j, "interpreter (left) and JIT (right) differ");
    j.r0.unwrap()
}

#[test]
fn r1_is_the_memory_and_r2_its_length() {
    assert_eq!(plugin(prog![mov64_reg(0, 2), exit()], &[0; 37]), 37);
    let p = prog![st(W, 1, 2, 0x1122_3344), ldx(DW, 0, 1, 0), exit()];
    assert_eq!(plugin(p, &[0xff; 8]), 0xffff_1122_3344_ffff);
}

#[test]
fn byte_order_on_memory() {
    let mem = [0, 1, 0, 2, 0, 4, 0, 8, 0, 0x10, 0, 0x20, 0, 0x40, 0, 0x80, 1, 0, 2, 0];
    let mut p = prog![mov64_reg(9, 1), mov64_imm(0, 0)];
    for i in 0..10 {
        p.extend(prog![ldx(H, 3, 9, 2 * i), be(3, 16), alu64_reg(OR, 0, 3)]);
    }
    p.push(exit());
    assert_eq!(plugin(p, &mem), 0x3ff);
    let le_mem = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
    assert_eq!(plugin(prog![ldx(DW, 0, 1, 0), le(0, 32), exit()], &le_mem), 0x4433_2211);
    assert_eq!(plugin(prog![ldx(W, 0, 1, 0), be(0, 64), exit()], &le_mem), 0x1122_3344_0000_0000);
}

#[test]
fn calls_and_exits_anywhere() {
    let p = prog![mov64_imm(0, 0), mov64_imm(1, 0x42), call_local(1), exit(), mov64_reg(0, 1), exit()];
    assert_eq!(plugin(p, &[]), 0x42);
    let p = prog![mov64_imm(1, -1), call(helper::KTIME_GET_NS), mov64_imm(0, 2), exit()];
    assert_eq!(plugin(p, &[]), 2);
    let p = prog![mov64_imm(1, 0), ja(2), mov64_imm(2, 0), exit(), mov64_imm(0, 0), ja(-4)];
    assert_eq!(plugin(p, &[]), 0);
}
