//! Programs: instructions, the safety pass that admits them, and the run
//! environment shared by the interpreter, the JIT and the helpers.

use crate::consts::{MAX_FRAMES, STACK_PER_FRAME};
use crate::map::MapTable;
use crate::osutil::Os;
use crate::retcode::{Errno, Fault, LoadError};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

pub(crate) mod cfg;
mod dataflow;
pub mod interp;
pub mod memory;
pub mod ops;
pub mod verify;

/// One eBPF instruction (8 bytes; ld_imm64 takes two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Insn {
    /// The opcode.
    pub op: u8,
    /// Destination register (low nibble of byte 1).
    pub dst: u8,
    /// Source register (high nibble of byte 1).
    pub src: u8,
    /// Signed offset.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    /// Decodes one little-endian instruction.
    pub fn decode(b: [u8; 8]) -> Insn {
        Insn {
            op: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encodes the instruction as the kernel reads it.
    pub fn encode(&self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [self.op, (self.src << 4) | (self.dst & 0x0f), off[0], off[1], imm[0], imm[1], imm[2], imm[3]]
    }

    /// Decodes a program's bytes (a multiple of 8).
    pub fn decode_all(bytes: &[u8]) -> Result<Vec<Insn>, LoadError> {
        if !bytes.len().is_multiple_of(8) {
            return Err(LoadError::new(Errno::EINVAL, "program size is not a multiple of 8 bytes"));
        }
        Ok(bytes.chunks_exact(8).map(|c| Insn::decode([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect())
    }
}

/// Bytes of stack a run gets: every frame's.
pub const STACK_SIZE: usize = STACK_PER_FRAME * MAX_FRAMES;

/// A program the safety pass admitted, ready for the interpreter or the JIT.
#[derive(Debug, Clone)]
pub struct Program {
    /// The program's name (its function name in an object).
    pub name: String,
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// The instructions, with map references resolved: ld_imm64 of a map
    /// loads its handle ([`crate::mem::map_handle`]), of a map value its
    /// address.
    pub insns: Vec<Insn>,
}

impl Program {
    /// Runs the safety pass over `insns` and resolves their map references
    /// against `maps` (see [`verify`]): the program's entry sets r1 only.
    pub fn load(name: &str, prog_type: u32, insns: Vec<Insn>, maps: &MapTable) -> Result<Program, LoadError> {
        Program::load_with(name, prog_type, insns, maps, &verify::Options::default())
    }

    /// [`Program::load`] with explicit safety-pass options (for example,
    /// an entry that also sets r2, as the conformance suite's programs expect).
    pub fn load_with(
        name: &str,
        prog_type: u32,
        insns: Vec<Insn>,
        maps: &MapTable,
        options: &verify::Options,
    ) -> Result<Program, LoadError> {
        let insns = verify::check(insns, maps, options).map_err(|e| e.in_section(name))?;
        Ok(Program { name: String::from(name), prog_type, insns })
    }

    /// Runs the program in the interpreter with r1 pointing to the context;
    /// r0 at its exit.
    pub fn run(&self, env: &mut Env) -> Result<u64, Fault> {
        self.run_with_regs(env, crate::mem::vaddr(crate::mem::REGION_CTX, 0), 0)
    }

    /// Runs the program in the interpreter with r1 and r2 set as given.
    pub fn run_with_regs(&self, env: &mut Env, r1: u64, r2: u64) -> Result<u64, Fault> {
        interp::run(self, env, [r1, r2])
    }
}

/// The programs a tail call can reach, by id (a prog array's values).
pub trait Programs {
    /// Program `id`, if it exists.
    fn program(&self, id: u32) -> Option<&Program>;
    /// Program `id` compiled by the JIT, if its owner keeps one (a JIT run
    /// otherwise compiles a tail call's target itself, once per run).
    fn jit(&self, id: u32) -> Option<&crate::jit::JitProgram> {
        let _ = id;
        None
    }
}

/// Instructions a run executes before it faults, unless the caller sets
/// [`Env::budget`] otherwise.
pub const DEFAULT_BUDGET: u64 = 1 << 24;

/// What a run may touch and call: the OS, the maps, the context. The
/// interpreter, the JIT's code and the helpers all work through it.
pub struct Env<'a> {
    /// The OS the runtime runs in.
    pub os: &'a dyn Os,
    /// Every map of the runtime (map handles and value addresses name them by id).
    pub maps: &'a mut MapTable,
    /// The context memory (r1 at entry points to its first byte).
    pub ctx: &'a mut [u8],
    /// Whether the program may store into the context.
    pub ctx_writable: bool,
    /// The CPU the run is on (per-CPU maps use this CPU's values).
    pub cpu: u32,
    /// Instructions the run may execute before it faults. Every executed
    /// instruction counts one (ld_imm64 and a call included; a helper's
    /// own work is not counted), across BPF-to-BPF calls, bpf_loop
    /// callbacks and tail calls.
    pub budget: u64,
    /// The programs tail calls reach; `None`: every tail call falls through.
    pub progs: Option<&'a dyn Programs>,
    /// The run's stack ([`STACK_SIZE`] bytes, every frame's): the stack
    /// region of [`crate::mem`]. A run zeroes it first; helpers read keys
    /// and values from it through [`memory`].
    pub stack: Vec<u8>,
    /// The JIT's region table, kept between runs of this environment and
    /// rebuilt only when the context, the stack or the maps change.
    pub jit_cache: crate::jit::RegionCache,
}

impl<'a> Env<'a> {
    /// An environment on CPU `os.cpu_id()` with a read-only context, no
    /// tail-call targets and [`DEFAULT_BUDGET`].
    pub fn new(os: &'a dyn Os, maps: &'a mut MapTable, ctx: &'a mut [u8]) -> Self {
        let cpu = os.cpu_id();
        Env {
            os,
            maps,
            ctx,
            ctx_writable: false,
            cpu,
            budget: DEFAULT_BUDGET,
            progs: None,
            stack: vec![0; STACK_SIZE],
            jit_cache: Default::default(),
        }
    }
}
