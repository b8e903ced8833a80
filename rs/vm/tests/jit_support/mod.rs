//! Running a program in both engines: the interpreter and the JIT get the
//! same program, maps, context and OS; their results are compared.
#![allow(dead_code)]

use crate::support::fake_os::FakeOs;
use proctap_vm::jit::JitProgram;
use proctap_vm::map::MapTable;
use proctap_vm::osutil::HostOs;
use proctap_vm::program::{Env, Insn, Program, Programs};
use proctap_vm::retcode::Fault;

/// What a run leaves: r0 or the fault, the context and every map's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub r0: Result<u64, Fault>,
    pub ctx: Vec<u8>,
    pub maps: Vec<Vec<u8>>,
}

/// How to run: the context, its writability, the budget, the programs of
/// tail calls and the maps (made fresh for each engine).
pub struct Setup<'a> {
    pub ctx: Vec<u8>,
    pub writable: bool,
    pub budget: u64,
    pub progs: Option<&'a dyn Programs>,
    pub maps: &'a dyn Fn() -> MapTable,
    pub os: FakeOs,
    pub regs: Option<(u64, u64)>,
}

fn no_maps() -> MapTable {
    MapTable::new()
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            ctx: Vec::new(),
            writable: true,
            budget: 1 << 20,
            progs: None,
            maps: &no_maps,
            os: FakeOs::default(),
            regs: None,
        }
    }
}

/// Loads `insns` (which must pass the safety pass) against fresh maps.
pub fn load(insns: Vec<Insn>, setup: &Setup) -> Program {
    Program::load("test", 0, insns, &(setup.maps)()).unwrap_or_else(|e| panic!("load: {e}"))
}

/// Compiles `prog` with executable memory from the host.
pub fn compile(prog: &Program) -> JitProgram {
    JitProgram::compile(prog, &HostOs::with_seed(1)).unwrap_or_else(|e| panic!("jit: {e}"))
}

/// Runs `prog` in one engine.
pub fn run_one(prog: &Program, jit: Option<&JitProgram>, setup: &Setup) -> Outcome {
    let mut maps = (setup.maps)();
    let mut ctx = setup.ctx.clone();
    let r0 = {
        let mut env = Env::new(&setup.os, &mut maps, &mut ctx);
        env.ctx_writable = setup.writable;
        env.budget = setup.budget;
        env.progs = setup.progs;
        match (jit, setup.regs) {
            (Some(j), Some((r1, r2))) => j.run_with_regs(&mut env, r1, r2),
            (Some(j), None) => j.run(&mut env),
            (None, Some((r1, r2))) => prog.run_with_regs(&mut env, r1, r2),
            (None, None) => prog.run(&mut env),
        }
    };
    let maps = (0..maps.len() as u32).filter_map(|id| maps.get(id).map(|m| m.values().to_vec())).collect();
    Outcome { r0, ctx, maps }
}

/// Runs `prog` in both engines; (interpreter, JIT).
pub fn both(prog: &Program, setup: &Setup) -> (Outcome, Outcome) {
    let jit = compile(prog);
    (run_one(prog, None, setup), run_one(prog, Some(&jit), setup))
}

/// Loads and runs `insns` in both, asserts they agree; the JIT's outcome.
pub fn same_with(insns: Vec<Insn>, setup: &Setup) -> Outcome {
    let prog = load(insns, setup);
    let (i, j) = both(&prog, setup);
    assert_eq!(i, j, "interpreter (left) and JIT (right) differ");
    j
}

/// r0 (or the fault) of `insns` with no context, the same in both engines.
pub fn same(insns: Vec<Insn>) -> Result<u64, Fault> {
    same_with(insns, &Setup::default()).r0
}

/// The same with `ctx` as the (writable) context; r0 and the context after.
pub fn same_ctx(insns: Vec<Insn>, ctx: &[u8]) -> (Result<u64, Fault>, Vec<u8>) {
    let o = same_with(insns, &Setup { ctx: ctx.to_vec(), ..Setup::default() });
    (o.r0, o.ctx)
}

/// Compiles `prog` (which need not have passed the safety pass); `None`
/// when the JIT refuses it.
pub fn compile_raw(prog: &Program) -> Option<JitProgram> {
    JitProgram::compile(prog, &HostOs::with_seed(1)).ok()
}
