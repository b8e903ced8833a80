//! The JIT's loads, stores and atomics, and the faults of bad accesses:
//! the same results and the same `Fault`s as the interpreter.

mod jit_support;
mod support;

use jit_support::{same, same_ctx, same_with, Setup};
use proctap_vm::consts::{atomic, map_flags};
use proctap_vm::map::MapTable;
use proctap_vm::mem::{vaddr, REGION_CTX, REGION_MAPS, REGION_STACK};
use proctap_vm::retcode::Fault;
use support::asm::*;
use support::fake_map::FakeArray;

#[test]
fn every_size_on_the_stack_fast_and_checked() {
    for (sz, v, want) in [
        (B, 0x1ff, 0xff),
        (H, 0x1_ffff, 0xffff),
        (W, -1i64 as u64, 0xffff_ffff),
        (DW, 0x0102_0304_0506_0708, 0x0102_0304_0506_0708),
    ] {
        let fast = prog![ld_imm64(1, v), stx(sz, 10, 1, -16), ldx(sz, 0, 10, -16), exit()];
        assert_eq!(same(fast).unwrap(), want);
        // Through another register: the inline check.
        let checked =
            prog![ld_imm64(1, v), mov64_reg(2, 10), alu64_imm(ADD, 2, -16), stx(sz, 2, 1, 0), ldx(sz, 0, 2, 0), exit()];
        assert_eq!(same(checked).unwrap(), want);
    }
    assert_eq!(same(prog![st(DW, 10, -8, -2), ldx(DW, 0, 10, -8), exit()]).unwrap(), (-2i64) as u64);
    assert_eq!(same(prog![st(H, 10, -8, 0x12345), ldx(DW, 0, 10, -8), exit()]).unwrap(), 0x2345);
    assert_eq!(same(prog![ldx(DW, 0, 10, -512), exit()]).unwrap(), 0, "the stack starts zeroed");
}

#[test]
fn sign_extending_loads() {
    let p = |sz, v: u64| same(prog![ld_imm64(1, v), stx(DW, 10, 1, -8), ldsx(sz, 0, 10, -8), exit()]).unwrap();
    assert_eq!(p(B, 0x80), 0xffff_ffff_ffff_ff80);
    assert_eq!(p(H, 0x7fff), 0x7fff);
    assert_eq!(p(W, 0x8000_0000), 0xffff_ffff_8000_0000);
}

#[test]
fn context_reads_and_writes() {
    let ctx: Vec<u8> = (1..=16).collect();
    let (r0, after) = same_ctx(prog![ldx(W, 0, 1, 4), st(B, 1, 15, 0x7f), stx(H, 1, 0, 0), exit()], &ctx);
    assert_eq!(r0.unwrap(), 0x0807_0605);
    assert_eq!(&after[..2], &[5, 6]);
    assert_eq!(after[15], 0x7f);
}

/// (r0, the stored value, the src register after) of one atomic on the stack.
fn atomic_run(sz: u8, op: i32, old: u64, src: u64, r0: u64) -> (u64, u64, u64) {
    let p = prog![
        ld_imm64(1, old),
        stx(DW, 10, 1, -8),
        ld_imm64(2, src),
        ld_imm64(0, r0),
        mov64_reg(3, 10),
        alu64_imm(ADD, 3, -8),
        atomic_op(sz, 3, 2, 0, op),
        stx(DW, 10, 0, -16),
        stx(DW, 10, 2, -24),
        ldx(DW, 0, 10, -8),
        exit()
    ];
    let stored = same(p.clone()).unwrap();
    let mut q = p.clone();
    let n = q.len();
    q[n - 2] = ldx(DW, 0, 10, -16);
    let r0_after = same(q.clone()).unwrap();
    q[n - 2] = ldx(DW, 0, 10, -24);
    (r0_after, stored, same(q).unwrap())
}

#[test]
fn atomics_64_and_32() {
    use atomic::*;
    let (old, src) = (0xffff_0000_0000_00f0u64, 0x0000_0001_0000_0f0fu64);
    assert_eq!(atomic_run(DW, ADD, old, src, 7), (7, old.wrapping_add(src), src));
    assert_eq!(atomic_run(DW, ADD | FETCH, old, src, 7), (7, old.wrapping_add(src), old));
    assert_eq!(atomic_run(DW, OR | FETCH, old, src, 7), (7, old | src, old));
    assert_eq!(atomic_run(DW, AND | FETCH, old, src, 7), (7, old & src, old));
    assert_eq!(atomic_run(DW, XOR | FETCH, old, src, 7), (7, old ^ src, old));
    assert_eq!(atomic_run(DW, XOR, old, src, 7), (7, old ^ src, src));
    let lo = |v: u64| v & 0xffff_ffff;
    let hi = old & !0xffff_ffff;
    assert_eq!(atomic_run(W, ADD | FETCH, old, src, 7), (7, hi | lo(old + src), lo(old)));
    assert_eq!(atomic_run(W, OR | FETCH, old, src, 7), (7, hi | lo(old | src), lo(old)));
    assert_eq!(atomic_run(W, AND, old, src, 7), (7, hi | lo(old & src), src));
    assert_eq!(atomic_run(DW, XCHG, old, src, 7), (7, src, old));
    assert_eq!(atomic_run(W, XCHG, old, src, 7), (7, hi | lo(src), lo(old)));
    assert_eq!(atomic_run(DW, CMPXCHG, old, src, old), (old, src, src), "equal: stored");
    assert_eq!(atomic_run(DW, CMPXCHG, old, src, 1), (old, old, src), "different: kept");
    assert_eq!(atomic_run(W, CMPXCHG, old, src, 0xdead_0000_0000_00f0), (lo(old), hi | lo(src), src));
    assert_eq!(atomic_run(W, CMPXCHG, old, src, 1), (lo(old), old, src));
}

#[test]
fn a_fetch_with_r0_as_its_source() {
    // r0 is the operand and gets the old value.
    let p = prog![
        st(DW, 10, -8, 0x0f),
        mov64_imm(0, 0x30),
        atomic_op(DW, 10, 0, -8, atomic::OR | atomic::FETCH),
        ldx(DW, 1, 10, -8),
        alu64_imm(LSH, 1, 8),
        alu64_reg(OR, 0, 1),
        exit()
    ];
    assert_eq!(same(p).unwrap(), 0x3f00 | 0x0f);
}

fn memory_fault(r: Result<u64, Fault>) -> (usize, u64, u32, bool) {
    match r {
        Err(Fault::Memory { pc, addr, size, write }) => (pc, addr, size, write),
        other => panic!("not a memory fault: {other:?}"),
    }
}

#[test]
fn null_small_integers_and_bad_regions_fault() {
    assert_eq!(memory_fault(same(prog![mov64_imm(1, 0), ldx(DW, 0, 1, 0), exit()])), (1, 0, 8, false));
    assert_eq!(memory_fault(same(prog![mov64_imm(0, 0), mov64_imm(1, 16), st(W, 1, 4, 1), exit()])), (2, 20, 4, true));
    let far = vaddr(0xffff_0000, 8);
    assert_eq!(memory_fault(same(prog![ld_imm64(1, far), ldx(B, 0, 1, 0), exit()])), (2, far, 1, false));
    let handle = prog![ld_map_fd(1, 0), ldx(W, 0, 1, 0), exit()];
    let maps = || {
        let mut m = MapTable::new();
        m.insert(Box::new(FakeArray::new(8, 2, 0)));
        m
    };
    let o = same_with(handle, &Setup { maps: &maps, ..Setup::default() });
    assert_eq!(memory_fault(o.r0).0, 2, "a map handle is not memory");
}

#[test]
fn context_and_stack_bounds_are_checked() {
    let ctx = [0u8; 16];
    let (r0, _) = same_ctx(prog![ldx(DW, 0, 1, 12), exit()], &ctx);
    assert_eq!(memory_fault(r0), (0, vaddr(REGION_CTX, 12), 8, false));
    let (r0, _) = same_ctx(prog![ldx(B, 0, 1, -1), exit()], &ctx);
    assert_eq!(memory_fault(r0).1, vaddr(REGION_CTX, 0) - 1);
    let (r0, after) = same_ctx(prog![mov64_imm(0, 0), st(B, 1, 15, 1), st(H, 1, 15, 2), exit()], &ctx);
    assert_eq!(memory_fault(r0), (2, vaddr(REGION_CTX, 15), 2, true));
    assert_eq!(after[15], 1, "the store before the fault happened");
    let past = prog![mov64_reg(1, 10), alu64_imm(ADD, 1, 8 * 512 - 512), ldx(B, 0, 1, 0), exit()];
    assert_eq!(memory_fault(same(past)), (2, vaddr(REGION_STACK, 4096), 1, false));
    let deep = prog![mov64_reg(1, 10), ldx(DW, 0, 1, 8), exit()];
    assert_eq!(same(deep), Ok(0), "the next frames are inside the stack region");
}

#[test]
fn a_read_only_context_refuses_stores_and_atomics() {
    let setup = Setup { ctx: vec![7; 8], writable: false, ..Setup::default() };
    let o = same_with(prog![mov64_imm(0, 0), st(B, 1, 0, 1), exit()], &setup);
    assert_eq!(o.r0, Err(Fault::ReadOnly { pc: 1, addr: vaddr(REGION_CTX, 0) }));
    let o = same_with(prog![mov64_imm(0, 0), mov64_imm(2, 1), atomic_op(W, 1, 2, 4, atomic::ADD), exit()], &setup);
    assert_eq!(o.r0, Err(Fault::ReadOnly { pc: 2, addr: vaddr(REGION_CTX, 4) }));
    assert_eq!(o.ctx, vec![7; 8]);
    let o = same_with(prog![mov64_imm(0, 0), mov64_imm(2, 1), atomic_op(W, 1, 2, 8, atomic::ADD), exit()], &setup);
    assert_eq!(memory_fault(o.r0), (2, vaddr(REGION_CTX, 8), 4, false), "out of bounds first: a load fault");
    let differs = prog![mov64_imm(0, 1), mov64_imm(2, 9), cmpxchg(W, 1, 2, 0), exit()];
    assert_eq!(same_with(differs, &setup).r0, Ok(0x0707_0707), "a failing cmpxchg only reads");
    let equal = prog![mov32_imm(0, 0x0707_0707), mov64_imm(2, 9), cmpxchg(W, 1, 2, 0), exit()];
    assert!(matches!(same_with(equal, &setup).r0, Err(Fault::ReadOnly { pc: 2, .. })));
}

fn two_maps() -> MapTable {
    let mut m = MapTable::new();
    m.insert(Box::new(FakeArray::new(12, 4, 0)));
    m.insert(Box::new(FakeArray::new(8, 2, map_flags::RDONLY_PROG)));
    m
}

#[test]
fn map_values_are_checked_per_slot_and_writability() {
    let setup = Setup { maps: &two_maps, ..Setup::default() };
    // Slot 1 of map 0 (12-byte slots): bytes 12..24.
    let ok = prog![ld_map_value(1, 0, 0), alu64_imm(ADD, 1, 12), st(DW, 1, 4, 0x55), ldx(DW, 0, 1, 4), exit()];
    let o = same_with(ok, &setup);
    assert_eq!(o.r0, Ok(0x55));
    assert_eq!(o.maps[0][16], 0x55);
    let across = prog![ld_map_value(1, 0, 0), alu64_imm(ADD, 1, 12), ldx(DW, 0, 1, 8), exit()];
    assert_eq!(memory_fault(same_with(across, &setup).r0), (3, vaddr(REGION_MAPS, 20), 8, false));
    let ro = prog![mov64_imm(0, 0), ld_map_value(1, 1, 0), st(B, 1, 0, 1), exit()];
    assert_eq!(same_with(ro, &setup).r0, Err(Fault::ReadOnly { pc: 3, addr: vaddr(REGION_MAPS + 1, 0) }));
    let read = prog![ld_map_value(1, 1, 0), ldx(DW, 0, 1, 8), exit()];
    assert_eq!(same_with(read, &setup).r0, Ok(0));
}

#[test]
fn misaligned_atomics_fault_in_both_engines_and_aligned_ones_run() {
    // Through r10 directly (the JIT's frame fast path) and through a copy.
    for (sz, off) in [(DW, -12i16), (W, -6), (DW, -68)] {
        let direct = prog![mov64_imm(0, 1), mov64_imm(2, 1), atomic_op(sz, 10, 2, off, atomic::ADD), exit()];
        let copied = prog![
            mov64_imm(0, 1),
            mov64_imm(2, 1),
            mov64_reg(3, 10),
            alu64_imm(ADD, 3, off as i32),
            cmpxchg(sz, 3, 2, 0),
            exit(),
        ];
        for insns in [direct, copied] {
            let r = same(insns);
            assert!(
                matches!(&r, Err(Fault::Other { reason, .. }) if reason.contains("not aligned")),
                "{sz:#x} {off}: {r:?}"
            );
        }
    }
    let aligned = prog![mov64_imm(2, 5), atomic_op(DW, 10, 2, -16, atomic::ADD), ldx(DW, 0, 10, -16), exit()];
    assert_eq!(same(aligned), Ok(5));
    let ctx = prog![mov64_imm(2, 5), atomic_op(W, 1, 2, 2, atomic::ADD), mov64_imm(0, 0), exit()];
    assert!(matches!(same_ctx(ctx, &[0; 8]).0, Err(Fault::Other { .. })), "a misaligned ctx atomic");
}

/// The JIT expects r1 to be the context and r10-derived pointers the stack
/// (its fast check for a known region); a pointer that is elsewhere at run
/// time must get the same result or fault as in the interpreter.
#[test]
fn pointers_that_leave_their_expected_region() {
    let ctx: Vec<u8> = (1..=16).collect();
    let to_stack = vaddr(REGION_STACK, 0).wrapping_sub(vaddr(REGION_CTX, 0));
    // r1 moved from the context to the stack's first word (zeroed).
    let (r0, _) = same_ctx(prog![ld_imm64(2, to_stack), alu64_reg(ADD, 1, 2), ldx(DW, 0, 1, 504), exit()], &ctx);
    assert_eq!(r0, Ok(0));
    // r1 moved to region 3 (map handles: no memory), and past the region table.
    for delta in [1u64 << 32, 1000 << 32] {
        let (r0, _) = same_ctx(prog![ld_imm64(2, delta), alu64_reg(ADD, 1, 2), ldx(B, 0, 1, 0), exit()], &ctx);
        assert!(matches!(r0, Err(Fault::Memory { .. })), "{delta:#x}: {r0:?}");
    }
    // Below the context's first address: the subtraction wraps, refused.
    let (r0, _) = same_ctx(prog![ldx(B, 0, 1, -1), exit()], &ctx);
    assert!(matches!(r0, Err(Fault::Memory { .. })), "{r0:?}");
    // A stack pointer moved into the context: a store the context takes.
    let to_ctx = vaddr(REGION_CTX, 0).wrapping_sub(vaddr(REGION_STACK, 512));
    let (r0, after) = same_ctx(
        prog![mov64_reg(3, 10), ld_imm64(2, to_ctx), alu64_reg(ADD, 3, 2), st(B, 3, 2, 99), ldx(B, 0, 3, 2), exit()],
        &ctx,
    );
    assert_eq!((r0, after[2]), (Ok(99), 99));
    // At the context's end and one byte past it.
    assert_eq!(same_ctx(prog![ldx(DW, 0, 1, 8), exit()], &ctx).0, Ok(u64::from_le_bytes(ctx[8..].try_into().unwrap())));
    assert!(matches!(same_ctx(prog![ldx(DW, 0, 1, 9), exit()], &ctx).0, Err(Fault::Memory { .. })));
}
