//! The safety pass: what [`super::Program::load`] checks before a program
//! may run, refusing it with a [`LoadError`] that names the instruction.
//!
//! 1. The size: 1 to [`MAX_INSNS`] instructions (E2BIG past it).
//! 2. Each instruction on its own ([`check_insn`]): a known opcode of the
//!    cpu v4 ISA, reserved fields zero where Linux wants them, register
//!    numbers below 11, no write to r10, constant shifts in range, no
//!    constant division by zero, known helper ids, r10-based accesses
//!    inside the frame's 512 bytes (`[-512, 0)`).
//! 3. ld_imm64 pseudo sources are resolved (`resolve`): map fds to map
//!    handles, map values to value addresses, functions to code addresses.
//! 4. The control flow (`cfg`): jump and call targets, subprogram
//!    ends, call depth.
//! 5. Register initialization (`dataflow`).
//!
//! Memory accesses through other registers are checked at run time, and
//! loops are allowed: the run's instruction budget bounds them.
//!
//! Deliberate differences from Linux's verifier (it tracks types and value
//! ranges; this pass does not, and relies on the run-time checks):
//! - reading a stack slot never written is allowed: the stack starts
//!   zeroed, so the read is deterministic and leaks nothing;
//! - unreachable instructions are allowed (they are still checked one by
//!   one, and never run);
//! - a subprogram's arguments are the registers of r1-r5 set at every one
//!   of its call sites (Linux knows the callee's arity from BTF);
//! - each frame has its own 512 bytes: there is no 512-byte limit on the
//!   frames of a call chain together.

use super::{cfg, dataflow, Insn};
use crate::consts::{alu, atomic, class, jmp, mode, pseudo, size, src, FP, MAX_INSNS, STACK_PER_FRAME};
use crate::helpers;
use crate::map::MapTable;
use crate::mem::{map_handle, vaddr, REGION_FUNCS, REGION_MAPS};
use crate::retcode::{Errno, LoadError};
use alloc::format;
use alloc::vec::Vec;

/// `src_reg` of an ld_imm64 that loads a function's code address.
pub const PSEUDO_FUNC: u8 = 4;

/// Options of the safety pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Argument registers set at entry (r1 up to r`entry_args`): 1 for
    /// programs as Linux runs them (r1 = the context), 2 for the
    /// conformance suite's (r2 = the memory's length).
    pub entry_args: u8,
}

impl Default for Options {
    fn default() -> Self {
        Options { entry_args: 1 }
    }
}

/// Checks `insns` and resolves their pseudo ld_imm64s; the instructions
/// the engines run.
pub fn check(mut insns: Vec<Insn>, maps: &MapTable, options: &Options) -> Result<Vec<Insn>, LoadError> {
    if insns.is_empty() {
        return Err(LoadError::new(Errno::EINVAL, "the program has no instructions"));
    }
    if insns.len() > MAX_INSNS {
        let reason = format!("{} instructions is over the limit of {MAX_INSNS}", insns.len());
        return Err(LoadError::new(Errno::E2BIG, reason));
    }
    let mut pc = 0;
    while pc < insns.len() {
        check_insn(&insns, pc)?;
        pc += if is_ld_imm64(insns[pc]) { 2 } else { 1 };
    }
    let graph = cfg::Cfg::build(&insns)?;
    for pc in 0..insns.len() {
        if is_ld_imm64(insns[pc]) && !graph.is_second_half(pc) {
            resolve(&mut insns, pc, maps)?;
        }
    }
    dataflow::check(&insns, &graph, options.entry_args.min(5))?;
    Ok(insns)
}

/// Whether `insn` is the first half of an ld_imm64.
pub fn is_ld_imm64(insn: Insn) -> bool {
    insn.op == class::LD | size::DW
}

fn refuse(pc: usize, errno: Errno, reason: impl Into<alloc::string::String>) -> LoadError {
    LoadError::at(pc, errno, reason)
}

fn reserved(pc: usize, what: &str) -> LoadError {
    refuse(pc, Errno::EINVAL, format!("{what} uses reserved fields"))
}

fn unknown(pc: usize, op: u8) -> LoadError {
    refuse(pc, Errno::EINVAL, format!("unknown opcode {op:#04x}"))
}

/// The static checks of instruction `pc`.
pub fn check_insn(insns: &[Insn], pc: usize) -> Result<(), LoadError> {
    let insn = insns[pc];
    if insn.dst > FP || insn.src > FP && insn.op & 0x07 != class::LD && !is_call(insn) {
        return Err(refuse(pc, Errno::EINVAL, format!("invalid register r{}", insn.dst.max(insn.src))));
    }
    match insn.op & 0x07 {
        class::ALU | class::ALU64 => check_alu(pc, insn),
        class::LD => check_ld(insns, pc),
        class::LDX => check_ldx(pc, insn),
        class::ST | class::STX => check_store(pc, insn),
        _ => check_jmp(pc, insn),
    }
}

fn is_call(insn: Insn) -> bool {
    insn.op == class::JMP | jmp::CALL
}

fn frame_pointer_write(pc: usize) -> LoadError {
    refuse(pc, Errno::EACCES, "frame pointer r10 is read only")
}

fn check_alu(pc: usize, insn: Insn) -> Result<(), LoadError> {
    let wide = insn.op & 0x07 == class::ALU64;
    let op = insn.op & 0xf0;
    let x = insn.op & src::X != 0;
    if op > alu::END {
        return Err(unknown(pc, insn.op));
    }
    if insn.dst == FP {
        return Err(frame_pointer_write(pc));
    }
    match op {
        alu::NEG if x || insn.src != 0 || insn.off != 0 || insn.imm != 0 => Err(reserved(pc, "BPF_NEG")),
        alu::END if wide && x => Err(unknown(pc, insn.op)),
        alu::END if insn.src != 0 || insn.off != 0 || !matches!(insn.imm, 16 | 32 | 64) => Err(reserved(pc, "BPF_END")),
        alu::NEG | alu::END => Ok(()),
        _ if x && insn.imm != 0 || !x && insn.src != 0 => Err(reserved(pc, "BPF_ALU")),
        alu::MOV if !x && insn.off != 0 => Err(reserved(pc, "BPF_MOV")),
        alu::MOV if !matches!((insn.off, wide), (0, _) | (8, _) | (16, _) | (32, true)) => {
            Err(refuse(pc, Errno::EINVAL, format!("invalid sign-extension width {}", insn.off)))
        }
        alu::MOV => Ok(()),
        alu::DIV | alu::MOD if insn.off != 0 && insn.off != 1 => Err(reserved(pc, "BPF_DIV/BPF_MOD")),
        alu::DIV | alu::MOD if !x && insn.imm == 0 => Err(refuse(pc, Errno::EINVAL, "division by zero")),
        alu::DIV | alu::MOD => Ok(()),
        _ if insn.off != 0 => Err(reserved(pc, "BPF_ALU")),
        alu::LSH | alu::RSH | alu::ARSH if !x && !(0..if wide { 64 } else { 32 }).contains(&insn.imm) => {
            Err(refuse(pc, Errno::EINVAL, format!("invalid shift {}", insn.imm)))
        }
        _ => Ok(()),
    }
}

fn check_ld(insns: &[Insn], pc: usize) -> Result<(), LoadError> {
    let insn = insns[pc];
    if !is_ld_imm64(insn) {
        return Err(refuse(pc, Errno::EINVAL, format!("unsupported legacy load opcode {:#04x}", insn.op)));
    }
    if insn.dst == FP {
        return Err(frame_pointer_write(pc));
    }
    let Some(next) = insns.get(pc + 1) else {
        return Err(refuse(pc, Errno::EINVAL, "ld_imm64 is missing its second half"));
    };
    if insn.off != 0 || next.op != 0 || next.dst != 0 || next.src != 0 || next.off != 0 {
        return Err(refuse(pc, Errno::EINVAL, "invalid ld_imm64 (reserved fields of its halves)"));
    }
    match insn.src {
        0 | pseudo::MAP_VALUE => Ok(()),
        pseudo::MAP_FD | PSEUDO_FUNC if next.imm != 0 => Err(reserved(pc, "ld_imm64")),
        pseudo::MAP_FD | PSEUDO_FUNC => Ok(()),
        s => Err(refuse(pc, Errno::EINVAL, format!("unsupported ld_imm64 source {s}"))),
    }
}

/// An access of `size` bytes at r10 + `off` must lie in `[-512, 0)`.
fn check_stack(pc: usize, base: u8, off: i16, size: usize) -> Result<(), LoadError> {
    if base != FP {
        return Ok(());
    }
    let (start, end) = (off as i64, off as i64 + size as i64);
    if start < -(STACK_PER_FRAME as i64) || end > 0 {
        return Err(refuse(
            pc,
            Errno::EACCES,
            format!("stack access at r10{off:+} of {size} bytes is outside [-512, 0)"),
        ));
    }
    Ok(())
}

fn check_ldx(pc: usize, insn: Insn) -> Result<(), LoadError> {
    let sz = super::interp::access_size(insn.op);
    match insn.op & 0xe0 {
        mode::MEM => {}
        mode::MEMSX if sz < 8 => {}
        _ => return Err(unknown(pc, insn.op)),
    }
    if insn.imm != 0 {
        return Err(reserved(pc, "BPF_LDX"));
    }
    if insn.dst == FP {
        return Err(frame_pointer_write(pc));
    }
    check_stack(pc, insn.src, insn.off, sz)
}

fn check_store(pc: usize, insn: Insn) -> Result<(), LoadError> {
    let sz = super::interp::access_size(insn.op);
    let st = insn.op & 0x07 == class::ST;
    match insn.op & 0xe0 {
        mode::MEM if st && insn.src != 0 => return Err(reserved(pc, "BPF_ST")),
        mode::MEM if !st && insn.imm != 0 => return Err(reserved(pc, "BPF_STX")),
        mode::MEM => {}
        mode::ATOMIC if !st && (sz == 4 || sz == 8) => check_atomic(pc, insn)?,
        _ => return Err(unknown(pc, insn.op)),
    }
    check_stack(pc, insn.dst, insn.off, sz)
}

fn check_atomic(pc: usize, insn: Insn) -> Result<(), LoadError> {
    let ok = [atomic::ADD, atomic::OR, atomic::AND, atomic::XOR];
    let fetch = insn.imm & atomic::FETCH != 0;
    if !ok.contains(&(insn.imm & !atomic::FETCH)) && insn.imm != atomic::XCHG && insn.imm != atomic::CMPXCHG {
        return Err(refuse(pc, Errno::EINVAL, format!("invalid atomic operation {:#x}", insn.imm)));
    }
    if fetch && insn.src == FP {
        return Err(frame_pointer_write(pc));
    }
    Ok(())
}

fn check_jmp(pc: usize, insn: Insn) -> Result<(), LoadError> {
    let wide = insn.op & 0x07 == class::JMP;
    let x = insn.op & src::X != 0;
    match insn.op & 0xf0 {
        jmp::JA if x => Err(unknown(pc, insn.op)),
        jmp::JA if wide && (insn.src != 0 || insn.dst != 0 || insn.imm != 0) => Err(reserved(pc, "BPF_JA")),
        jmp::JA if !wide && (insn.src != 0 || insn.dst != 0 || insn.off != 0) => Err(reserved(pc, "BPF_JA")),
        jmp::CALL | jmp::EXIT if !wide || x => Err(unknown(pc, insn.op)),
        jmp::CALL if insn.off != 0 || insn.dst != 0 => Err(reserved(pc, "BPF_CALL")),
        jmp::CALL if insn.src == pseudo::CALL => Ok(()),
        jmp::CALL if insn.src != 0 => {
            Err(refuse(pc, Errno::EINVAL, format!("unsupported call kind (src_reg {})", insn.src)))
        }
        jmp::CALL if !helpers::known(insn.imm as u32) => {
            Err(refuse(pc, Errno::EINVAL, format!("unknown helper function #{}", insn.imm)))
        }
        jmp::EXIT if insn.src != 0 || insn.dst != 0 || insn.off != 0 || insn.imm != 0 => Err(reserved(pc, "BPF_EXIT")),
        0xe0 | 0xf0 => Err(unknown(pc, insn.op)),
        _ if x && insn.imm != 0 || !x && insn.src != 0 => Err(reserved(pc, "conditional jump")),
        _ => Ok(()),
    }
}

/// Resolves the ld_imm64 at `pc` to a plain constant load.
fn resolve(insns: &mut [Insn], pc: usize, maps: &MapTable) -> Result<(), LoadError> {
    let (kind, imm, next_imm) = (insns[pc].src, insns[pc].imm, insns[pc + 1].imm);
    let value = match kind {
        pseudo::MAP_FD | pseudo::MAP_VALUE => {
            let id = imm as u32;
            let Some(map) = maps.get(id) else {
                return Err(refuse(pc, Errno::EBADF, format!("map {id} does not exist")));
            };
            if kind == pseudo::MAP_FD {
                map_handle(id)
            } else if (next_imm as u32) < map.def().value_size {
                vaddr(REGION_MAPS + id, next_imm as u32)
            } else {
                let reason = format!("offset {} is outside map {id}'s value", next_imm as u32);
                return Err(refuse(pc, Errno::EINVAL, reason));
            }
        }
        PSEUDO_FUNC => vaddr(REGION_FUNCS, (pc as i64 + 1 + imm as i64) as u32),
        _ => return Ok(()),
    };
    insns[pc].src = 0;
    insns[pc].imm = value as u32 as i32;
    insns[pc + 1].imm = (value >> 32) as u32 as i32;
    Ok(())
}
