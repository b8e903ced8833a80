//! Where a program is admitted and where it runs: the one place the
//! runtime calls into the safety pass and picks an engine.

use crate::map::MapTable;
use crate::program::{Env, Insn, Program, Programs};
use crate::retcode::{Fault, LoadError};
use alloc::vec::Vec;

/// Admits a program whose ld_imm64 map references carry map ids (the
/// safety pass resolves them into handles and value addresses).
pub fn load(name: &str, prog_type: u32, insns: Vec<Insn>, maps: &MapTable) -> Result<Program, LoadError> {
    Program::load(name, prog_type, insns, maps)
}

/// Runs `prog` to its exit: r0.
pub fn run(prog: &Program, env: &mut Env) -> Result<u64, Fault> {
    // JIT: a program with a JIT image runs it here instead of the
    // interpreter (the image would be made at `load` and kept beside the
    // program in the runtime's program table).
    prog.run(env)
}

/// The runtime's programs by id, as tail calls see them.
pub struct ProgramTable<'a>(pub &'a [Option<Program>]);

impl Programs for ProgramTable<'_> {
    fn program(&self, id: u32) -> Option<&Program> {
        self.0.get(id as usize).and_then(Option::as_ref)
    }
}
