//! Register initialization: a forward dataflow over the control flow.
//!
//! The state at an instruction is the set of registers written on *every*
//! path to it (the meet is intersection). Reading a register outside that
//! set is refused (EACCES), as is an exit with r0 unset. At the entry r10
//! and the argument registers are set; a subprogram starts with r10 and
//! those of r1-r5 set at all its call sites (r0 and r6-r9 are its own); a
//! bpf_loop callback starts with r1 (the index), r2 (its context) and r10.
//! After any call r0 is set and r1-r5 are not.
//!
//! Instructions no path reaches are not checked here (their static checks
//! still apply).

use super::cfg::{flow, Cfg, Flow};
use super::Insn;
use crate::consts::{alu, atomic, class, jmp, mode, pseudo, src, FP};
use crate::helpers;
use crate::retcode::{Errno, LoadError};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

/// A set of registers, bit `r` for register `r`.
type Regs = u16;

const R10: Regs = 1 << FP;
const ARGS: Regs = 0b11_1110;

fn bit(r: u8) -> Regs {
    1 << r
}

/// Checks that no reachable instruction reads a register before it is
/// written; `entry_args` registers from r1 are set at the entry.
pub fn check(insns: &[Insn], cfg: &Cfg, entry_args: u8) -> Result<(), LoadError> {
    let mut state: Vec<Option<Regs>> = vec![None; insns.len()];
    let mut work = Vec::new();
    let entry_args: Regs = ((1u16 << entry_args) - 1) << 1;
    merge(&mut state, &mut work, 0, R10 | entry_args);
    for &cb in &cfg.callbacks {
        merge(&mut state, &mut work, cb, R10 | bit(1) | bit(2));
    }
    while let Some(pc) = work.pop() {
        let Some(regs) = state[pc] else { continue };
        let (reads, writes) = uses(insns[pc]);
        if let Some(r) = (0..=FP).find(|&r| reads & bit(r) != 0 && regs & bit(r) == 0) {
            let reason = if r == 0 && insns[pc].op == class::JMP | jmp::EXIT {
                alloc::string::String::from("r0 is not set at exit")
            } else {
                format!("r{r} is read before it is written")
            };
            return Err(LoadError::at(pc, Errno::EACCES, reason));
        }
        let helper_call = insns[pc].op == class::JMP | jmp::CALL && insns[pc].src != pseudo::CALL;
        let after = if helper_call { (regs & !ARGS) | writes } else { regs | writes };
        match flow(insns, pc) {
            Flow::Next(n) => merge(&mut state, &mut work, n, after),
            Flow::Jump(t) => merge(&mut state, &mut work, t, after),
            Flow::Branch(n, t) => {
                merge(&mut state, &mut work, n, after);
                merge(&mut state, &mut work, t, after);
            }
            Flow::Call(callee, n) => {
                merge(&mut state, &mut work, callee, R10 | (regs & ARGS));
                merge(&mut state, &mut work, n, (regs & !ARGS) | bit(0));
            }
            Flow::Exit => {}
        }
    }
    Ok(())
}

/// Meets `regs` into the state at `pc`; queues `pc` if that changed it.
fn merge(state: &mut [Option<Regs>], work: &mut Vec<usize>, pc: usize, regs: Regs) {
    let Some(slot) = state.get_mut(pc) else { return };
    let met = slot.map_or(regs, |old| old & regs);
    if *slot != Some(met) {
        *slot = Some(met);
        work.push(pc);
    }
}

/// The registers `insn` reads and writes (a helper call also clobbers
/// r1-r5, which the caller of this handles).
fn uses(insn: Insn) -> (Regs, Regs) {
    let (d, s) = (bit(insn.dst), bit(insn.src));
    let x = insn.op & src::X != 0;
    match insn.op & 0x07 {
        class::ALU | class::ALU64 => match insn.op & 0xf0 {
            alu::MOV => (if x { s } else { 0 }, d),
            alu::NEG | alu::END => (d, d),
            _ => (d | if x { s } else { 0 }, d),
        },
        class::LD => (0, d),
        class::LDX => (s, d),
        class::ST => (d, 0),
        class::STX if insn.op & 0xe0 == mode::ATOMIC => match insn.imm {
            atomic::CMPXCHG => (d | s | bit(0), bit(0)),
            imm if imm & atomic::FETCH != 0 => (d | s, s),
            _ => (d | s, 0),
        },
        class::STX => (d | s, 0),
        _ => match insn.op & 0xf0 {
            jmp::EXIT => (bit(0), 0),
            jmp::CALL if insn.src == pseudo::CALL => (0, 0),
            jmp::CALL => {
                let n = helpers::arg_count(insn.imm as u32).unwrap_or(0);
                (((1u16 << n) - 1) << 1, bit(0))
            }
            jmp::JA => (0, 0),
            _ => (d | if x { s } else { 0 }, 0),
        },
    }
}
