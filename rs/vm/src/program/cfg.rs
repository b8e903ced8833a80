//! The control flow of a program, as the safety pass sees it: its
//! subprograms (the entry, every BPF-to-BPF call target and every function
//! an ld_imm64 takes the address of), the successors of each instruction,
//! and the call graph.
//!
//! Refused: jumps out of their subprogram or into the second half of an
//! ld_imm64, call targets that are no instruction, subprograms whose last
//! instruction is not an exit or an unconditional jump (execution would
//! fall into the next one, or off the end), recursion, and call chains
//! deeper than [`MAX_FRAMES`].

use super::verify::{is_ld_imm64, PSEUDO_FUNC};
use super::Insn;
use crate::consts::{class, jmp, pseudo, MAX_FRAMES};
use crate::retcode::{Errno, LoadError};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

/// The control flow of a checked program.
#[derive(Debug)]
pub struct Cfg {
    /// Whether each instruction is the second half of an ld_imm64.
    second_half: Vec<bool>,
    /// The first instruction of each subprogram, ascending (0 first).
    pub starts: Vec<usize>,
    /// The subprograms that bpf_loop may call back (their address is taken).
    pub callbacks: Vec<usize>,
}

/// Where control goes after one instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// To the next instruction (`pc + 1`, or `pc + 2` after an ld_imm64).
    Next(usize),
    /// To `target` only.
    Jump(usize),
    /// To the next instruction or to `target`.
    Branch(usize, usize),
    /// A BPF-to-BPF call of `callee`, then on to the next instruction.
    Call(usize, usize),
    /// Out of the subprogram.
    Exit,
}

/// `pc + 1 + delta`, if that is an index at all.
fn target(pc: usize, delta: i64) -> Option<usize> {
    usize::try_from(pc as i64 + 1 + delta).ok()
}

/// The flow of instruction `pc` (unchecked targets).
pub fn flow(insns: &[Insn], pc: usize) -> Flow {
    let insn = insns[pc];
    let bad = usize::MAX;
    match insn.op & 0x07 {
        class::JMP | class::JMP32 => {
            let wide = insn.op & 0x07 == class::JMP;
            match insn.op & 0xf0 {
                jmp::EXIT => Flow::Exit,
                jmp::CALL if insn.src == pseudo::CALL => Flow::Call(target(pc, insn.imm as i64).unwrap_or(bad), pc + 1),
                jmp::CALL => Flow::Next(pc + 1),
                jmp::JA => Flow::Jump(target(pc, if wide { insn.off as i64 } else { insn.imm as i64 }).unwrap_or(bad)),
                _ => Flow::Branch(pc + 1, target(pc, insn.off as i64).unwrap_or(bad)),
            }
        }
        _ if is_ld_imm64(insn) => Flow::Next(pc + 2),
        _ => Flow::Next(pc + 1),
    }
}

impl Cfg {
    /// Builds and checks the control flow of `insns` (each already
    /// passed [`super::verify::check_insn`]).
    pub fn build(insns: &[Insn]) -> Result<Cfg, LoadError> {
        let mut second_half = vec![false; insns.len()];
        let mut pc = 0;
        while pc < insns.len() {
            if is_ld_imm64(insns[pc]) {
                second_half[pc + 1] = true;
                pc += 2;
            } else {
                pc += 1;
            }
        }
        let mut cfg = Cfg { second_half, starts: vec![0], callbacks: Vec::new() };
        cfg.find_subprograms(insns)?;
        cfg.check_jumps(insns)?;
        cfg.check_ends(insns)?;
        cfg.check_depth(insns)?;
        Ok(cfg)
    }

    /// Whether `pc` is the second half of an ld_imm64.
    pub fn is_second_half(&self, pc: usize) -> bool {
        self.second_half[pc]
    }

    /// Whether `t` is an instruction a jump or call may land on.
    fn lands(&self, t: usize) -> bool {
        t < self.second_half.len() && !self.second_half[t]
    }

    fn find_subprograms(&mut self, insns: &[Insn]) -> Result<(), LoadError> {
        for pc in (0..insns.len()).filter(|&pc| !self.second_half[pc]) {
            let insn = insns[pc];
            let callee = match flow(insns, pc) {
                Flow::Call(callee, _) => callee,
                _ if is_ld_imm64(insn) && insn.src == PSEUDO_FUNC => {
                    let callee = target(pc, insn.imm as i64).unwrap_or(usize::MAX);
                    self.callbacks.push(callee);
                    callee
                }
                _ => continue,
            };
            if !self.lands(callee) {
                return Err(LoadError::at(pc, Errno::EINVAL, format!("call target {callee} is not an instruction")));
            }
            self.starts.push(callee);
        }
        self.starts.sort_unstable();
        self.starts.dedup();
        self.callbacks.sort_unstable();
        self.callbacks.dedup();
        Ok(())
    }

    /// The subprogram (index into `starts`) holding `pc`.
    pub fn subprogram_of(&self, pc: usize) -> usize {
        self.starts.partition_point(|&s| s <= pc) - 1
    }

    /// The end (exclusive) of subprogram `k`.
    pub fn end_of(&self, k: usize) -> usize {
        self.starts.get(k + 1).copied().unwrap_or(self.second_half.len())
    }

    fn check_jumps(&self, insns: &[Insn]) -> Result<(), LoadError> {
        for pc in (0..insns.len()).filter(|&pc| !self.second_half[pc]) {
            let t = match flow(insns, pc) {
                Flow::Jump(t) | Flow::Branch(_, t) => t,
                _ => continue,
            };
            let k = self.subprogram_of(pc);
            if t < self.starts[k] || t >= self.end_of(k) {
                return Err(LoadError::at(pc, Errno::EINVAL, format!("jump to {t} leaves the subprogram")));
            }
            if self.second_half[t] {
                return Err(LoadError::at(pc, Errno::EINVAL, format!("jump to {t} lands inside an ld_imm64")));
            }
        }
        Ok(())
    }

    fn check_ends(&self, insns: &[Insn]) -> Result<(), LoadError> {
        for k in 0..self.starts.len() {
            let last = self.end_of(k) - 1;
            let ok = !self.second_half[last] && matches!(flow(insns, last), Flow::Exit | Flow::Jump(_));
            if !ok {
                let reason = "the last instruction is not an exit or a jump: execution would fall through";
                return Err(LoadError::at(last, Errno::EINVAL, reason));
            }
        }
        Ok(())
    }

    /// Calls (and callbacks) from subprogram `k`: (the instruction, the
    /// callee's subprogram).
    fn callees(&self, insns: &[Insn], k: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for pc in (self.starts[k]..self.end_of(k)).filter(|&pc| !self.second_half[pc]) {
            let insn = insns[pc];
            if let Flow::Call(callee, _) = flow(insns, pc) {
                out.push((pc, self.subprogram_of(callee)));
            } else if is_ld_imm64(insn) && insn.src == PSEUDO_FUNC {
                out.push((pc, self.subprogram_of(target(pc, insn.imm as i64).unwrap_or(0))));
            }
        }
        out
    }

    /// Refuses recursion and call chains deeper than [`MAX_FRAMES`] frames,
    /// from the entry.
    fn check_depth(&self, insns: &[Insn]) -> Result<(), LoadError> {
        let callees: Vec<_> = (0..self.starts.len()).map(|k| self.callees(insns, k)).collect();
        let mut heights = vec![Height::Unknown; self.starts.len()];
        let (height, site) = height(&callees, 0, &mut heights)?;
        if height > MAX_FRAMES {
            let reason = format!("the call chain is {height} frames deep, over {MAX_FRAMES}");
            return Err(LoadError::at(site, Errno::E2BIG, reason));
        }
        Ok(())
    }
}

/// What is known of a subprogram's call height.
#[derive(Debug, Clone, Copy)]
enum Height {
    Unknown,
    /// Being computed: a call back to it is recursion.
    OnPath,
    /// Frames of the deepest chain from it, and the call starting that chain.
    Known(usize, usize),
}

/// The frames of the deepest call chain from subprogram `k` (memoized),
/// and the instruction of its first call.
fn height(callees: &[Vec<(usize, usize)>], k: usize, memo: &mut [Height]) -> Result<(usize, usize), LoadError> {
    match memo[k] {
        Height::Known(h, site) => return Ok((h, site)),
        // The call site is filled in by the caller.
        Height::OnPath => return Err(LoadError::at(usize::MAX, Errno::EINVAL, "recursive call")),
        Height::Unknown => {}
    }
    memo[k] = Height::OnPath;
    let mut best = (1, 0);
    for &(pc, callee) in &callees[k] {
        let h = match height(callees, callee, memo) {
            Ok((h, _)) => h,
            Err(mut e) => {
                if e.insn == Some(usize::MAX) {
                    e.insn = Some(pc);
                }
                return Err(e);
            }
        };
        if h + 1 > best.0 {
            best = (h + 1, pc);
        }
    }
    memo[k] = Height::Known(best.0, best.1);
    Ok(best)
}
