//! Test support shared by the integration tests: the assembler, a fake OS,
//! fake maps, and shortcuts to load and run a program.
#![allow(dead_code)]

pub mod asm;
pub mod fake_map;
pub mod fake_os;

use fake_os::FakeOs;
use proctap_vm::map::MapTable;
use proctap_vm::program::{Env, Insn, Program};
use proctap_vm::retcode::{Fault, LoadError};

/// Loads `insns` with no maps.
pub fn load(insns: Vec<Insn>) -> Result<Program, LoadError> {
    Program::load("test", 0, insns, &MapTable::new())
}

/// Loads (which must succeed) and runs `insns` with an empty context.
pub fn run(insns: Vec<Insn>) -> Result<u64, Fault> {
    run_ctx(insns, &mut [], false)
}

/// Loads and runs `insns` with `ctx` as the context.
pub fn run_ctx(insns: Vec<Insn>, ctx: &mut [u8], writable: bool) -> Result<u64, Fault> {
    let mut maps = MapTable::new();
    let prog = Program::load("test", 0, insns, &maps).unwrap_or_else(|e| panic!("load: {e}"));
    let os = FakeOs::default();
    let mut env = Env::new(&os, &mut maps, ctx);
    env.ctx_writable = writable;
    prog.run(&mut env)
}

/// Loads and runs `insns` against `maps` and `os`, with `ctx` writable.
pub fn run_with(insns: Vec<Insn>, maps: &mut MapTable, os: &FakeOs, ctx: &mut [u8]) -> Result<u64, Fault> {
    let prog = Program::load("test", 0, insns, maps).unwrap_or_else(|e| panic!("load: {e}"));
    let mut env = Env::new(os, maps, ctx);
    env.ctx_writable = true;
    prog.run(&mut env)
}

/// The error `load` refuses `insns` with (panics if it loads).
pub fn refusal(insns: Vec<Insn>) -> LoadError {
    match load(insns) {
        Ok(_) => panic!("the program loaded"),
        Err(e) => e,
    }
}
