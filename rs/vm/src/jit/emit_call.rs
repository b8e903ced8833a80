//! The entry function, the exits, calls (helpers and BPF-to-BPF), and the
//! out-of-line code after the program.
//!
//! The entry function (at offset 0, System V: block, r1, r2, the code
//! address to call) saves the callee-saved registers and the previous
//! entry's rsp, loads r12, rbp and the budget, and calls the code like a
//! BPF function; a BPF `exit` is a `ret`. Every fault leaves through the
//! exit path, which restores rsp from the block, so it can be taken from
//! any call depth. Stack alignment: a BPF function body runs with rsp ≡ 8
//! (mod 16), so one push before a `call` aligns it for Rust.
//!
//! Registers the safety pass treats as unset are defined as the
//! interpreter defines them: 0 at the entry (but r1, r2 and r10), r0 and
//! r6-r9 0 in a callee, r1-r5 0 after every call.

use super::emit::{Emitter, Stub, BLOCK, BUDGET, FRAME};
use super::layout;
use super::x86_64::{Alu, Asm, Cond, Mem, Reg, Rm, Width};
use crate::consts::{helper, pseudo, STACK_PER_FRAME};
use crate::program::Insn;
use crate::retcode::{Errno, LoadError};

/// Callee-saved registers the entry saves, in push order.
const SAVED: [Reg; 6] = [Reg::RBX, Reg::RBP, Reg::R12, Reg::R13, Reg::R14, Reg::R15];
/// Registers a BPF-to-BPF call keeps for the caller: its frame and r6-r9.
const KEPT: [Reg; 5] = [Reg::RBP, Reg::RBX, Reg::R13, Reg::R14, Reg::R15];
/// Registers the slow access path keeps (Rust may clobber them).
const VOLATILE: [Reg; 7] = [Reg::RAX, Reg::RDI, Reg::RSI, Reg::RDX, Reg::RCX, Reg::R8, Reg::R9];

/// r1-r5: 0 after every call, as in the interpreter.
const ARGS: [Reg; 5] = [Reg::RDI, Reg::RSI, Reg::RDX, Reg::RCX, Reg::R8];
/// r0 and r3-r9: 0 at the entry (r1 and r2 are given).
const UNSET_AT_ENTRY: [Reg; 8] = [Reg::RAX, Reg::RDX, Reg::RCX, Reg::R8, Reg::RBX, Reg::R13, Reg::R14, Reg::R15];
/// r0 and r6-r9: 0 when a callee starts.
const UNSET_IN_CALLEE: [Reg; 5] = [Reg::RAX, Reg::RBX, Reg::R13, Reg::R14, Reg::R15];

/// Sets `regs` to 0: registers the safety pass treats as unset hold no
/// host value and read the same as in the interpreter.
fn zero(a: &mut Asm, regs: &[Reg]) {
    for &r in regs {
        a.alu(Alu::Xor, Width::W, r, r);
    }
}

impl Emitter<'_> {
    /// The entry function and the exit path.
    pub(super) fn entry_and_exit(&mut self) {
        let a = &mut self.a;
        for r in SAVED {
            a.push(r);
        }
        a.push_mem(Mem::at(Reg::RDI, layout::ENTRY_RSP));
        a.store(Width::Q, Mem::at(Reg::RDI, layout::ENTRY_RSP), Reg::RSP);
        a.mov(Width::Q, BLOCK, Reg::RDI);
        a.load(Width::Q, FRAME, Mem::at(BLOCK, layout::FRAME));
        a.load(Width::Q, BUDGET, Mem::at(BLOCK, layout::BUDGET));
        a.mov(Width::Q, Reg::RDI, Reg::RSI);
        a.mov(Width::Q, Reg::RSI, Reg::RDX);
        a.mov(Width::Q, Reg::R10, Reg::RCX);
        zero(a, &UNSET_AT_ENTRY);
        a.call_reg(Reg::R10);
        a.store(Width::Q, Mem::at(BLOCK, layout::R0), Reg::RAX);
        a.mov_imm32(Reg::RAX, layout::STATUS_OK as u32);
        a.bind(self.shared.exit);
        a.store(Width::Q, Mem::at(BLOCK, layout::BUDGET), BUDGET);
        a.load(Width::Q, Reg::RSP, Mem::at(BLOCK, layout::ENTRY_RSP));
        a.pop_mem(Mem::at(BLOCK, layout::ENTRY_RSP));
        for r in SAVED.iter().rev() {
            a.pop(*r);
        }
        a.ret();
    }

    /// A call: BPF-to-BPF, or a helper through the trampoline.
    pub(super) fn call(&mut self, pc: usize, i: Insn) -> Result<(), LoadError> {
        match i.src {
            pseudo::CALL => {
                let t = pc as i64 + 1 + i.imm as i64;
                let target = self.labels[t as usize];
                self.a.alu_load(Alu::Cmp, Width::Q, FRAME, Mem::at(BLOCK, layout::LAST_FRAME));
                let at = self.a.label();
                self.a.jcc(Cond::Ae, at);
                self.stubs.push(Stub::CallDepth { at, pc });
                for r in KEPT {
                    self.a.push(r);
                }
                self.a.alu_imm(Alu::Add, Width::Q, Rm::R(FRAME), STACK_PER_FRAME as i32);
                self.zero_frame();
                zero(&mut self.a, &UNSET_IN_CALLEE);
                self.a.call(target);
                for r in KEPT.iter().rev() {
                    self.a.pop(*r);
                }
                zero(&mut self.a, &ARGS);
                Ok(())
            }
            0 => {
                self.helper(pc, i.imm as u32);
                Ok(())
            }
            _ => Err(LoadError::at(pc, Errno::EINVAL, "jit: a call that is neither a helper nor a BPF function")),
        }
    }

    /// Zeroes the frame below the frame pointer, `[rbp - 512, rbp)`, as the
    /// interpreter does on a call ([`crate::program::memory::zero_frame`]):
    /// r11 counts from -512 up to 0 in 8-byte steps.
    fn zero_frame(&mut self) {
        let a = &mut self.a;
        a.mov_imm(Reg::R11, (-(STACK_PER_FRAME as i64)) as u64);
        let top = a.label();
        a.bind(top);
        a.store_imm(Width::Q, Mem::indexed(FRAME, Reg::R11, 0), 0);
        a.alu_imm(Alu::Add, Width::Q, Rm::R(Reg::R11), 8);
        a.jcc(Cond::Ne, top);
    }

    /// A helper call: the trampoline gets r1-r5 in place, pc and id in
    /// r9, the block on the stack; r0 comes back in rax, a status in rdx.
    fn helper(&mut self, pc: usize, id: u32) {
        let a = &mut self.a;
        a.store(Width::Q, Mem::at(BLOCK, layout::BUDGET), BUDGET);
        if id == helper::LOOP || id == helper::TAIL_CALL {
            a.store(Width::Q, Mem::at(BLOCK, layout::FRAME), FRAME);
        }
        a.push(BLOCK);
        a.mov_imm(BUDGET, (pc as u64) << 32 | id as u64);
        a.mov_imm(Reg::R10, self.rt.helper);
        a.call_reg(Reg::R10);
        a.pop(Reg::R11);
        a.load(Width::Q, BUDGET, Mem::at(BLOCK, layout::BUDGET));
        a.test(Width::Q, Reg::RDX, Reg::RDX);
        a.jcc(Cond::Ne, self.shared.status);
        zero(a, &ARGS);
    }

    /// What follows the last instruction: a program that does not end in
    /// an exit or a jump (the safety pass refuses those) faults there
    /// instead of running into the stubs.
    pub(super) fn ran_off(&mut self, len: usize) {
        self.a.mov_imm32(Reg::R10, len as u32);
        self.a.jmp(self.shared.ran_off);
    }

    /// The stubs, then the shared slow paths and fault exits.
    pub(super) fn stubs_and_shared(&mut self) {
        // A general stub adds the stubs of its own check: until none is left.
        while !self.stubs.is_empty() {
            let stubs = core::mem::take(&mut self.stubs);
            for stub in stubs {
                self.stub(stub);
            }
        }
        self.fault_exits();
        self.slow_access();
    }

    /// Emits one out-of-line stub.
    fn stub(&mut self, stub: Stub) {
        match stub {
            Stub::General { at, base, off, check } => {
                self.a.bind(at);
                self.general_stub(base, off, &check);
            }
            Stub::Access { at, resume, base, off, packed } => {
                self.a.bind(at);
                self.access_stub(base, off, packed);
                self.a.jmp(resume);
            }
            Stub::Slotted { slotted, at, resume, size } => {
                self.a.bind(slotted);
                self.slotted_stub(size, at, resume);
            }
            Stub::Budget { at, pc } => {
                self.a.bind(at);
                self.a.mov_imm32(Reg::R10, pc as u32);
                self.a.jmp(self.shared.budget);
            }
            Stub::CallDepth { at, pc } => {
                self.a.bind(at);
                self.a.mov_imm32(Reg::R10, pc as u32);
                self.a.jmp(self.shared.depth);
            }
        }
    }

    /// Exits with a status: budget and call depth (pc in r10), a helper's
    /// nonzero status in rdx (a finished tail call returns from the frame).
    fn fault_exits(&mut self) {
        let s = &self.shared;
        let a = &mut self.a;
        let faults = [
            (s.budget, layout::STATUS_BUDGET),
            (s.depth, layout::STATUS_CALL_DEPTH),
            (s.ran_off, layout::STATUS_RAN_OFF),
        ];
        for (l, status) in faults {
            a.bind(l);
            a.store(Width::Q, Mem::at(BLOCK, layout::FAULT_PC), Reg::R10);
            a.mov_imm32(Reg::RAX, status as u32);
            a.jmp(s.exit);
        }
        a.bind(s.status);
        a.alu_imm(Alu::Cmp, Width::Q, Rm::R(Reg::RDX), layout::STATUS_TAIL_DONE as i32);
        let not_tail = a.label();
        a.jcc(Cond::Ne, not_tail);
        a.ret();
        a.bind(not_tail);
        a.mov(Width::Q, Reg::RAX, Reg::RDX);
        a.jmp(s.exit);
    }

    /// The slow path of accesses: r11 = address, r10 = packed access;
    /// returns the host address in r11, or leaves through the fault exit.
    fn slow_access(&mut self) {
        let a = &mut self.a;
        a.bind(self.shared.access);
        for r in VOLATILE {
            a.push(r);
        }
        a.alu_imm(Alu::Sub, Width::Q, Rm::R(Reg::RSP), 8);
        a.mov(Width::Q, Reg::RDI, BLOCK);
        a.mov(Width::Q, Reg::RSI, Reg::R11);
        a.mov(Width::Q, Reg::RDX, Reg::R10);
        a.mov(Width::Q, Reg::RCX, Reg::RAX);
        a.mov_imm(Reg::RAX, self.rt.access);
        a.call_reg(Reg::RAX);
        a.alu_imm(Alu::Add, Width::Q, Rm::R(Reg::RSP), 8);
        a.mov(Width::Q, Reg::R11, Reg::RAX);
        for r in VOLATILE.iter().rev() {
            a.pop(*r);
        }
        a.test(Width::Q, Reg::R11, Reg::R11);
        let fault = a.label();
        a.jcc(Cond::E, fault);
        a.ret();
        a.bind(fault);
        a.mov_imm32(Reg::RAX, layout::STATUS_FAULT as u32);
        a.jmp(self.shared.exit);
    }
}
