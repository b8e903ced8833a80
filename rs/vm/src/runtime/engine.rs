//! Where a program is admitted and where it runs: the one place the
//! runtime calls into the safety pass and picks an engine.

use crate::jit::JitProgram;
use crate::map::MapTable;
use crate::osutil::Os;
use crate::program::{Env, Insn, Program, Programs};
use crate::retcode::{Fault, LoadError};
use alloc::vec::Vec;

/// Admits a program whose ld_imm64 map references carry map ids (the
/// safety pass resolves them into handles and value addresses).
pub fn load(name: &str, prog_type: u32, insns: Vec<Insn>, maps: &MapTable) -> Result<Program, LoadError> {
    Program::load(name, prog_type, insns, maps)
}

/// Compiles `prog` for the JIT; `None` where the JIT cannot run it (no
/// executable memory from the OS, an architecture without a JIT): the
/// program then runs in the interpreter, as Linux falls back when its JIT
/// fails and `bpf_jit_enable` is not forced.
pub fn compile(prog: &Program, os: &dyn Os) -> Option<JitProgram> {
    JitProgram::compile(prog, os).ok()
}

/// Runs `prog` to its exit, in its JIT image when it has one: r0.
pub fn run(prog: &Program, jit: Option<&JitProgram>, env: &mut Env) -> Result<u64, Fault> {
    match jit {
        Some(image) => image.run(env),
        None => prog.run(env),
    }
}

/// The runtime's programs and their JIT images by id, as tail calls see them.
pub struct ProgramTable<'a> {
    /// Programs by id.
    pub progs: &'a [Option<Program>],
    /// JIT images by id (shorter, or `None` entries, where there is none).
    pub jits: &'a [Option<JitProgram>],
}

impl Programs for ProgramTable<'_> {
    fn program(&self, id: u32) -> Option<&Program> {
        self.progs.get(id as usize).and_then(Option::as_ref)
    }
    fn jit(&self, id: u32) -> Option<&JitProgram> {
        self.jits.get(id as usize).and_then(Option::as_ref)
    }
}
