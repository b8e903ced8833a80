//! A run of JIT code, the safe part: the region table, the results of
//! the code's exits, and what the code calls back for (helpers, the slow
//! path of accesses, bpf_loop's callbacks and tail calls, which run in
//! nested entries of the code on the same block).

use super::exec::{self, HelperResult};
use super::layout::{self, Access, Block};
use super::JitProgram;
use crate::consts::{helper, MAX_FRAMES, MAX_TAIL_CALLS, STACK_PER_FRAME};
use crate::helpers::{self, MAX_LOOPS};
use crate::mem::{handle_map, offset_of, region_of, vaddr, REGION_CTX, REGION_FUNCS, REGION_MAPS, REGION_STACK};
use crate::program::{memory, Env};
use crate::retcode::{Errno, Fault};
use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;

/// Which program's code is running (bpf_loop finds its callback there).
#[derive(Clone, Copy)]
enum Current {
    /// The program the run started with.
    Root,
    /// A tail call's target compiled by [`Env::progs`]'s owner.
    Provided(u32),
    /// A tail call's target compiled for this run.
    Cached(usize),
}

/// What the code's callbacks reach through the block's STATE word.
pub struct RunState<'e, 'a> {
    env: &'e mut Env<'a>,
    root: &'e JitProgram,
    current: Current,
    fault: Option<Fault>,
    tail_calls: u32,
    compiled: Vec<(u32, Box<JitProgram>)>,
}

impl<'a> RunState<'_, 'a> {
    fn program(&self) -> &JitProgram {
        match self.current {
            Current::Root => self.root,
            Current::Provided(id) => self.env.progs.and_then(|p| p.jit(id)).unwrap_or(self.root),
            Current::Cached(i) => &self.compiled[i].1,
        }
    }
}

/// Runs `prog` with r1 and r2: the stack zeroed, the block built, the
/// code entered at the first instruction.
pub fn run(prog: &JitProgram, env: &mut Env, r1: u64, r2: u64) -> Result<u64, Fault> {
    memory::fresh_stack(env);
    let mut block = region_table(env);
    let budget = env.budget;
    let mut state =
        RunState { env, root: prog, current: Current::Root, fault: None, tail_calls: 0, compiled: Vec::new() };
    let status = match prog.code_at(0) {
        Some(code) => exec::enter(code, &mut state, &mut block.words, r1, r2),
        None => return Err(Fault::Other { pc: 0, reason: "jit: the program is empty".into() }),
    };
    let result = exit_result(status, &block, &mut state, budget);
    state.env.jit_cache.words = block.words;
    result
}

/// What the code's exit status means.
fn exit_result(status: u64, block: &Block, state: &mut RunState, budget: u64) -> Result<u64, Fault> {
    match status {
        layout::STATUS_OK => Ok(block.get(layout::R0)),
        layout::STATUS_BUDGET => Err(Fault::Budget { pc: block.get(layout::FAULT_PC) as usize, budget }),
        layout::STATUS_CALL_DEPTH => Err(Fault::CallDepth { pc: block.get(layout::FAULT_PC) as usize }),
        layout::STATUS_RAN_OFF => {
            let pc = block.get(layout::FAULT_PC) as usize;
            Err(Fault::Other { pc, reason: "execution ran past the last instruction".into() })
        }
        _ => Err(state.fault.take().unwrap_or(Fault::Other { pc: 0, reason: format!("jit: exit status {status}") })),
    }
}

/// The block of a run: the header and one entry per region the env has;
/// the entries from the env's cache when they were built for the same
/// context, stack and maps.
fn region_table(env: &mut Env) -> Block {
    let stack = env.stack.as_mut_ptr() as u64;
    let built_for = described(env, stack);
    let cached = core::mem::take(&mut env.jit_cache.words);
    let mut block = if env.jit_cache.built_for.is_some_and(|b| same(&b, &built_for)) && !cached.is_empty() {
        Block { words: cached }
    } else {
        let block = region_entries(env, stack);
        env.jit_cache.built_for = Some(built_for);
        block
    };
    // The code writes header words during a run (the frame at a bpf_loop
    // or tail call, the budget): every run sets them afresh.
    block.set(layout::STACK_DELTA, vaddr(REGION_STACK, 0).wrapping_sub(stack));
    block.set(layout::FRAME, stack + STACK_PER_FRAME as u64);
    block.set(layout::LAST_FRAME, stack + (MAX_FRAMES * STACK_PER_FRAME) as u64);
    block.set(layout::BUDGET, env.budget);
    block
}

/// What a region table is built from: the stack and the context (host
/// address, length, writability) and the map table's epoch, which changes
/// whenever a map is added or removed (an arena never moves while its map
/// lives). A cached table is used only when this is unchanged, so it can
/// never point at memory that moved or was freed.
fn described(env: &Env, stack: u64) -> [u64; 6] {
    let ctx = [env.ctx.as_ptr() as u64, env.ctx.len() as u64, env.ctx_writable as u64];
    [stack, env.stack.len() as u64, ctx[0], ctx[1], ctx[2], env.maps.epoch() as u64]
}

/// Whether two descriptions are equal, compared word by word without a
/// branch or a call (an array `==` calls memcmp: a third of an empty run).
fn same(a: &[u64; 6], b: &[u64; 6]) -> bool {
    a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// A block whose entries describe the env's regions.
fn region_entries(env: &mut Env, stack: u64) -> Block {
    let regions = REGION_MAPS as usize + env.maps.len();
    let mut block = Block::new(regions);
    for region in [REGION_STACK, REGION_CTX] {
        if let Some(info) = memory::region_info(env, region) {
            let host = if region == REGION_STACK { stack } else { env.ctx.as_mut_ptr() as u64 };
            block.set_region(region as usize, host, info);
        }
    }
    for id in 0..env.maps.len() as u32 {
        let region = REGION_MAPS + id;
        let Some(info) = memory::region_info(env, region) else { continue };
        if let Some(map) = env.maps.get_mut(id) {
            block.set_region(region as usize, map.values_mut().as_mut_ptr() as u64, info);
        }
    }
    block
}

/// Records `fault` and tells the code to leave.
pub fn fail(state: &mut RunState, fault: Fault) -> HelperResult {
    state.fault = Some(fault);
    HelperResult { r0: 0, status: layout::STATUS_FAULT }
}

/// The slow path of an access: checks it exactly as the interpreter does
/// ([`memory`]); the host address, or 0 with the fault recorded.
pub fn access(state: &mut RunState, pc: usize, addr: u64, kind: Access, size: usize, r0: u64) -> u64 {
    let env = &mut *state.env;
    let aligned = match kind {
        Access::Atomic | Access::CmpXchg => memory::check_atomic_alignment(pc, addr, size),
        Access::Load | Access::Store => Ok(()),
    };
    let checked = aligned.and_then(|()| match kind {
        Access::Load => memory::bytes(env, pc, addr, size).map(|b| b.as_ptr() as u64),
        Access::Store => memory::bytes_mut(env, pc, addr, size).map(|b| b.as_mut_ptr() as u64),
        Access::Atomic => match memory::bytes(env, pc, addr, size) {
            Ok(_) => memory::bytes_mut(env, pc, addr, size).map(|b| b.as_mut_ptr() as u64),
            Err(f) => Err(f),
        },
        Access::CmpXchg => cmpxchg_access(env, pc, addr, size, r0),
    });
    match checked {
        Ok(host) => host,
        Err(f) => {
            state.fault = Some(f);
            0
        }
    }
}

/// cmpxchg stores only when the value equals r0: read-only memory whose
/// value differs is only read (the code's locked cmpxchg then writes the
/// same bytes back).
fn cmpxchg_access(env: &mut Env, pc: usize, addr: u64, size: usize, r0: u64) -> Result<u64, Fault> {
    let old = memory::load(env, pc, addr, size)?;
    let expected = if size == 4 { r0 as u32 as u64 } else { r0 };
    if old == expected {
        return memory::bytes_mut(env, pc, addr, size).map(|b| b.as_mut_ptr() as u64);
    }
    memory::bytes_read_mut(env, pc, addr, size).map(|b| b.as_mut_ptr() as u64)
}

/// A helper call from the code; bpf_loop and tail calls run code again.
pub fn helper(state: &mut RunState, block: &mut [u64], pc: usize, id: u32, args: [u64; 5]) -> HelperResult {
    match id {
        helper::LOOP => bpf_loop(state, block, pc, args),
        helper::TAIL_CALL => tail_call(state, block, pc, args),
        _ => match helpers::call(state.env, pc, id, args) {
            Ok(r0) => ok(r0),
            Err(f) => fail(state, f),
        },
    }
}

/// Go on with `r0`.
fn ok(r0: u64) -> HelperResult {
    HelperResult { r0, status: layout::STATUS_OK }
}

/// The negated errno as r0.
fn neg(e: Errno) -> HelperResult {
    ok((-(e.code() as i64)) as u64)
}

/// bpf_loop: the callback in a new frame for each index until it returns
/// nonzero; r0 is the iterations run. A fault or exhausted budget inside
/// ends the run (its status goes on up).
fn bpf_loop(state: &mut RunState, block: &mut [u64], pc: usize, args: [u64; 5]) -> HelperResult {
    let [nr_loops, callback, ctx, flags, _] = args;
    if flags != 0 {
        return neg(Errno::EINVAL);
    }
    if nr_loops > MAX_LOOPS {
        return neg(Errno::E2BIG);
    }
    let target = offset_of(callback) as usize;
    let code = state.program().code_at(target).filter(|_| region_of(callback) == REGION_FUNCS);
    let Some(code) = code else {
        let reason = format!("callback {callback:#x} is not a function");
        return fail(state, Fault::Helper { pc, id: helper::LOOP, reason });
    };
    let frame = layout::get(block, layout::FRAME);
    // Each callback is a call: from the last frame, the first one faults.
    if nr_loops > 0 && frame >= layout::get(block, layout::LAST_FRAME) {
        return fail(state, Fault::CallDepth { pc });
    }
    // The callback's frame, as a frame index of the stack region.
    let callee = (frame.wrapping_sub(state.env.stack.as_ptr() as u64) / STACK_PER_FRAME as u64) as usize;
    for i in 0..nr_loops {
        layout::set(block, layout::FRAME, frame + STACK_PER_FRAME as u64);
        memory::zero_frame(state.env, callee);
        let status = exec::enter(code, state, block, i, ctx);
        if status != layout::STATUS_OK {
            return HelperResult { r0: 0, status };
        }
        if layout::get(block, layout::R0) != 0 {
            return ok(i + 1);
        }
    }
    ok(nr_loops)
}

/// A tail call: the target program runs to its exit in the caller's
/// frame, and the frame returns its r0 (status TAIL_DONE); without a
/// target (no such map, slot or program, or the count used up), r0 is
/// -ENOENT and the caller goes on, as in the interpreter.
fn tail_call(state: &mut RunState, block: &mut [u64], pc: usize, args: [u64; 5]) -> HelperResult {
    let Some(id) = tail_call_target(state, args[1], args[2]) else {
        return neg(Errno::ENOENT);
    };
    let current = match target_program(state, id) {
        Ok(c) => c,
        Err(f) => return fail(state, Fault::Other { pc, reason: format!("jit: tail call target {id}: {f}") }),
    };
    state.tail_calls += 1;
    let saved = core::mem::replace(&mut state.current, current);
    let code = state.program().code_at(0);
    let status = match code {
        // The target starts with r1 and r10 only, as in the interpreter.
        Some(code) => exec::enter(code, state, block, args[0], 0),
        None => layout::STATUS_FAULT,
    };
    state.current = saved;
    match status {
        layout::STATUS_OK => HelperResult { r0: layout::get(block, layout::R0), status: layout::STATUS_TAIL_DONE },
        _ => HelperResult { r0: 0, status },
    }
}

/// The program id a tail call through `handle` at `index` reaches.
fn tail_call_target(state: &RunState, handle: u64, index: u64) -> Option<u32> {
    if state.tail_calls >= MAX_TAIL_CALLS {
        return None;
    }
    let map = state.env.maps.get(handle_map(handle)?)?;
    let id = map.prog_at(u32::try_from(index).ok()?)?;
    state.env.progs?.program(id)?;
    Some(id)
}

/// Program `id`'s JIT code: its owner's, or compiled for this run.
fn target_program(state: &mut RunState, id: u32) -> Result<Current, crate::retcode::LoadError> {
    let progs = state.env.progs.ok_or_else(|| crate::retcode::LoadError::new(Errno::ENOENT, "no programs"))?;
    if progs.jit(id).is_some() {
        return Ok(Current::Provided(id));
    }
    if let Some(i) = state.compiled.iter().position(|(c, _)| *c == id) {
        return Ok(Current::Cached(i));
    }
    let prog = progs.program(id).ok_or_else(|| crate::retcode::LoadError::new(Errno::ENOENT, "no such program"))?;
    let jit = JitProgram::compile(prog, state.env.os)?;
    state.compiled.push((id, Box::new(jit)));
    Ok(Current::Cached(state.compiled.len() - 1))
}
