//! An object loaded into the runtime: its maps created in a [`MapTable`]
//! it owns, its programs through the safety pass, both found by name.

use super::Object;
use crate::consts::prog_type;
use crate::jit::JitProgram;
use crate::map::{Map, MapTable};
use crate::osutil::Os;
use crate::program::{Env, Program, Programs};
use crate::retcode::{Errno, Fault, LoadError};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Which engine runs a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// The interpreter.
    #[default]
    Interpreter,
    /// The x86-64 JIT.
    Jit,
}

/// Why a run of a loaded program did not happen or did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// No program of that name.
    NoProgram(String),
    /// The JIT refused the program (or has no executable memory).
    Jit(LoadError),
    /// The program stopped with a fault.
    Fault(Fault),
}

impl core::fmt::Display for RunError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RunError::NoProgram(n) => write!(f, "no program named {n}"),
            RunError::Jit(e) => write!(f, "the JIT cannot run the program: {e}"),
            RunError::Fault(e) => write!(f, "the program faulted: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RunError {}

/// The loaded programs, by id (their index), for tail calls.
struct ProgramList(Vec<Program>);

impl Programs for ProgramList {
    fn program(&self, id: u32) -> Option<&Program> {
        self.0.get(id as usize)
    }
}

/// An object's maps and programs in the runtime.
pub struct Loaded {
    /// The maps, the object's among them.
    pub maps: MapTable,
    map_ids: Vec<(String, u32)>,
    programs: ProgramList,
    /// Each program's machine code, compiled on its first JIT run.
    jitted: Vec<Option<JitProgram>>,
}

impl Loaded {
    /// Creates the object's maps (with `cpus` values per per-CPU entry)
    /// and loads every program; the first refusal is the error, naming the
    /// program's section and function.
    pub fn new(obj: &Object, cpus: u32) -> Result<Loaded, LoadError> {
        let all: Vec<&str> = obj.programs.iter().map(|p| p.name.as_str()).collect();
        Loaded::with_programs(obj, &all, cpus)
    }

    /// Loads only the programs named, and only the maps they reference (as
    /// libbpf does with autoload and autocreate turned off for the rest):
    /// one program of an object whose other programs or maps the runtime
    /// cannot have.
    pub fn with_programs(obj: &Object, names: &[&str], cpus: u32) -> Result<Loaded, LoadError> {
        let mut chosen = Vec::with_capacity(names.len());
        for name in names {
            let p = obj.program(name);
            chosen.push(p.ok_or_else(|| LoadError::new(Errno::ENOENT, format!("no program {name}")))?);
        }
        let used: Vec<usize> = chosen.iter().flat_map(|p| p.map_indexes()).collect();
        let mut maps = MapTable::new();
        let ids = obj.create_maps_where(&mut maps, cpus, |i| used.contains(&i))?;
        let mut programs = Vec::with_capacity(chosen.len());
        for p in chosen {
            let named = |mut e: LoadError| {
                if e.section.is_empty() {
                    e.section = p.section.clone();
                }
                e.reason = format!("program {}: {}", p.name, e.reason);
                e
            };
            let insns = p.insns_with_maps(&ids).map_err(named)?;
            programs.push(Program::load(&p.name, p.prog_type, insns, &maps).map_err(named)?);
        }
        let names = obj.maps.iter().map(|m| m.name.clone());
        let map_ids = names.zip(ids).filter(|(_, id)| *id != u32::MAX).collect();
        let jitted = programs.iter().map(|_| None).collect();
        Ok(Loaded { maps, map_ids, programs: ProgramList(programs), jitted })
    }

    /// The program whose function is `name`.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.0.iter().find(|p| p.name == name)
    }

    /// The id of the object's map `name`.
    pub fn map_id(&self, name: &str) -> Option<u32> {
        self.map_ids.iter().find(|(n, _)| n == name).map(|m| m.1)
    }

    /// The object's map `name`.
    pub fn map(&self, name: &str) -> Option<&dyn Map> {
        self.maps.get(self.map_id(name)?)
    }

    /// The object's maps' (name, id), in the object's order.
    pub fn map_ids(&self) -> &[(String, u32)] {
        &self.map_ids
    }

    /// Runs program `name` in the interpreter on `ctx` (which programs of
    /// type SYSCALL may write, as in Linux), on CPU `cpu`; r0.
    pub fn run(&mut self, name: &str, os: &dyn Os, ctx: &mut [u8], cpu: u32) -> Result<u64, RunError> {
        self.run_on(Engine::Interpreter, name, os, ctx, cpu)
    }

    /// [`Loaded::run`] with the engine chosen. The JIT compiles a program
    /// on its first run (with executable memory from `os`) and keeps it.
    pub fn run_on(
        &mut self,
        engine: Engine,
        name: &str,
        os: &dyn Os,
        ctx: &mut [u8],
        cpu: u32,
    ) -> Result<u64, RunError> {
        let index = self.programs.0.iter().position(|p| p.name == name);
        let index = index.ok_or_else(|| RunError::NoProgram(name.into()))?;
        let prog = &self.programs.0[index];
        if engine == Engine::Jit && self.jitted[index].is_none() {
            self.jitted[index] = Some(JitProgram::compile(prog, os).map_err(RunError::Jit)?);
        }
        let mut env = Env::new(os, &mut self.maps, ctx);
        env.ctx_writable = prog.prog_type == prog_type::SYSCALL;
        env.cpu = cpu;
        env.progs = Some(&self.programs);
        let result = match (engine, &self.jitted[index]) {
            (Engine::Jit, Some(code)) => code.run(&mut env),
            _ => prog.run(&mut env),
        };
        result.map_err(RunError::Fault)
    }
}
