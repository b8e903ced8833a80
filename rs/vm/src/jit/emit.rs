//! Translation of a program into x86-64 code: the driver (blocks, labels,
//! the budget count at each block) and jumps. Arithmetic is in
//! [`super::emit_alu`], memory accesses in [`super::emit_mem`], calls and
//! the entry and exit code in [`super::emit_call`].
//!
//! Registers: r0-r9 live in rax, rdi, rsi, rdx, rcx, r8, rbx, r13, r14,
//! r15 (r1-r5 are the System V argument registers, so helper arguments are
//! in place). rbp is the host address of the current frame's top; r10's
//! value (a virtual address) is rbp plus the run's stack delta, made when
//! r10 is read. r12 points to the run block ([`super::layout`]), r9 holds
//! the instructions left, r10 and r11 are scratch, and so are xmm0 and
//! xmm1 (caller-saved in System V, used for nothing else).

use super::layout;
use super::x86_64::{Alu, Asm, Cond, Label, Mem, Reg, Rm, Width};
use crate::consts::{class, helper, jmp, pseudo, src, FP};
use crate::mem::{region_of, REGION_FUNCS};
use crate::program::Insn;
use crate::retcode::{Errno, LoadError};
use alloc::vec;
use alloc::vec::Vec;

/// Where BPF registers r0-r9 live.
pub const REGS: [Reg; 10] =
    [Reg::RAX, Reg::RDI, Reg::RSI, Reg::RDX, Reg::RCX, Reg::R8, Reg::RBX, Reg::R13, Reg::R14, Reg::R15];
/// The instructions-left counter.
pub const BUDGET: Reg = Reg::R9;
/// The run block.
pub const BLOCK: Reg = Reg::R12;
/// The host frame pointer.
pub const FRAME: Reg = Reg::RBP;

/// Addresses of the Rust functions the code calls.
#[derive(Debug, Clone, Copy)]
pub struct Runtime {
    /// The helper trampoline.
    pub helper: u64,
    /// The slow path of memory accesses.
    pub access: u64,
}

/// A program's machine code.
pub struct Code {
    /// The code; the entry function is at offset 0.
    pub bytes: Vec<u8>,
    /// The code offset of each instruction (of the first slot of ld_imm64;
    /// `u32::MAX` for second slots).
    pub pc_offsets: Vec<u32>,
}

/// What an access's check needs: where to go when it refuses (the slow
/// path) and when it admits, and the access's size and kind.
#[derive(Clone, Copy)]
pub(super) struct Check {
    pub slow: Label,
    pub resume: Label,
    pub size: usize,
    pub write: bool,
}

/// Out-of-line code emitted after the program.
pub(super) enum Stub {
    /// An access whose region was not the expected one: the general check.
    General { at: Label, base: u8, off: i16, check: Check },
    /// An access the inline check did not admit: the slow path decides.
    Access { at: Label, resume: Label, base: u8, off: i16, packed: u32 },
    /// An access in bounds of a slotted region: the slot check, then
    /// `resume` or the slow path at `at`.
    Slotted { slotted: Label, at: Label, resume: Label, size: usize },
    /// The budget ran out at a block's start.
    Budget { at: Label, pc: usize },
    /// A call from the last frame.
    CallDepth { at: Label, pc: usize },
}

/// Shared code every program has, by label.
pub(super) struct Shared {
    /// Exit to the entry's caller with the status in eax.
    pub exit: Label,
    /// The slow path of accesses.
    pub access: Label,
    /// r10 = pc: a budget fault.
    pub budget: Label,
    /// r10 = pc: a call-depth fault.
    pub depth: Label,
    /// rdx = a helper's nonzero status.
    pub status: Label,
    /// r10 = pc: execution ran past the last instruction.
    pub ran_off: Label,
}

/// The translation state.
pub(super) struct Emitter<'p> {
    pub a: Asm,
    pub insns: &'p [Insn],
    pub labels: Vec<Label>,
    pub stubs: Vec<Stub>,
    pub shared: Shared,
    pub rt: Runtime,
    /// The region each access's base probably points into ([`super::guess`]).
    pub guesses: Vec<Option<u32>>,
}

/// Translates `insns` (a program the safety pass admitted).
pub fn compile(insns: &[Insn], rt: Runtime) -> Result<Code, LoadError> {
    let mut a = Asm::new();
    let labels = (0..insns.len()).map(|_| a.label()).collect();
    let shared = Shared {
        exit: a.label(),
        access: a.label(),
        budget: a.label(),
        depth: a.label(),
        status: a.label(),
        ran_off: a.label(),
    };
    let guesses = super::guess::access_regions(insns);
    let mut e = Emitter { a, insns, labels, stubs: Vec::new(), shared, rt, guesses };
    e.entry_and_exit();
    let blocks = block_lengths(insns)?;
    let mut pc = 0;
    while pc < insns.len() {
        let l = e.labels[pc];
        e.a.bind(l);
        if blocks[pc] != 0 {
            e.count(pc, blocks[pc]);
        }
        pc += e.insn(pc)?;
    }
    e.ran_off(insns.len());
    e.stubs_and_shared();
    let pc_offsets = e.labels.iter().map(|&l| e.a.position(l).map_or(u32::MAX, |p| p as u32)).collect();
    let bytes = e.a.finish().ok_or_else(|| LoadError::new(Errno::EINVAL, "jit: a jump has no target"))?;
    Ok(Code { bytes, pc_offsets })
}

/// Whether `insn` is the first slot of an ld_imm64.
fn is_ld_imm64(insn: &Insn) -> bool {
    insn.op == class::LD | 0x18
}

/// The instruction a jump at `pc` by `delta` lands on, if inside the program.
fn target(insns: &[Insn], pc: usize, delta: i64) -> Result<usize, LoadError> {
    let t = pc as i64 + 1 + delta;
    if t < 0 || t as usize >= insns.len() {
        return Err(LoadError::at(pc, Errno::EINVAL, "jit: jump or call target outside the program"));
    }
    Ok(t as usize)
}

/// The block structure: for each instruction that starts a block, the
/// instructions the block executes (an ld_imm64 counts once, as the
/// interpreter counts it); 0 elsewhere. Blocks start at the entry, at
/// jump, call and bpf_loop callback targets, and after jumps, exits and
/// tail calls, so a run that completes counts exactly the instructions
/// it executed.
fn block_lengths(insns: &[Insn]) -> Result<Vec<u32>, LoadError> {
    let n = insns.len();
    let mut leader = vec![false; n + 1];
    let mut second_slot = vec![false; n];
    leader[0] = true;
    let mut pc = 0;
    while pc < n {
        let i = insns[pc];
        let class = i.op & 7;
        if is_ld_imm64(&i) {
            let hi = insns.get(pc + 1).map_or(0, |n| n.imm as u32 as u64);
            let value = hi << 32 | i.imm as u32 as u64;
            if region_of(value) == REGION_FUNCS && (value as u32 as usize) < n {
                leader[value as u32 as usize] = true;
            }
            if pc + 1 < n {
                second_slot[pc + 1] = true;
            }
            pc += 2;
            continue;
        }
        if class == class::JMP || class == class::JMP32 {
            match i.op & 0xf0 {
                jmp::CALL if i.src == pseudo::CALL => leader[target(insns, pc, i.imm as i64)?] = true,
                // After a tail call that happens, the rest is not executed.
                jmp::CALL if i.imm as u32 == helper::TAIL_CALL => leader[pc + 1] = true,
                jmp::CALL => {}
                jmp::EXIT => leader[pc + 1] = true,
                jmp::JA if class == class::JMP32 => {
                    leader[target(insns, pc, i.imm as i64)?] = true;
                    leader[pc + 1] = true;
                }
                _ => {
                    leader[target(insns, pc, i.off as i64)?] = true;
                    leader[pc + 1] = true;
                }
            }
        }
        pc += 1;
    }
    let mut lengths = vec![0u32; n];
    let mut start = None;
    for pc in 0..=n {
        if pc < n && second_slot[pc] {
            if leader[pc] {
                return Err(LoadError::at(pc, Errno::EINVAL, "jit: a jump lands inside an ld_imm64"));
            }
            continue;
        }
        if leader[pc] || pc == n {
            start = Some(pc);
        }
        if let Some(s) = start.filter(|&s| s < n) {
            lengths[s] += 1;
        }
    }
    Ok(lengths)
}

impl Emitter<'_> {
    /// Counts a block of `len` instructions starting at `pc` against the budget.
    fn count(&mut self, pc: usize, len: u32) {
        self.a.alu_imm(Alu::Sub, Width::Q, Rm::R(BUDGET), len as i32);
        let at = self.a.label();
        self.a.jcc(Cond::B, at);
        self.stubs.push(Stub::Budget { at, pc });
    }

    /// Translates the instruction at `pc`; the slots it took.
    fn insn(&mut self, pc: usize) -> Result<usize, LoadError> {
        let i = self.insns[pc];
        match i.op & 7 {
            class::ALU | class::ALU64 => self.alu(pc, i)?,
            class::LD if is_ld_imm64(&i) => {
                let hi = self.insns.get(pc + 1).map_or(0, |n| n.imm as u32 as u64);
                let d = self.dst(pc, i)?;
                self.a.mov_imm(d, hi << 32 | i.imm as u32 as u64);
                return Ok(2);
            }
            class::LDX => self.load(pc, i)?,
            class::ST | class::STX => self.store(pc, i)?,
            class::JMP | class::JMP32 => self.jump(pc, i)?,
            _ => return Err(unsupported(pc)),
        }
        Ok(1)
    }

    /// The register an instruction writes (never r10).
    pub(super) fn dst(&self, pc: usize, i: Insn) -> Result<Reg, LoadError> {
        match REGS.get(i.dst as usize) {
            Some(&r) => Ok(r),
            None => Err(LoadError::at(pc, Errno::EINVAL, "jit: instruction writes r10 or a register past it")),
        }
    }

    /// The host register holding BPF register `r`'s value; r10's is made in `scratch`.
    pub(super) fn read(&mut self, pc: usize, r: u8, scratch: Reg) -> Result<Reg, LoadError> {
        if r == FP {
            self.a.mov(Width::Q, scratch, FRAME);
            self.a.alu_load(Alu::Add, Width::Q, scratch, Mem::at(BLOCK, layout::STACK_DELTA));
            return Ok(scratch);
        }
        REGS.get(r as usize).copied().ok_or_else(|| unsupported(pc))
    }

    fn jump(&mut self, pc: usize, i: Insn) -> Result<(), LoadError> {
        let wide = i.op & 7 == class::JMP;
        let op = i.op & 0xf0;
        match op {
            jmp::CALL => return self.call(pc, i),
            jmp::EXIT => {
                self.a.ret();
                return Ok(());
            }
            jmp::JA => {
                let delta = if wide { i.off as i64 } else { i.imm as i64 };
                let t = target(self.insns, pc, delta)?;
                self.a.jmp(self.labels[t]);
                return Ok(());
            }
            _ => {}
        }
        let cond = match op {
            jmp::JEQ => Cond::E,
            jmp::JNE | jmp::JSET => Cond::Ne,
            jmp::JGT => Cond::A,
            jmp::JGE => Cond::Ae,
            jmp::JLT => Cond::B,
            jmp::JLE => Cond::Be,
            jmp::JSGT => Cond::G,
            jmp::JSGE => Cond::Ge,
            jmp::JSLT => Cond::L,
            jmp::JSLE => Cond::Le,
            _ => return Err(unsupported(pc)),
        };
        let w = if wide { Width::Q } else { Width::W };
        let d = self.read(pc, i.dst, Reg::R11)?;
        match (i.op & src::X != 0, op == jmp::JSET) {
            (true, set) => {
                let s = self.read(pc, i.src, Reg::R10)?;
                if set {
                    self.a.test(w, d, s);
                } else {
                    self.a.alu(Alu::Cmp, w, d, s);
                }
            }
            (false, true) => self.a.test_imm(w, d, i.imm),
            (false, false) => self.a.alu_imm(Alu::Cmp, w, Rm::R(d), i.imm),
        }
        let t = target(self.insns, pc, i.off as i64)?;
        self.a.jcc(cond, self.labels[t]);
        Ok(())
    }
}

/// The refusal of an instruction the JIT does not translate.
pub(super) fn unsupported(pc: usize) -> LoadError {
    LoadError::at(pc, Errno::EINVAL, "jit: unsupported instruction")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(op: u8, off: i16, imm: i32) -> Insn {
        Insn { op, dst: 0, src: 0, off, imm }
    }

    #[test]
    fn blocks_start_at_targets_and_after_jumps() {
        let p = [
            ins(0xb7, 0, 0),  // 0: r0 = 0        block 0..2
            ins(0x07, 0, 1),  // 1: r0 += 1
            ins(0x15, -2, 5), // 2: if r0 == 5 goto 1   -> 1 is a leader, 3 too
            ins(0x18, 0, 7),  // 3: ld_imm64 (counts once)
            ins(0, 0, 0),     // 4: its second slot
            ins(0x95, 0, 0),  // 5: exit
        ];
        assert_eq!(block_lengths(&p).unwrap(), [1, 2, 0, 2, 0, 0]);
    }

    #[test]
    fn a_jump_into_an_ld_imm64_is_refused() {
        let p = [ins(0x05, 1, 0), ins(0x18, 0, 7), ins(0, 0, 0), ins(0x95, 0, 0)];
        assert!(block_lengths(&p).is_err());
    }
}
