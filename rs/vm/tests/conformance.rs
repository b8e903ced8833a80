//! Programs in the style of the bpf_conformance suite, re-expressed as
//! instruction vectors, run as its plugin runs them (r1 = the memory,
//! writable, r2 = its length; the safety pass with r2 set at the entry).
//! Each checks the semantics one of the suite's tests checks.

mod support;

use proctap_vm::consts::helper;
use proctap_vm::map::MapTable;
use proctap_vm::mem::{vaddr, REGION_CTX};
use proctap_vm::program::verify::Options;
use proctap_vm::program::{Env, Insn, Program};
use support::asm::*;
use support::fake_os::FakeOs;

/// Loads and runs like the plugin: r0, or the load error or fault in words.
fn plugin(insns: Vec<Insn>, mem: &[u8]) -> Result<u64, String> {
    let mut maps = MapTable::new();
    let opts = Options { entry_args: 2 };
    let prog = Program::load_with("conformance", 0, insns, &maps, &opts).map_err(|e| e.to_string())?;
    let os = FakeOs::default();
    let mut mem = mem.to_vec();
    let len = mem.len() as u64;
    let mut env = Env::new(&os, &mut maps, &mut mem);
    env.ctx_writable = true;
    prog.run_with_regs(&mut env, vaddr(REGION_CTX, 0), len).map_err(|e| e.to_string())
}

#[test]
fn lddw_loads_64_bit_constants() {
    assert_eq!(plugin(prog![ld_imm64(0, 0x1_2345_6789), exit()], &[]), Ok(0x1_2345_6789));
    assert_eq!(plugin(prog![ld_imm64(0, 0x8000_0000_0000_0000), exit()], &[]), Ok(0x8000_0000_0000_0000));
}

#[test]
fn be_and_le_on_memory() {
    // Ten big-endian halfwords of single bits, or-ed together.
    let mem = [0, 1, 0, 2, 0, 4, 0, 8, 0, 0x10, 0, 0x20, 0, 0x40, 0, 0x80, 1, 0, 2, 0];
    let mut p = prog![mov64_reg(9, 1), mov64_imm(0, 0)];
    for i in 0..10 {
        p.extend(prog![ldx(H, 3, 9, 2 * i), be(3, 16), alu64_reg(OR, 0, 3)]);
    }
    p.push(exit());
    assert_eq!(plugin(p, &mem), Ok(0x3ff));
    let le_mem = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
    assert_eq!(plugin(prog![ldx(DW, 0, 1, 0), le(0, 32), exit()], &le_mem), Ok(0x4433_2211));
    assert_eq!(plugin(prog![ldx(W, 0, 1, 0), be(0, 64), exit()], &le_mem), Ok(0x1122_3344_0000_0000));
}

#[test]
fn division_by_a_zero_register() {
    assert_eq!(plugin(prog![mov32_imm(0, 1), mov32_imm(1, 0), alu32_reg(DIV, 0, 1), exit()], &[]), Ok(0));
    // A divisor whose low half is zero is zero for div32.
    assert_eq!(plugin(prog![mov32_imm(0, 1), ld_imm64(1, 1 << 32), alu32_reg(DIV, 0, 1), exit()], &[]), Ok(0));
    assert_eq!(plugin(prog![mov64_imm(0, 9), mov64_imm(1, 0), alu64_reg(MOD, 0, 1), exit()], &[]), Ok(9));
    assert_eq!(
        plugin(prog![ld_imm64(0, u64::MAX), mov32_imm(1, 0), alu32_reg(MOD, 0, 1), exit()], &[]),
        Ok(0xffff_ffff)
    );
}

#[test]
fn jmp32_ignores_the_high_halves() {
    let p = prog![
        ld_imm64(1, 0xffff_ffff_0000_0001),
        mov64_imm(0, 0),
        jmp32_imm(JEQ, 1, 1, 1),
        exit(),
        mov64_imm(0, 1),
        jmp32_imm(JSLT, 1, 0, 2),
        ld_imm64(2, 0x1_0000_0000),
        jmp32_reg(JNE, 2, 0, 1),
        mov64_imm(0, 2),
        exit(),
    ];
    // low(r1)=1 == 1 -> r0=1; 1 < 0 signed? no; low(r2)=0 != low(r0)=1 -> jump over "r0=2".
    assert_eq!(plugin(p, &[]), Ok(1));
}

#[test]
fn cmpxchg32_compares_and_zero_extends() {
    let p = prog![
        ld_imm64(0, 0x1234_5678_9abc_def0),
        stx(DW, 10, 0, -8),
        mov32_imm(1, 0x1122_3344),
        mov32_imm(0, 0x1234_5678),
        cmpxchg(W, 10, 1, -8),
        // fails: r0 = 0x9abcdef0, memory unchanged
        mov32_imm(3, 0x9abc_def0u32 as i32),
        jmp_reg(JNE, 0, 3, 6),
        cmpxchg(W, 10, 1, -8),
        // succeeds: low half replaced
        ldx(DW, 0, 10, -8),
        ld_imm64(3, 0x1234_5678_1122_3344),
        jmp_reg(JNE, 0, 3, 2),
        mov64_imm(0, 0),
        exit(),
        mov64_imm(0, 1),
        exit(),
    ];
    assert_eq!(plugin(p, &[]), Ok(0));
}

#[test]
fn a_local_call_returns_its_argument() {
    let p = prog![mov64_imm(0, 0), mov64_imm(1, 0x42), call_local(1), exit(), mov64_reg(0, 1), exit()];
    assert_eq!(plugin(p, &[]), Ok(0x42));
}

#[test]
fn helper_5_exists() {
    let p = prog![mov64_imm(1, -1), call(helper::KTIME_GET_NS), mov64_imm(0, 2), exit()];
    assert_eq!(plugin(p, &[]), Ok(2));
}

#[test]
fn exit_need_not_be_last_in_code_order() {
    let p = prog![mov64_imm(1, 0), ja(2), mov64_imm(2, 0), exit(), mov64_imm(0, 0), ja(-4)];
    assert_eq!(plugin(p, &[]), Ok(0));
}

#[test]
fn r2_holds_the_memory_length() {
    assert_eq!(plugin(prog![mov64_reg(0, 2), exit()], &[0; 37]), Ok(37));
}

#[test]
fn stores_to_memory_are_visible() {
    let p = prog![st(W, 1, 2, 0x1122_3344), ldx(DW, 0, 1, 0), exit()];
    assert_eq!(plugin(p, &[0xff; 8]), Ok(0xffff_1122_3344_ffff));
}

#[test]
fn what_the_kernel_refuses_is_refused() {
    // callx (`call %r2`) is not in Linux's ISA.
    let callx = prog![mov64_imm(2, 5), insn(0x8d, 2, 0, 0, 0), mov64_imm(0, 2), exit()];
    assert!(plugin(callx, &[]).unwrap_err().contains("unknown opcode"));
    // An 8-byte store at r10-4 reaches past the frame (Linux refuses it too).
    let spill = prog![st(DW, 10, -4, 1), mov64_imm(0, 1), exit()];
    assert!(plugin(spill, &[]).unwrap_err().contains("outside [-512, 0)"));
    // Reading past the memory faults at run time.
    assert!(plugin(prog![ldx(DW, 0, 1, 4), exit()], &[0; 8]).unwrap_err().contains("insn 0"));
}
