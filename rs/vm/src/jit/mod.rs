//! The x86-64 JIT: a program translated to machine code that keeps the
//! interpreter's semantics, faults included.
//!
//! - **Memory:** the code sees virtual addresses, as the interpreter does.
//!   Every load, store and atomic translates its address through the run's
//!   region table and checks it inline (region, bounds for the access size,
//!   writability); what the inline check does not admit (slotted map
//!   regions, faults) goes to a slow path that checks with
//!   [`crate::program::memory`] exactly as the interpreter does, so faults
//!   are the same [`Fault`]s. Accesses through r10 with a constant offset
//!   inside the frame go straight to the host stack.
//! - **Budget:** counted per basic block: at each block's start the code
//!   subtracts the block's instruction count and faults with
//!   [`Fault::Budget`] if the budget is exceeded. A run that completes
//!   executes exactly the instructions the interpreter counts, so a
//!   program finishes under the JIT if and only if it does under the
//!   interpreter. When the budget runs out the JIT stops at the start of
//!   the block that would exceed it (its `pc` is the block's first
//!   instruction), earlier than the interpreter, which stops at the first
//!   instruction past the budget: the differential tests compare only
//!   runs that finish within their budget, or both faulting on it.
//! - **Calls:** helpers through a Rust trampoline ([`crate::helpers::call`]);
//!   BPF-to-BPF calls as machine calls with a new frame (r6-r9 and the
//!   frame kept), [`Fault::CallDepth`] past [`crate::consts::MAX_FRAMES`];
//!   bpf_loop's callbacks and tail calls run as nested entries of the code
//!   on the same run, with the interpreter's semantics.
//!
//! - **Without the safety pass:** the JIT does not rely on it for the
//!   host's safety. It refuses what it cannot translate safely (a write to
//!   r10, a jump or call outside the program or into an ld_imm64, unknown
//!   opcodes), checks every access and the call depth at run time, guards
//!   x86 division's traps, and ends code that runs off its last
//!   instruction with a fault.
//!
//! On other architectures [`JitProgram::compile`] refuses with EOPNOTSUPP.

use crate::mem::{vaddr, REGION_CTX};
use crate::osutil::Os;
use crate::program::{Env, Program};
use crate::retcode::{Errno, Fault, LoadError};
use alloc::vec::Vec;

#[cfg(target_arch = "x86_64")]
mod emit;
#[cfg(target_arch = "x86_64")]
mod emit_alu;
#[cfg(target_arch = "x86_64")]
mod emit_call;
#[cfg(target_arch = "x86_64")]
mod emit_mem;
#[cfg(target_arch = "x86_64")]
mod exec;
#[cfg(target_arch = "x86_64")]
mod guess;
#[cfg(target_arch = "x86_64")]
mod layout;
#[cfg(target_arch = "x86_64")]
mod run;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

/// The JIT's region table of one [`Env`], kept between its runs: rebuilt
/// only when a region it describes may have changed (the stack's or the
/// context's address, length or writability, or the map table's epoch),
/// since building it is most of a short run's fixed cost.
#[derive(Default)]
pub struct RegionCache {
    /// The table's words (header and entries), as the code reads them.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    words: Vec<u64>,
    /// What the table was built from (`None`: nothing yet).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    built_for: Option<[u64; 6]>,
}

/// A program compiled to machine code in executable memory.
pub struct JitProgram {
    #[cfg(target_arch = "x86_64")]
    memory: alloc::boxed::Box<dyn crate::osutil::ExecMemory>,
    #[cfg(target_arch = "x86_64")]
    len: usize,
    #[cfg(target_arch = "x86_64")]
    pc_offsets: alloc::vec::Vec<u32>,
    #[cfg(not(target_arch = "x86_64"))]
    never: core::convert::Infallible,
}

impl core::fmt::Debug for JitProgram {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("JitProgram")
    }
}

impl JitProgram {
    /// Compiles `prog` (admitted by the safety pass) into executable memory
    /// from `os`; refused when the OS gives none or the architecture has no JIT.
    #[cfg(target_arch = "x86_64")]
    pub fn compile(prog: &Program, os: &dyn Os) -> Result<JitProgram, LoadError> {
        let runtime = emit::Runtime {
            helper: exec::helper_trampoline as *const () as u64,
            access: exec::access_trampoline as *const () as u64,
        };
        let code = emit::compile(&prog.insns, runtime).map_err(|e| e.in_section(prog.name.clone()))?;
        let mut memory = os.alloc_exec(code.bytes.len()).ok_or_else(|| {
            LoadError::new(Errno::ENOMEM, "jit: the OS gives no executable memory").in_section(prog.name.clone())
        })?;
        memory
            .install(&code.bytes)
            .map_err(|e| LoadError::new(e, "jit: installing the code failed").in_section(prog.name.clone()))?;
        Ok(JitProgram { memory, len: code.bytes.len(), pc_offsets: code.pc_offsets })
    }

    /// No JIT on this architecture: always EOPNOTSUPP.
    #[cfg(not(target_arch = "x86_64"))]
    pub fn compile(prog: &Program, os: &dyn Os) -> Result<JitProgram, LoadError> {
        let _ = os;
        Err(LoadError::new(Errno::EOPNOTSUPP, "jit: no JIT for this architecture").in_section(prog.name.clone()))
    }

    /// Runs the program with r1 pointing to the context; r0 at its exit.
    pub fn run(&self, env: &mut Env) -> Result<u64, Fault> {
        self.run_with_regs(env, vaddr(REGION_CTX, 0), 0)
    }

    /// Runs the program with r1 and r2 set as given (the conformance
    /// suite's r1 = memory, r2 = its length).
    #[cfg(target_arch = "x86_64")]
    pub fn run_with_regs(&self, env: &mut Env, r1: u64, r2: u64) -> Result<u64, Fault> {
        run::run(self, env, r1, r2)
    }

    /// Never called: no `JitProgram` exists on this architecture.
    #[cfg(not(target_arch = "x86_64"))]
    pub fn run_with_regs(&self, env: &mut Env, r1: u64, r2: u64) -> Result<u64, Fault> {
        let _ = (env, r1, r2);
        match self.never {}
    }

    /// Bytes of machine code.
    #[cfg(target_arch = "x86_64")]
    pub fn code_len(&self) -> usize {
        self.len
    }

    /// Where to enter the code at instruction `pc`.
    #[cfg(target_arch = "x86_64")]
    fn code_at(&self, pc: usize) -> Option<exec::CodeRef> {
        let offset = *self.pc_offsets.get(pc).filter(|&&o| o != u32::MAX)?;
        exec::CodeRef::new(&*self.memory, self.len, offset)
    }
}
