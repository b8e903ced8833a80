//! Instruction builders for the runtime's tests.
#![allow(dead_code)]

use proctap_vm::program::Insn;

pub fn insn(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { op, dst, src, off, imm }
}

/// `dst = imm` (64-bit).
pub fn mov(dst: u8, imm: i32) -> Insn {
    insn(0xb7, dst, 0, 0, imm)
}

pub fn exit() -> Insn {
    insn(0x95, 0, 0, 0, 0)
}

/// `dst = map fd` (ld_imm64 with BPF_PSEUDO_MAP_FD).
pub fn ld_map_fd(dst: u8, fd: u32) -> [Insn; 2] {
    [insn(0x18, dst, 1, 0, fd as i32), insn(0, 0, 0, 0, 0)]
}

/// `dst = &map value + off` (ld_imm64 with BPF_PSEUDO_MAP_VALUE).
pub fn ld_map_value(dst: u8, fd: u32, off: i32) -> [Insn; 2] {
    [insn(0x18, dst, 2, 0, fd as i32), insn(0, 0, 0, 0, off)]
}

/// `return imm`.
pub fn ret(imm: i32) -> Vec<Insn> {
    vec![mov(0, imm), exit()]
}

/// `return imm`, referencing map `fd` first.
pub fn ret_using(fd: u32, imm: i32) -> Vec<Insn> {
    let mut v = ld_map_fd(1, fd).to_vec();
    v.extend(ret(imm));
    v
}

pub fn bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.encode()).collect()
}
