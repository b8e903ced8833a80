//! The only unsafe part of the JIT: calling installed code, and the Rust
//! functions that code calls back (a helper trampoline and the slow path
//! of memory accesses), which turn the raw pointers the code passes back
//! into the references they were made from. The work itself is done in
//! safe code ([`super::run`]).
#![allow(unsafe_code)]

use super::layout;
use super::run::{self, RunState};
use crate::osutil::ExecMemory;

/// What the helper trampoline returns: r0 in rax, a status in rdx.
#[repr(C)]
pub struct HelperResult {
    /// r0 after the call.
    pub r0: u64,
    /// [`layout::STATUS_OK`] to go on, or a status to leave with.
    pub status: u64,
}

/// The entry function at offset 0 of every program's code.
type Entry = unsafe extern "sysv64" fn(block: *mut u64, r1: u64, r2: u64, code: *const u8) -> u64;

/// A place to enter installed code: the code's entry function and an
/// instruction start in the same code. Made only from an [`ExecMemory`]
/// a [`super::JitProgram`] owns, which lives as long as the run.
#[derive(Clone, Copy)]
pub struct CodeRef {
    entry: *const u8,
    target: *const u8,
}

impl CodeRef {
    /// The instruction at `offset` bytes of the code in `mem` (below `len`).
    pub fn new(mem: &dyn ExecMemory, len: usize, offset: u32) -> Option<CodeRef> {
        let offset = offset as usize;
        (offset < len).then(|| CodeRef { entry: mem.entry(), target: mem.entry().wrapping_add(offset) })
    }
}

/// Runs installed code: its entry function calls the instruction of
/// `code` with r1 and r2, the frame and budget taken from `block`; the
/// exit status.
pub fn enter(code: CodeRef, state: &mut RunState, block: &mut [u64], r1: u64, r2: u64) -> u64 {
    layout::set(block, layout::STATE, state as *mut RunState as u64);
    let words = block.as_mut_ptr();
    // SAFETY: `code` was made from the installed memory of a JitProgram
    // alive for the whole run (CodeRef::new: entry() is its first byte,
    // executable), whose offset 0 is the entry function with exactly this
    // signature, and `target` an instruction start in it. `words` is the
    // block the run built, its region table describing only live memory
    // (the env's stack, ctx and map arenas, which neither move nor shrink
    // during the run), and STATE points to `state`; both are exclusively
    // borrowed for the call and reach the code only through these
    // pointers. The code checks every access against the table, never
    // unwinds, and returns here.
    unsafe {
        let entry: Entry = core::mem::transmute::<*const u8, Entry>(code.entry);
        entry(words, r1, r2, code.target)
    }
}

/// The run state and block behind the pointers the code passes back.
///
/// # Safety
/// `block` must be the block of a run in progress (passed by the code
/// [`enter`] called), whose STATE word points to the `RunState` given to
/// [`enter`]; both are borrowed by `enter` and not otherwise accessed
/// while the code runs.
unsafe fn from_code<'s>(block: *mut u64) -> (&'s mut RunState<'s, 's>, &'s mut [u64]) {
    // SAFETY: per this function's contract, the block's length is its
    // NREGIONS header word's table plus the header, and STATE is live.
    unsafe {
        let regions = *block.add(layout::NREGIONS as usize / 8) as usize;
        let len = layout::words_for(regions);
        let words = core::slice::from_raw_parts_mut(block, len);
        let state = &mut *(words[layout::STATE as usize / 8] as *mut RunState);
        (state, words)
    }
}

/// Called by the code for every helper call: r1-r5 in place, pc and id
/// in one word, the block as the 7th argument.
pub extern "sysv64" fn helper_trampoline(
    r1: u64,
    r2: u64,
    r3: u64,
    r4: u64,
    r5: u64,
    pc_id: u64,
    block: *mut u64,
) -> HelperResult {
    // SAFETY: the code passes the block of the run it is part of, which
    // `enter` set up (see `from_code`).
    let (state, words) = unsafe { from_code(block) };
    let (pc, id) = ((pc_id >> 32) as usize, pc_id as u32);
    guarded(state, pc, |s| run::helper(s, words, pc, id, [r1, r2, r3, r4, r5]))
}

/// Called by the code when the inline check did not admit an access: the
/// host address, or 0 after recording the fault.
pub extern "sysv64" fn access_trampoline(block: *mut u64, addr: u64, packed: u64, r0: u64) -> u64 {
    // SAFETY: as in `helper_trampoline`.
    let (state, _) = unsafe { from_code(block) };
    let (pc, kind, size) = layout::unpack(packed);
    let r = guarded(state, pc, |s| HelperResult { r0: run::access(s, pc, addr, kind, size, r0), status: 0 });
    if r.status == layout::STATUS_OK {
        r.r0
    } else {
        0
    }
}

/// Runs `f`, turning a panic into a fault so that none unwinds into JIT
/// frames (without std, a panic here aborts instead: the ABI does not unwind).
#[cfg(feature = "std")]
fn guarded(state: &mut RunState, pc: usize, f: impl FnOnce(&mut RunState) -> HelperResult) -> HelperResult {
    let s = &mut *state;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(s))) {
        Ok(r) => r,
        Err(_) => {
            run::fail(state, crate::retcode::Fault::Other { pc, reason: "jit: a call out of the code panicked".into() })
        }
    }
}

#[cfg(not(feature = "std"))]
fn guarded(state: &mut RunState, _pc: usize, f: impl FnOnce(&mut RunState) -> HelperResult) -> HelperResult {
    f(state)
}
