mod support;
use proctap_vm::jit::JitProgram;
use proctap_vm::map::MapTable;
use proctap_vm::program::{Env, Program};
use support::asm::*;
use support::fake_os::FakeOs;

#[test]
fn smoke() {
    let insns = support::asm::prog![mov64_imm(0, 5), alu64_imm(ADD, 0, 7), exit()];
    let mut maps = MapTable::new();
    let prog = Program::load("t", 0, insns, &maps).unwrap();
    let os = proctap_vm::osutil::HostOs::default();
    let jit = JitProgram::compile(&prog, &os).unwrap();
    let _ = FakeOs::default();
    let mut ctx = [0u8; 8];
    let mut env = Env::new(&os, &mut maps, &mut ctx);
    assert_eq!(jit.run(&mut env), Ok(12));
}
