//! Where a program is admitted and where it runs: the one place the
//! runtime calls into the safety pass and picks an engine.
//!
//! STAND-IN until the interpreter branch is merged: `load` resolves map
//! references only, `run` knows `mov r0, imm` and `exit`.

use crate::map::MapTable;
use crate::mem::{map_handle, vaddr, REGION_MAPS};
use crate::program::{Env, Insn, Program};
use crate::retcode::{Errno, Fault, LoadError};
use alloc::string::String;
use alloc::vec::Vec;

/// Admits a program whose ld_imm64 map references carry map ids.
pub fn load(name: &str, prog_type: u32, mut insns: Vec<Insn>, maps: &MapTable) -> Result<Program, LoadError> {
    if insns.is_empty() {
        return Err(LoadError::new(Errno::EINVAL, "empty program"));
    }
    let mut pc = 0;
    while pc < insns.len() {
        if insns[pc].op == 0x18 && pc + 1 < insns.len() {
            let id = insns[pc].imm as u32;
            let value = match insns[pc].src {
                1 => map_handle(id),
                2 => vaddr(REGION_MAPS + id, insns[pc + 1].imm as u32),
                _ => 0,
            };
            if insns[pc].src != 0 {
                if maps.get(id).is_none() {
                    return Err(LoadError::at(pc, Errno::EBADF, "no such map"));
                }
                insns[pc].src = 0;
                insns[pc].imm = value as u32 as i32;
                insns[pc + 1].imm = (value >> 32) as i32;
            }
            pc += 1;
        }
        pc += 1;
    }
    Ok(Program { name: String::from(name), prog_type, insns })
}

/// Runs `prog` to its exit: r0.
pub fn run(prog: &Program, env: &mut Env) -> Result<u64, Fault> {
    // JIT: a program with a JIT image runs it here instead of the interpreter.
    let _ = env;
    let mut r0 = 0u64;
    let mut pc = 0;
    while let Some(insn) = prog.insns.get(pc) {
        match insn.op {
            0xb7 if insn.dst == 0 => r0 = insn.imm as i64 as u64,
            0xb7 | 0x18 => {}
            0x95 => return Ok(r0),
            _ => return Err(Fault::Other { pc, reason: String::from("stand-in engine") }),
        }
        pc += if insn.op == 0x18 { 2 } else { 1 };
    }
    Err(Fault::Other { pc: prog.insns.len(), reason: String::from("fell off the end") })
}
