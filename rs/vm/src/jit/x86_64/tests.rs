//! Encodings checked against an assembler's (llvm-mc's) output for the same
//! instructions.

use super::*;

fn enc(f: impl FnOnce(&mut Asm)) -> Vec<u8> {
    let mut a = Asm::new();
    f(&mut a);
    a.finish().unwrap()
}

const R: Reg = Reg::RBP;

#[test]
fn moves_and_immediates() {
    assert_eq!(enc(|a| a.mov(Width::Q, Reg::RDI, Reg::RSI)), [0x48, 0x89, 0xf7]);
    assert_eq!(enc(|a| a.mov(Width::W, Reg::RAX, Reg::R11)), [0x44, 0x89, 0xd8]);
    assert_eq!(enc(|a| a.mov_imm(Reg::R9, 5)), [0x41, 0xb9, 5, 0, 0, 0]);
    assert_eq!(enc(|a| a.mov_imm(Reg::RBX, -3i64 as u64)), [0x48, 0xc7, 0xc3, 0xfd, 0xff, 0xff, 0xff]);
    assert_eq!(enc(|a| a.mov_imm(Reg::R13, 0x12_3456_789a)), [0x49, 0xbd, 0x9a, 0x78, 0x56, 0x34, 0x12, 0, 0, 0]);
}

#[test]
fn arithmetic() {
    assert_eq!(enc(|a| a.alu(Alu::Add, Width::Q, Reg::RAX, Reg::R8)), [0x4c, 0x01, 0xc0]);
    assert_eq!(
        enc(|a| a.alu_load(Alu::Cmp, Width::Q, Reg::R11, Mem::indexed(Reg::R12, Reg::R10, 0))),
        [0x4f, 0x3b, 0x1c, 0x14]
    );
    assert_eq!(
        enc(|a| a.alu_load(Alu::Sub, Width::Q, Reg::R9, Mem::at(Reg::R12, 0x40))),
        [0x4d, 0x2b, 0x4c, 0x24, 0x40]
    );
    assert_eq!(enc(|a| a.alu_imm(Alu::Add, Width::Q, Rm::R(Reg::R14), 0x7f)), [0x49, 0x83, 0xc6, 0x7f]);
    assert_eq!(enc(|a| a.alu_imm(Alu::Sub, Width::Q, Rm::R(Reg::RDI), 0x80)), [0x48, 0x81, 0xef, 0x80, 0, 0, 0]);
    assert_eq!(enc(|a| a.alu_imm(Alu::Cmp, Width::W, Rm::R(Reg::R11), -1)), [0x41, 0x83, 0xfb, 0xff]);
    assert_eq!(enc(|a| a.test(Width::Q, Reg::R11, Reg::R11)), [0x4d, 0x85, 0xdb]);
    assert_eq!(enc(|a| a.test_imm(Width::Q, Reg::RCX, 0x100)), [0x48, 0xf7, 0xc1, 0, 1, 0, 0]);
    assert_eq!(enc(|a| a.imul(Width::Q, Reg::R15, Reg::RSI)), [0x4c, 0x0f, 0xaf, 0xfe]);
    assert_eq!(enc(|a| a.imul_imm(Width::Q, Reg::RDX, 1000)), [0x48, 0x69, 0xd2, 0xe8, 3, 0, 0]);
    assert_eq!(enc(|a| a.neg(Width::W, Reg::R8)), [0x41, 0xf7, 0xd8]);
    assert_eq!(enc(|a| a.div(Width::Q, Reg::R11, false)), [0x49, 0xf7, 0xf3]);
    assert_eq!(enc(|a| a.div(Width::W, Reg::R11, true)), [0x41, 0xf7, 0xfb]);
    let entry = Mem::indexed(Reg::R12, Reg::R10, 200);
    let m = Mem::indexed(Reg::R12, Reg::R10, 208);
    assert_eq!(enc(|a| a.imul_mem(Width::Q, Reg::RAX, m)), [0x4b, 0x0f, 0xaf, 0x84, 0x14, 0xd0, 0, 0, 0]);
    assert_eq!(enc(|a| a.mul_mem(Width::Q, entry)), [0x4b, 0xf7, 0xa4, 0x14, 0xc8, 0, 0, 0]);
    assert_eq!(enc(|a| a.alu_imm(Alu::Cmp, Width::Q, Rm::M(entry), 0)), [0x4b, 0x83, 0xbc, 0x14, 0xc8, 0, 0, 0, 0]);
    assert_eq!(enc(|a| a.movq_to_xmm(0, Reg::RAX)), [0x66, 0x48, 0x0f, 0x6e, 0xc0]);
    assert_eq!(enc(|a| a.movq_from_xmm(Reg::RDX, 1)), [0x66, 0x48, 0x0f, 0x7e, 0xca]);
    assert_eq!(enc(|a| a.sign_extend_rax(Width::Q)), [0x48, 0x99]);
    assert_eq!(enc(|a| a.sign_extend_rax(Width::W)), [0x99]);
    assert_eq!(enc(|a| a.shift_imm(Shift::Shl, Width::Q, Reg::RBX, 3)), [0x48, 0xc1, 0xe3, 3]);
    assert_eq!(enc(|a| a.shift_cl(Shift::Sar, Width::Q, Reg::R11)), [0x49, 0xd3, 0xfb]);
    assert_eq!(enc(|a| a.shift_imm(Shift::Ror, Width::H, Reg::RAX, 8)), [0x66, 0xc1, 0xc8, 8]);
}

#[test]
fn extensions_and_byte_registers() {
    assert_eq!(enc(|a| a.movzx(Width::B, Reg::RAX, Rm::R(Reg::RSI))), [0x40, 0x0f, 0xb6, 0xc6]);
    assert_eq!(enc(|a| a.movzx(Width::H, Reg::R14, Rm::R(Reg::R13))), [0x45, 0x0f, 0xb7, 0xf5]);
    assert_eq!(enc(|a| a.movsx(Width::Q, Width::B, Reg::RBX, Rm::R(Reg::RDI))), [0x48, 0x0f, 0xbe, 0xdf]);
    assert_eq!(enc(|a| a.movsx(Width::W, Width::H, Reg::RAX, Rm::R(Reg::RCX))), [0x0f, 0xbf, 0xc1]);
    assert_eq!(enc(|a| a.movsx(Width::Q, Width::W, Reg::RDX, Rm::R(Reg::R8))), [0x49, 0x63, 0xd0]);
    assert_eq!(enc(|a| a.bswap(Width::W, Reg::RAX)), [0x0f, 0xc8]);
    assert_eq!(enc(|a| a.bswap(Width::Q, Reg::R15)), [0x49, 0x0f, 0xcf]);
    assert_eq!(enc(|a| a.bswap(Width::W, Reg::R9)), [0x41, 0x0f, 0xc9]);
}

#[test]
fn loads_and_stores() {
    let r11 = |d| Mem::at(Reg::R11, d);
    assert_eq!(enc(|a| a.load(Width::B, Reg::RDI, r11(0x10))), [0x41, 0x0f, 0xb6, 0x7b, 0x10]);
    assert_eq!(enc(|a| a.load(Width::H, Reg::RSI, Mem::at(R, -8))), [0x0f, 0xb7, 0x75, 0xf8]);
    assert_eq!(enc(|a| a.load(Width::W, Reg::R15, r11(0))), [0x45, 0x8b, 0x3b]);
    assert_eq!(enc(|a| a.load(Width::Q, Reg::R13, Mem::at(R, -512))), [0x4c, 0x8b, 0xad, 0, 0xfe, 0xff, 0xff]);
    assert_eq!(enc(|a| a.movsx(Width::Q, Width::B, Reg::RAX, Rm::M(r11(0)))), [0x49, 0x0f, 0xbe, 0x03]);
    assert_eq!(enc(|a| a.movsx(Width::Q, Width::W, Reg::RAX, Rm::M(r11(4)))), [0x49, 0x63, 0x43, 0x04]);
    assert_eq!(enc(|a| a.store(Width::B, r11(0), Reg::RSI)), [0x41, 0x88, 0x33]);
    assert_eq!(enc(|a| a.store(Width::H, Mem::at(R, -2), Reg::R8)), [0x66, 0x44, 0x89, 0x45, 0xfe]);
    assert_eq!(enc(|a| a.store(Width::W, Mem::at(Reg::R12, 0), Reg::RDX)), [0x41, 0x89, 0x14, 0x24]);
    assert_eq!(enc(|a| a.store(Width::Q, Mem::at(Reg::R13, 8), Reg::RBX)), [0x49, 0x89, 0x5d, 0x08]);
    assert_eq!(enc(|a| a.store_imm(Width::B, r11(0), -1)), [0x41, 0xc6, 0x03, 0xff]);
    assert_eq!(enc(|a| a.store_imm(Width::H, Mem::at(R, -4), 0x1234)), [0x66, 0xc7, 0x45, 0xfc, 0x34, 0x12]);
    assert_eq!(enc(|a| a.store_imm(Width::W, r11(0), 7)), [0x41, 0xc7, 0x03, 7, 0, 0, 0]);
    assert_eq!(enc(|a| a.store_imm(Width::Q, Mem::at(R, -8), -7)), [0x48, 0xc7, 0x45, 0xf8, 0xf9, 0xff, 0xff, 0xff]);
    assert_eq!(enc(|a| a.lea(Reg::R11, r11(-8))), [0x4d, 0x8d, 0x5b, 0xf8]);
    assert_eq!(enc(|a| a.lea(Reg::R11, Mem::at(Reg::RDI, 0x1000))), [0x4c, 0x8d, 0x9f, 0, 0x10, 0, 0]);
    assert_eq!(enc(|a| a.store(Width::Q, Mem::at(Reg::R12, 0x18), Reg::R9)), [0x4d, 0x89, 0x4c, 0x24, 0x18]);
}

#[test]
fn atomics() {
    let m = Mem::at(Reg::R11, 0);
    assert_eq!(
        enc(|a| {
            a.lock();
            a.xadd(Width::Q, m, Reg::RSI)
        }),
        [0xf0, 0x49, 0x0f, 0xc1, 0x33]
    );
    assert_eq!(
        enc(|a| {
            a.lock();
            a.cmpxchg(Width::W, m, Reg::R10)
        }),
        [0xf0, 0x45, 0x0f, 0xb1, 0x13]
    );
    assert_eq!(enc(|a| a.xchg(Width::Q, m, Reg::RCX)), [0x49, 0x87, 0x0b]);
    assert_eq!(
        enc(|a| {
            a.lock();
            a.alu_store(Alu::Or, Width::Q, m, Reg::R14)
        }),
        [0xf0, 0x4d, 0x09, 0x33]
    );
    assert_eq!(
        enc(|a| {
            a.lock();
            a.alu_store(Alu::And, Width::W, m, Reg::R10)
        }),
        [0xf0, 0x45, 0x21, 0x13]
    );
}

#[test]
fn stack_and_control() {
    assert_eq!(enc(|a| a.push(Reg::R12)), [0x41, 0x54]);
    assert_eq!(enc(|a| a.pop(Reg::RBX)), [0x5b]);
    assert_eq!(enc(|a| a.push_mem(Mem::at(Reg::RDI, 0x10))), [0xff, 0x77, 0x10]);
    assert_eq!(enc(|a| a.pop_mem(Mem::at(Reg::R12, 0x10))), [0x41, 0x8f, 0x44, 0x24, 0x10]);
    assert_eq!(enc(|a| a.call_reg(Reg::RAX)), [0xff, 0xd0]);
    assert_eq!(enc(|a| a.ret()), [0xc3]);
}

#[test]
fn labels_patch_forward_and_backward_jumps() {
    let code = enc(|a| {
        let top = a.label();
        let end = a.label();
        a.bind(top);
        a.jcc(Cond::E, end);
        a.jmp(top);
        a.bind(end);
        a.call(top);
    });
    // je +5 (over the jmp); jmp -11 (to 0); call -16 (to 0).
    assert_eq!(code, [0x0f, 0x84, 5, 0, 0, 0, 0xe9, 0xf5, 0xff, 0xff, 0xff, 0xe8, 0xf0, 0xff, 0xff, 0xff]);
}

#[test]
fn an_unplaced_label_fails_the_assembly() {
    let mut a = Asm::new();
    let l = a.label();
    a.jmp(l);
    assert!(a.finish().is_none());
}
