//! Loads, stores and atomics, each behind the address check.
//!
//! An access through r10 with a constant offset inside the current frame
//! goes straight to the host frame (`[rbp + off]`): r10 cannot change, so
//! it is in bounds by construction. Every other access translates its
//! virtual address inline. Where the analysis of [`super::guess`] expects
//! the stack or the context, against that region's entry only: the
//! address minus the region's first address below the entry's count for
//! that size and kind (one unsigned compare), then host = entry base +
//! offset in r11; an address elsewhere goes to the general check out of
//! line. The general check: region = address >> 32 below the table's
//! size, the zero-extended offset below its entry's count (see
//! [`super::layout`]), then host = entry base + offset in r11; in a region
//! cut into slots (map values) an out-of-line check then requires
//! `offset % slot + size <= slot`. What the inline checks refuse
//! goes to the slow path (a Rust function), which checks exactly as the
//! interpreter does and either returns the host address (a read-only
//! cmpxchg that fails) or records the fault and leaves through the fault
//! exit.

use super::emit::{unsupported, Check, Emitter, Stub, BLOCK, FRAME, REGS};
use super::layout::{self, Access};
use super::x86_64::{Alu, Cond, Label, Mem, Reg, Rm, Shift, Width};
use crate::consts::{atomic, class, mode, FP, STACK_PER_FRAME};
use crate::program::Insn;
use crate::retcode::{Errno, LoadError};

use crate::program::interp::access_size;

impl Emitter<'_> {
    /// Emits the check of a `size`-byte access at BPF register `base` +
    /// `off`; the host memory operand to use.
    fn address(&mut self, pc: usize, base: u8, off: i16, size: usize, kind: Access) -> Result<Mem, LoadError> {
        let off32 = off as i32;
        // Atomics must be aligned (the slow path faults on one that is not).
        let atomic = matches!(kind, Access::Atomic | Access::CmpXchg);
        let in_frame = off32 >= -(STACK_PER_FRAME as i32) && off32 + size as i32 <= 0;
        if base == FP && in_frame && !(atomic && off32 % size as i32 != 0) {
            return Ok(Mem::at(FRAME, off32));
        }
        let b = self.read(pc, base, Reg::R11)?;
        self.a.lea(Reg::R11, Mem::at(b, off32));
        let (slow, resume) = (self.a.label(), self.a.label());
        if atomic {
            self.a.test_imm(Width::Q, Reg::R11, size as i32 - 1);
            self.a.jcc(Cond::Ne, slow);
        }
        let check = Check { slow, resume, size, write: kind != Access::Load };
        match self.guesses.get(pc).copied().flatten() {
            Some(region) => {
                let general = self.a.label();
                self.known_region_check(region, &check, general);
                self.stubs.push(Stub::General { at: general, base, off, check });
            }
            None => self.general_check(&check),
        }
        self.a.bind(resume);
        let packed = layout::pack(pc, kind, size);
        self.stubs.push(Stub::Access { at: slow, resume, base, off, packed });
        Ok(Mem::at(Reg::R11, 0))
    }

    /// The check of an address (r11) in a region the analysis expects
    /// ([`super::guess`]), which has no slots: minus the region's first
    /// virtual address, below the entry's count; `general` otherwise.
    fn known_region_check(&mut self, region: u32, check: &Check, general: Label) {
        let entry = layout::HEADER + (region as i32) * (1 << layout::ENTRY_SHIFT);
        let count = entry + layout::count_offset(check.size, check.write);
        self.a.alu_load(Alu::Sub, Width::Q, Reg::R11, Mem::at(BLOCK, entry + layout::VBASE));
        self.a.alu_load(Alu::Cmp, Width::Q, Reg::R11, Mem::at(BLOCK, count));
        self.a.jcc(Cond::Ae, general);
        self.a.alu_load(Alu::Add, Width::Q, Reg::R11, Mem::at(BLOCK, entry));
    }

    /// The check of an address (r11) in any region: its entry (r10 = the
    /// entry's offset), the offset below the entry's count, then the slot
    /// check out of line in a slotted region; the host address in r11, or
    /// the slow path.
    fn general_check(&mut self, check: &Check) {
        let a = &mut self.a;
        a.mov(Width::Q, Reg::R10, Reg::R11);
        a.shift_imm(Shift::Shr, Width::Q, Reg::R10, 32);
        a.alu_load(Alu::Cmp, Width::Q, Reg::R10, Mem::at(BLOCK, layout::NREGIONS));
        a.jcc(Cond::Ae, check.slow);
        a.shift_imm(Shift::Shl, Width::Q, Reg::R10, layout::ENTRY_SHIFT);
        a.mov(Width::W, Reg::R11, Reg::R11);
        let count = layout::HEADER + layout::count_offset(check.size, check.write);
        a.alu_load(Alu::Cmp, Width::Q, Reg::R11, Mem::indexed(BLOCK, Reg::R10, count));
        a.jcc(Cond::Ae, check.slow);
        let slotted = a.label();
        a.alu_imm(Alu::Cmp, Width::Q, Rm::M(Mem::indexed(BLOCK, Reg::R10, layout::HEADER + layout::SLOT)), 0);
        a.jcc(Cond::Ne, slotted);
        a.alu_load(Alu::Add, Width::Q, Reg::R11, Mem::indexed(BLOCK, Reg::R10, layout::HEADER));
        self.stubs.push(Stub::Slotted { slotted, at: check.slow, resume: check.resume, size: check.size });
    }

    /// The out-of-line general check of an access whose region was not the
    /// one expected: the address again, then as [`Emitter::general_check`].
    pub(super) fn general_stub(&mut self, base: u8, off: i16, check: &Check) {
        self.base_address(base, off);
        self.general_check(check);
        self.a.jmp(check.resume);
    }

    /// The out-of-line half of an access to a slotted region: the slot
    /// check (`offset % slot + size <= slot`, r11 = offset, r10 = the
    /// entry's offset), then the host address as on the inline path. The
    /// remainder is two multiplications by the slot's reciprocal
    /// ([`layout::reciprocal`]); rax and rdx wait in xmm registers, which
    /// the code uses for nothing else.
    pub(super) fn slotted_stub(&mut self, size: usize, slow: Label, resume: Label) {
        let slot = Mem::indexed(BLOCK, Reg::R10, layout::HEADER + layout::SLOT);
        let reciprocal = Mem::indexed(BLOCK, Reg::R10, layout::HEADER + layout::SLOT_RECIPROCAL);
        let a = &mut self.a;
        a.movq_to_xmm(0, Reg::RAX);
        a.movq_to_xmm(1, Reg::RDX);
        a.mov(Width::W, Reg::RAX, Reg::R11);
        a.imul_mem(Width::Q, Reg::RAX, reciprocal);
        a.mul_mem(Width::Q, slot);
        a.alu_imm(Alu::Add, Width::Q, Rm::R(Reg::RDX), size as i32);
        a.alu_load(Alu::Cmp, Width::Q, Reg::RDX, slot);
        a.movq_from_xmm(Reg::RDX, 1);
        a.movq_from_xmm(Reg::RAX, 0);
        a.jcc(Cond::A, slow);
        a.alu_load(Alu::Add, Width::Q, Reg::R11, Mem::indexed(BLOCK, Reg::R10, layout::HEADER));
        a.jmp(resume);
    }

    /// The out-of-line half of [`Emitter::address`]: recomputes the
    /// address, asks the slow path, resumes with the host address in r11.
    pub(super) fn access_stub(&mut self, base: u8, off: i16, packed: u32) {
        self.base_address(base, off);
        self.a.mov_imm32(Reg::R10, packed);
        self.a.call(self.shared.access);
    }

    /// r11 = BPF register `base` + `off` again (the checks change r11).
    fn base_address(&mut self, base: u8, off: i16) {
        let b = if base == FP {
            self.a.mov(Width::Q, Reg::R11, FRAME);
            self.a.alu_load(Alu::Add, Width::Q, Reg::R11, Mem::at(BLOCK, layout::STACK_DELTA));
            Reg::R11
        } else {
            REGS[base as usize]
        };
        self.a.lea(Reg::R11, Mem::at(b, off as i32));
    }

    pub(super) fn load(&mut self, pc: usize, i: Insn) -> Result<(), LoadError> {
        let size = access_size(i.op);
        let d = self.dst(pc, i)?;
        let m = self.address(pc, i.src, i.off, size, Access::Load)?;
        match (i.op & 0xe0, size) {
            (mode::MEM, _) | (mode::MEMSX, 8) => self.a.load(Width::of_bytes(size), d, m),
            (mode::MEMSX, _) => self.a.movsx(Width::Q, Width::of_bytes(size), d, Rm::M(m)),
            _ => return Err(unsupported(pc)),
        }
        Ok(())
    }

    pub(super) fn store(&mut self, pc: usize, i: Insn) -> Result<(), LoadError> {
        let size = access_size(i.op);
        let w = Width::of_bytes(size);
        match (i.op & 7, i.op & 0xe0) {
            (class::ST, mode::MEM) => {
                let m = self.address(pc, i.dst, i.off, size, Access::Store)?;
                self.a.store_imm(w, m, i.imm);
            }
            (class::STX, mode::MEM) => {
                let m = self.address(pc, i.dst, i.off, size, Access::Store)?;
                let s = self.read(pc, i.src, Reg::R10)?;
                self.a.store(w, m, s);
            }
            (class::STX, mode::ATOMIC) if size >= 4 => self.atomic(pc, i, w)?,
            _ => return Err(unsupported(pc)),
        }
        Ok(())
    }

    fn atomic(&mut self, pc: usize, i: Insn, w: Width) -> Result<(), LoadError> {
        let size = if w == Width::Q { 8 } else { 4 };
        let kind = if i.imm == atomic::CMPXCHG { Access::CmpXchg } else { Access::Atomic };
        let fetch = i.imm & atomic::FETCH != 0;
        if fetch && i.imm != atomic::CMPXCHG && i.src == FP {
            return Err(LoadError::at(pc, Errno::EINVAL, "jit: an atomic fetch into r10"));
        }
        let op = match i.imm & !atomic::FETCH {
            atomic::ADD => Some(Alu::Add),
            atomic::OR => Some(Alu::Or),
            atomic::AND => Some(Alu::And),
            atomic::XOR => Some(Alu::Xor),
            _ => None,
        };
        if op.is_none() && i.imm != atomic::XCHG && i.imm != atomic::CMPXCHG {
            return Err(unsupported(pc));
        }
        let m = self.address(pc, i.dst, i.off, size, kind)?;
        let s = self.read(pc, i.src, Reg::R10)?;
        match (op, fetch) {
            (Some(op), false) => {
                self.a.lock();
                self.a.alu_store(op, w, m, s);
            }
            (Some(Alu::Add), true) => {
                self.a.lock();
                self.a.xadd(w, m, s);
            }
            (Some(op), true) => self.fetch_op(op, w, m, s),
            (None, _) if i.imm == atomic::XCHG => self.a.xchg(w, m, s),
            (None, _) => {
                self.a.lock();
                self.a.cmpxchg(w, m, s);
                if w == Width::W {
                    self.a.mov(w, Reg::RAX, Reg::RAX);
                }
            }
        }
        Ok(())
    }

    /// A fetching or, and or xor: a cmpxchg loop with r0 (rax) saved and
    /// the operand on the stack; `s` gets the old value.
    fn fetch_op(&mut self, op: Alu, w: Width, m: Mem, s: Reg) {
        self.a.push(Reg::RAX);
        self.a.push(s);
        self.a.load(w, Reg::RAX, m);
        let again = self.a.label();
        self.a.bind(again);
        self.a.mov(Width::Q, Reg::R10, Reg::RAX);
        self.a.alu_load(op, w, Reg::R10, Mem::at(Reg::RSP, 0));
        self.a.lock();
        self.a.cmpxchg(w, m, Reg::R10);
        self.a.jcc(Cond::Ne, again);
        self.a.mov(Width::Q, Reg::R10, Reg::RAX);
        self.a.alu_imm(Alu::Add, Width::Q, Rm::R(Reg::RSP), 8);
        self.a.pop(Reg::RAX);
        self.a.mov(Width::Q, s, Reg::R10);
    }
}
