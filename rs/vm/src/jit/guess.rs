//! Which region each access probably reaches, for the code's fast path.
//!
//! A forward dataflow over the program gives every register one of: a
//! pointer derived from r10 (the stack), the context as the entry's r1,
//! or anything else. An access whose base register is known to be the
//! stack or the context this way is checked against that region's entry
//! alone, at a constant place in the table: a subtraction, one unsigned
//! comparison and an addition, instead of the region's lookup and its
//! slot test ([`super::emit_mem`]).
//!
//! A guess is only ever a hint for speed, never for safety: the code still
//! checks the address it gets against the guessed region, and an address in
//! any other region (a tail call's r1 that is no context, a pointer the
//! analysis followed wrongly) takes the general check, then the slow path.
//! So this pass may be simple: pointer arithmetic by add and sub keeps the
//! region, a move copies it, everything else makes a register "other".

use crate::consts::{alu, atomic, class, jmp, mode, pseudo, src, FP};
use crate::mem::{region_of, REGION_CTX, REGION_FUNCS, REGION_STACK};
use crate::program::cfg::{flow, Flow};
use crate::program::Insn;
use alloc::vec;
use alloc::vec::Vec;

/// What a register holds on the paths seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A pointer into this region on every path.
    In(u32),
    /// Anything else, or different regions on different paths.
    Other,
}

impl Kind {
    fn join(self, other: Kind) -> Kind {
        if self == other {
            self
        } else {
            Kind::Other
        }
    }
}

/// The kind of r0-r10 before an instruction.
type State = [Kind; 11];

/// For each instruction that accesses memory, the region its base register
/// points into on every path the analysis saw (stack or context); `None`
/// elsewhere and when unknown.
pub fn access_regions(insns: &[Insn]) -> Vec<Option<u32>> {
    let mut states: Vec<Option<State>> = vec![None; insns.len()];
    let mut work = Vec::new();
    let mut entry = [Kind::Other; 11];
    entry[1] = Kind::In(REGION_CTX);
    entry[FP as usize] = Kind::In(REGION_STACK);
    merge(&mut states, &mut work, 0, &entry);
    for cb in callbacks(insns) {
        let mut s = [Kind::Other; 11];
        s[FP as usize] = Kind::In(REGION_STACK);
        merge(&mut states, &mut work, cb, &s);
    }
    while let Some(pc) = work.pop() {
        let Some(before) = states[pc] else { continue };
        let after = transfer(insns[pc], before);
        match flow(insns, pc) {
            Flow::Next(n) | Flow::Jump(n) => merge(&mut states, &mut work, n, &after),
            Flow::Branch(n, t) => {
                merge(&mut states, &mut work, n, &after);
                merge(&mut states, &mut work, t, &after);
            }
            Flow::Call(callee, n) => {
                let mut in_callee = [Kind::Other; 11];
                in_callee[1..6].copy_from_slice(&before[1..6]);
                in_callee[FP as usize] = Kind::In(REGION_STACK);
                merge(&mut states, &mut work, callee, &in_callee);
                let mut back = before;
                back[..6].fill(Kind::Other);
                merge(&mut states, &mut work, n, &back);
            }
            Flow::Exit => {}
        }
    }
    insns.iter().zip(&states).map(|(&i, s)| s.as_ref().and_then(|s| base_region(i, s))).collect()
}

/// The targets of ld_imm64 function addresses (bpf_loop callbacks).
fn callbacks(insns: &[Insn]) -> Vec<usize> {
    let mut out = Vec::new();
    for (pc, pair) in insns.windows(2).enumerate() {
        let value = (pair[1].imm as u32 as u64) << 32 | pair[0].imm as u32 as u64;
        if pair[0].op == class::LD | 0x18 && region_of(value) == REGION_FUNCS && pc + 1 < insns.len() {
            out.push(value as u32 as usize);
        }
    }
    out
}

/// Joins `s` into the state before `pc`; queues `pc` if that changed it.
fn merge(states: &mut [Option<State>], work: &mut Vec<usize>, pc: usize, s: &State) {
    let Some(slot) = states.get_mut(pc) else { return };
    let joined = match slot {
        Some(old) => core::array::from_fn(|r| old[r].join(s[r])),
        None => *s,
    };
    if *slot != Some(joined) {
        *slot = Some(joined);
        work.push(pc);
    }
}

/// The state after `insn`.
fn transfer(insn: Insn, mut s: State) -> State {
    let (d, sr) = (insn.dst as usize, insn.src as usize);
    let reg = insn.op & src::X != 0;
    let of_src = s.get(sr).copied().unwrap_or(Kind::Other);
    let mut set = |r: usize, k: Kind| {
        if let Some(slot) = s.get_mut(r).filter(|_| r != FP as usize) {
            *slot = k;
        }
    };
    match insn.op & 7 {
        class::ALU64 => match insn.op & 0xf0 {
            alu::MOV if reg && insn.off == 0 => set(d, of_src),
            // Pointer arithmetic keeps the pointer's region.
            alu::ADD | alu::SUB => {}
            _ => set(d, Kind::Other),
        },
        class::ALU | class::LD | class::LDX => set(d, Kind::Other),
        class::STX if insn.op & 0xe0 == mode::ATOMIC => {
            if insn.imm == atomic::CMPXCHG {
                set(0, Kind::Other);
            } else if insn.imm & atomic::FETCH != 0 {
                set(sr, Kind::Other);
            }
        }
        class::JMP if insn.op & 0xf0 == jmp::CALL && insn.src != pseudo::CALL => {
            for r in 0..6 {
                set(r, Kind::Other);
            }
        }
        _ => {}
    }
    s
}

/// The region an access's base register points into, if known.
fn base_region(insn: Insn, s: &State) -> Option<u32> {
    let base = match insn.op & 7 {
        class::LDX => insn.src,
        class::ST | class::STX => insn.dst,
        _ => return None,
    };
    match s.get(base as usize) {
        Some(Kind::In(region)) => Some(*region),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { op, dst, src, off, imm }
    }

    const MOV_X: u8 = 0xbf;
    const ADD_X: u8 = 0x0f;
    const ADD_K: u8 = 0x07;
    const LDXB: u8 = 0x71;
    const EXIT: u8 = 0x95;

    #[test]
    fn stack_and_context_pointers_are_followed() {
        let p = [
            ins(MOV_X, 3, 10, 0, 0),   // 0: r3 = r10
            ins(ADD_K, 3, 0, 0, -128), // 1: r3 += -128
            ins(ADD_X, 3, 2, 0, 0),    // 2: r3 += r2
            ins(LDXB, 4, 3, 0, 0),     // 3: r4 = *(u8 *)(r3 + 0)   stack
            ins(LDXB, 5, 1, 4, 0),     // 4: r5 = *(u8 *)(r1 + 4)   ctx
            ins(LDXB, 6, 4, 0, 0),     // 5: r6 = *(u8 *)(r4 + 0)   a loaded value: unknown
            ins(EXIT, 0, 0, 0, 0),
        ];
        let g = access_regions(&p);
        assert_eq!(g[3], Some(REGION_STACK));
        assert_eq!(g[4], Some(REGION_CTX));
        assert_eq!(g[5], None);
    }

    #[test]
    fn paths_that_disagree_give_no_guess() {
        let p = [
            ins(0x15, 2, 0, 1, 0),   // 0: if r2 == 0 goto 2
            ins(MOV_X, 1, 10, 0, 0), // 1: r1 = r10
            ins(LDXB, 0, 1, 0, 0),   // 2: r0 = *(u8 *)(r1 + 0): ctx or stack
            ins(EXIT, 0, 0, 0, 0),
        ];
        assert_eq!(access_regions(&p)[2], None);
    }

    #[test]
    fn helper_calls_clobber_the_argument_registers() {
        let p = [
            ins(0x85, 0, 0, 0, 5), // 0: call 5
            ins(LDXB, 0, 1, 0, 0), // 1: r0 = *(u8 *)(r1 + 0)
            ins(EXIT, 0, 0, 0, 0),
        ];
        assert_eq!(access_regions(&p)[1], None);
    }

    #[test]
    fn bad_targets_are_ignored() {
        let p = [ins(0x05, 0, 0, 100, 0), ins(0x05, 0, 0, -100, 0), ins(EXIT, 0, 0, 0, 0)];
        assert_eq!(access_regions(&p), [None, None, None]);
    }
}
