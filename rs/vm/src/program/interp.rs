//! The interpreter: executes an admitted [`Program`] instruction by
//! instruction, with every memory access checked ([`super::memory`]) and
//! the instruction budget counted.
//!
//! Each BPF-to-BPF call (and each bpf_loop callback) runs in a new frame of
//! the stack region: frame `k`'s r10 is `vaddr(REGION_STACK, (k + 1) *
//! 512)`, r1-r5 are passed, r6-r9 are the caller's again after the return.
//! A tail call replaces the program running in the current frame.
//!
//! Register values the safety pass treats as unset are still defined, so
//! that the interpreter and the JIT agree even where a helper reads more
//! registers than the pass checks (trace_printk's r3-r5) and no host value
//! can leak into a program:
//! - at the entry every register but r1 (and r2 when given) and r10 is 0;
//! - a callee starts with r0 and r6-r9 at 0;
//! - after any call (helper, BPF-to-BPF, bpf_loop, a tail call that falls
//!   through) r1-r5 are 0;
//! - a tail call starts its program with the r1 it was given, r10 of the
//!   current frame, and every other register 0.

use super::{memory, ops, Env, Insn, Program, Programs};
use crate::consts::{alu, STACK_PER_FRAME};
use crate::consts::{atomic, class, helper, jmp, mode, pseudo, size, src, FP, MAX_FRAMES, MAX_TAIL_CALLS};
use crate::helpers;
use crate::mem::{handle_map, offset_of, region_of, vaddr, REGION_FUNCS, REGION_STACK};
use crate::retcode::{Errno, Fault};

/// Runs `prog` from its first instruction with r1 and r2 set to `args`;
/// r0 at its exit. The first frame is zeroed first, each other one when a
/// call enters it ([`memory::fresh_stack`]).
pub fn run(prog: &Program, env: &mut Env, args: [u64; 2]) -> Result<u64, Fault> {
    memory::fresh_stack(env);
    let mut regs: Regs = [0; 16];
    regs[1] = args[0];
    regs[2] = args[1];
    let mut machine = Machine { env, executed: 0, tail_calls: 0 };
    machine.exec(&prog.insns, 0, 0, regs)
}

/// The access size in bytes of a load or store opcode.
pub fn access_size(op: u8) -> usize {
    match op & 0x18 {
        size::B => 1,
        size::H => 2,
        size::W => 4,
        _ => 8,
    }
}

/// The negated errno a helper returns, as a register value.
pub fn neg_errno(e: Errno) -> u64 {
    (-(e.code() as i64)) as u64
}

/// The registers: r0-r10, in an array of 16 so that a 4-bit register
/// field indexes it without a bounds check (r11-r15 are never used: the
/// safety pass refuses them).
type Regs = [u64; 16];

/// The index of register field `r`.
#[inline(always)]
fn r(field: u8) -> usize {
    (field & 0x0f) as usize
}

struct Machine<'e, 'a> {
    env: &'e mut Env<'a>,
    executed: u64,
    tail_calls: u32,
}

/// Where the next instruction is after one executed.
enum Next {
    /// The following instruction.
    Step,
    /// `pc + 1 + delta`.
    Jump(i64),
    /// The frame returns r0.
    Exit,
}

impl<'a> Machine<'_, 'a> {
    /// Executes `code` from `pc` in frame `frame` until its exit.
    fn exec<'p>(&mut self, code: &'p [Insn], pc: usize, frame: usize, regs: Regs) -> Result<u64, Fault>
    where
        'a: 'p,
    {
        let (mut code, mut pc, mut regs) = (code, pc, regs);
        regs[r(FP)] = vaddr(REGION_STACK, ((frame + 1) * STACK_PER_FRAME) as u32);
        let budget = self.env.budget;
        loop {
            let Some(&insn) = code.get(pc) else {
                return Err(Fault::Other { pc, reason: "execution ran past the last instruction".into() });
            };
            if self.executed == budget {
                return Err(Fault::Budget { pc, budget });
            }
            self.executed += 1;
            let next = match insn.op & 0x07 {
                class::ALU | class::ALU64 => alu_step(insn, &mut regs),
                class::LD => {
                    let hi = code.get(pc + 1).map_or(0, |n| n.imm as u32 as u64);
                    regs[r(insn.dst)] = hi << 32 | insn.imm as u32 as u64;
                    Next::Jump(1)
                }
                class::LDX => self.load_step(pc, insn, &mut regs)?,
                class::ST | class::STX => self.store_step(pc, insn, &mut regs)?,
                _ => match insn.op & 0xf0 {
                    jmp::CALL if insn.src == pseudo::CALL => {
                        let target = offset(pc, insn.imm as i64);
                        regs[0] = self.call(code, target, frame, pc, &regs)?;
                        clobber(&mut regs);
                        Next::Step
                    }
                    jmp::CALL if insn.imm as u32 == helper::TAIL_CALL => {
                        match self.tail_call_target(regs[2], regs[3]) {
                            Some(prog) => {
                                code = &prog.insns;
                                pc = 0;
                                regs = tail_call_regs(&regs);
                                continue;
                            }
                            None => {
                                regs[0] = neg_errno(Errno::ENOENT);
                                clobber(&mut regs);
                                Next::Step
                            }
                        }
                    }
                    jmp::CALL => {
                        regs[0] = self.helper(code, frame, pc, insn.imm as u32, &regs)?;
                        clobber(&mut regs);
                        Next::Step
                    }
                    jmp::EXIT => Next::Exit,
                    _ => jump_step(insn, &regs),
                },
            };
            match next {
                Next::Step => pc += 1,
                Next::Jump(delta) => pc = offset(pc, delta),
                Next::Exit => return Ok(regs[0]),
            }
        }
    }

    /// A BPF-to-BPF call from frame `frame` to `target`: r0 of the callee.
    fn call(&mut self, code: &[Insn], target: usize, frame: usize, pc: usize, regs: &Regs) -> Result<u64, Fault> {
        if frame + 1 >= MAX_FRAMES {
            return Err(Fault::CallDepth { pc });
        }
        let mut callee: Regs = [0; 16];
        callee[1..6].copy_from_slice(&regs[1..6]);
        memory::zero_frame(self.env, frame + 1);
        self.exec(code, target, frame + 1, callee)
    }

    /// A helper call; bpf_loop runs its callback here, the others are
    /// [`helpers::call`].
    fn helper(&mut self, code: &[Insn], frame: usize, pc: usize, id: u32, regs: &Regs) -> Result<u64, Fault> {
        let args = [regs[1], regs[2], regs[3], regs[4], regs[5]];
        if id != helper::LOOP {
            return helpers::call(self.env, pc, id, args);
        }
        let [nr_loops, callback, ctx, flags, _] = args;
        if flags != 0 {
            return Ok(neg_errno(Errno::EINVAL));
        }
        if nr_loops > helpers::MAX_LOOPS {
            return Ok(neg_errno(Errno::E2BIG));
        }
        let target = offset_of(callback) as usize;
        if region_of(callback) != REGION_FUNCS || target >= code.len() {
            return Err(Fault::Helper { pc, id, reason: alloc::format!("callback {callback:#x} is not a function") });
        }
        for i in 0..nr_loops {
            let mut args: Regs = [0; 16];
            args[1] = i;
            args[2] = ctx;
            if self.call(code, target, frame, pc, &args)? != 0 {
                return Ok(i + 1);
            }
        }
        Ok(nr_loops)
    }

    /// The program a tail call through prog array `handle` at `index`
    /// reaches, or `None` to fall through (no such map, slot or program,
    /// or [`MAX_TAIL_CALLS`] taken already).
    fn tail_call_target(&mut self, handle: u64, index: u64) -> Option<&'a Program> {
        if self.tail_calls >= MAX_TAIL_CALLS {
            return None;
        }
        let map = self.env.maps.get(handle_map(handle)?)?;
        let id = map.prog_at(u32::try_from(index).ok()?)?;
        let progs: &'a dyn Programs = self.env.progs?;
        let prog = progs.program(id)?;
        self.tail_calls += 1;
        Some(prog)
    }

    #[inline]
    fn load_step(&mut self, pc: usize, insn: Insn, regs: &mut Regs) -> Result<Next, Fault> {
        let size = access_size(insn.op);
        let addr = regs[r(insn.src)].wrapping_add(insn.off as i64 as u64);
        let v = memory::load(self.env, pc, addr, size)?;
        regs[r(insn.dst)] = if insn.op & 0xe0 == mode::MEMSX { ops::sign_extend(v, size as u32 * 8) } else { v };
        Ok(Next::Step)
    }

    #[inline]
    fn store_step(&mut self, pc: usize, insn: Insn, regs: &mut Regs) -> Result<Next, Fault> {
        let size = access_size(insn.op);
        let addr = regs[r(insn.dst)].wrapping_add(insn.off as i64 as u64);
        if insn.op & 0x07 == class::ST {
            memory::store(self.env, pc, addr, size, insn.imm as i64 as u64)?;
        } else if insn.op & 0xe0 == mode::ATOMIC {
            self.atomic(pc, insn, addr, size, regs)?;
        } else {
            memory::store(self.env, pc, addr, size, regs[r(insn.src)])?;
        }
        Ok(Next::Step)
    }

    fn atomic(&mut self, pc: usize, insn: Insn, addr: u64, size: usize, regs: &mut Regs) -> Result<(), Fault> {
        memory::check_atomic_alignment(pc, addr, size)?;
        let old = memory::load(self.env, pc, addr, size)?;
        let src = regs[r(insn.src)];
        let narrow = |v: u64| if size == 4 { v as u32 as u64 } else { v };
        if insn.imm == atomic::CMPXCHG {
            if narrow(regs[0]) == old {
                memory::store(self.env, pc, addr, size, src)?;
            }
            regs[0] = old;
            return Ok(());
        }
        memory::store(self.env, pc, addr, size, ops::atomic_result(insn.imm, old, src))?;
        if insn.imm & atomic::FETCH != 0 {
            regs[r(insn.src)] = old;
        }
        Ok(())
    }
}

/// After a call: r1-r5 read as 0.
#[inline]
fn clobber(regs: &mut Regs) {
    regs[1..6].fill(0);
}

/// The registers a tail-called program starts with: r1 and r10 kept.
fn tail_call_regs(regs: &Regs) -> Regs {
    let mut fresh: Regs = [0; 16];
    fresh[1] = regs[1];
    fresh[r(FP)] = regs[r(FP)];
    fresh
}

/// `pc + 1 + delta` (the verifier keeps it inside the program; a bad one
/// faults when fetched).
#[inline]
fn offset(pc: usize, delta: i64) -> usize {
    (pc as i64).wrapping_add(1).wrapping_add(delta) as usize
}

#[inline]
fn alu_step(insn: Insn, regs: &mut Regs) -> Next {
    let wide = insn.op & 0x07 == class::ALU64;
    let op = insn.op & 0xf0;
    let dst = regs[r(insn.dst)];
    let value = if op == alu::END {
        ops::byte_swap(dst, insn.imm, wide || insn.op & src::X != 0)
    } else {
        let s = if insn.op & src::X != 0 { regs[r(insn.src)] } else { insn.imm as i64 as u64 };
        if wide {
            ops::alu64(op, insn.off, dst, s)
        } else {
            ops::alu32(op, insn.off, dst, s)
        }
    };
    regs[r(insn.dst)] = value;
    Next::Step
}

#[inline]
fn jump_step(insn: Insn, regs: &Regs) -> Next {
    let wide = insn.op & 0x07 == class::JMP;
    let op = insn.op & 0xf0;
    if op == jmp::JA {
        return Next::Jump(if wide { insn.off as i64 } else { insn.imm as i64 });
    }
    let s = if insn.op & src::X != 0 { regs[r(insn.src)] } else { insn.imm as i64 as u64 };
    if ops::jump_taken(op, wide, regs[r(insn.dst)], s) {
        Next::Jump(insn.off as i64)
    } else {
        Next::Step
    }
}
