//! Loads, stores, sign-extending loads and atomics, and the faults of
//! accesses outside the program's memory.

mod support;

use proctap_vm::consts::{atomic, map_flags};
use proctap_vm::map::MapTable;
use proctap_vm::mem::{map_handle, vaddr, REGION_CTX, REGION_MAPS};
use proctap_vm::retcode::Fault;
use support::asm::*;
use support::fake_map::FakeArray;
use support::fake_os::FakeOs;
use support::{run, run_ctx, run_with};

#[test]
fn loads_and_stores_of_every_size_on_the_stack() {
    let p = prog![
        ld_imm64(1, 0x1122_3344_5566_7788),
        stx(DW, 10, 1, -8),
        ldx(B, 2, 10, -8),
        ldx(H, 3, 10, -8),
        ldx(W, 4, 10, -8),
        ldx(DW, 5, 10, -8),
        st(W, 10, -16, -1),
        ldx(DW, 6, 10, -16),
        mov64_reg(0, 2),
        alu64_reg(XOR, 0, 3),
        alu64_reg(XOR, 0, 4),
        alu64_reg(XOR, 0, 5),
        alu64_reg(XOR, 0, 6),
        exit(),
    ];
    let expect = 0x88 ^ 0x7788 ^ 0x5566_7788 ^ 0x1122_3344_5566_7788u64 ^ 0xffff_ffff;
    assert_eq!(run(p).unwrap(), expect);
}

#[test]
fn st_dw_sign_extends_its_immediate() {
    assert_eq!(run(prog![st(DW, 10, -8, -2), ldx(DW, 0, 10, -8), exit()]).unwrap(), (-2i64) as u64);
}

#[test]
fn the_stack_starts_zeroed() {
    assert_eq!(run(prog![ldx(DW, 0, 10, -512), exit()]).unwrap(), 0);
}

#[test]
fn ldsx_sign_extends() {
    let mut ctx = [0x80, 0xff, 0x00, 0x80, 0x7f, 0, 0, 0];
    let one = |i, ctx: &mut [u8]| run_ctx(prog![i, exit()], ctx, false).unwrap();
    assert_eq!(one(ldsx(B, 0, 1, 0), &mut ctx), 0xffff_ffff_ffff_ff80);
    assert_eq!(one(ldsx(H, 0, 1, 0), &mut ctx), 0xffff_ffff_ffff_ff80);
    assert_eq!(one(ldsx(W, 0, 1, 0), &mut ctx), 0xffff_ffff_8000_ff80);
    assert_eq!(one(ldsx(B, 0, 1, 4), &mut ctx), 0x7f);
    assert_eq!(one(ldx(B, 0, 1, 0), &mut ctx), 0x80, "ldx zero-extends");
}

#[test]
fn context_reads_and_writes() {
    let mut ctx = [1u8, 2, 3, 4];
    let r = run_ctx(prog![ldx(H, 0, 1, 2), st(B, 1, 0, 9), exit()], &mut ctx, true);
    assert_eq!(r, Ok(0x0403));
    assert_eq!(ctx, [9, 2, 3, 4]);
}

/// r0 of an atomic `op` on the stack slot holding `old`, with r1 = `src`:
/// (the memory after, r1 after, r0 after).
fn atomic_run(sz: u8, op: i32, old: u64, src: u64, r0: u64) -> (u64, u64, u64) {
    let off = if sz == W { -4 } else { -8 };
    let p = prog![
        ld_imm64(2, old),
        stx(sz, 10, 2, off),
        ld_imm64(1, src),
        ld_imm64(0, r0),
        atomic_op(sz, 10, 1, off, op),
        ldx(sz, 3, 10, off),
        // r0 = mem, stack[-16] = r1 after, stack[-24] = r0 after
        stx(DW, 10, 1, -16),
        stx(DW, 10, 0, -24),
        mov64_reg(0, 3),
        exit(),
    ];
    let mem = run(p.clone()).unwrap();
    let mut with_r1 = p.clone();
    let n = with_r1.len();
    with_r1[n - 2] = ldx(DW, 0, 10, -16);
    let r1 = run(with_r1).unwrap();
    let mut with_r0 = p;
    with_r0[n - 2] = ldx(DW, 0, 10, -24);
    (mem, r1, run(with_r0).unwrap())
}

#[test]
fn atomic_add_or_and_xor_64_and_32() {
    let old = 0xf0f0_f0f0_0000_000c;
    for (op, f) in [
        (atomic::ADD, (|a: u64, b: u64| a.wrapping_add(b)) as fn(u64, u64) -> u64),
        (atomic::OR, |a, b| a | b),
        (atomic::AND, |a, b| a & b),
        (atomic::XOR, |a, b| a ^ b),
    ] {
        let src = 0x0f0f_0f0f_ffff_fff5;
        let (mem, r1, _) = atomic_run(DW, op, old, src, 0);
        assert_eq!((mem, r1), (f(old, src), src), "64-bit op {op:#x} without fetch");
        let (mem, r1, _) = atomic_run(DW, op | atomic::FETCH, old, src, 0);
        assert_eq!((mem, r1), (f(old, src), old), "64-bit op {op:#x} with fetch");
        let (mem, r1, _) = atomic_run(W, op | atomic::FETCH, old, src, 0);
        assert_eq!((mem, r1), (f(old, src) as u32 as u64, old as u32 as u64), "32-bit op {op:#x}");
        let (mem, r1, _) = atomic_run(W, op, old, src, 0);
        assert_eq!((mem, r1), (f(old, src) as u32 as u64, src), "32-bit op {op:#x} without fetch");
    }
}

#[test]
fn xchg_64_and_32() {
    assert_eq!(atomic_run(DW, atomic::XCHG, 5, 7, 0), (7, 5, 0));
    assert_eq!(atomic_run(W, atomic::XCHG, 0x1_0000_0005, 0x2_0000_0007, 0), (7, 5, 0));
}

#[test]
fn cmpxchg_64_and_32() {
    // Equal: stores src, r0 = old.
    assert_eq!(atomic_run(DW, atomic::CMPXCHG, 5, 7, 5), (7, 7, 5));
    // Not equal: memory unchanged, r0 = old.
    assert_eq!(atomic_run(DW, atomic::CMPXCHG, 5, 7, 6), (5, 7, 5));
    // 32-bit: only the low half of r0 is compared, r0 gets the old value zero-extended.
    assert_eq!(atomic_run(W, atomic::CMPXCHG, 5, 7, 0xffff_0000_0000_0005), (7, 7, 5));
    assert_eq!(atomic_run(W, atomic::CMPXCHG, 0x9abc_def0, 7, 0x1234_5678), (0x9abc_def0, 7, 0x9abc_def0));
}

#[test]
fn null_and_small_integers_fault() {
    let r = run(prog![mov64_imm(1, 0), ldx(W, 0, 1, 0), exit()]);
    assert_eq!(r, Err(Fault::Memory { pc: 1, addr: 0, size: 4, write: false }));
    let r = run(prog![mov64_imm(1, 16), stx(DW, 1, 1, 8), mov64_imm(0, 0), exit()]);
    assert_eq!(r, Err(Fault::Memory { pc: 1, addr: 24, size: 8, write: true }));
}

#[test]
fn context_bounds_are_checked() {
    let mut ctx = [0u8; 8];
    let r = run_ctx(prog![ldx(DW, 0, 1, 1), exit()], &mut ctx, false);
    assert_eq!(r, Err(Fault::Memory { pc: 0, addr: vaddr(REGION_CTX, 1), size: 8, write: false }));
    let r = run_ctx(prog![ldx(B, 0, 1, -1), exit()], &mut ctx, false);
    assert!(matches!(r, Err(Fault::Memory { pc: 0, .. })), "{r:?}");
}

#[test]
fn a_read_only_context_refuses_stores() {
    let mut ctx = [0u8; 8];
    let r = run_ctx(prog![st(B, 1, 0, 1), mov64_imm(0, 0), exit()], &mut ctx, false);
    assert_eq!(r, Err(Fault::ReadOnly { pc: 0, addr: vaddr(REGION_CTX, 0) }));
    assert_eq!(ctx, [0; 8]);
}

#[test]
fn a_map_handle_is_not_memory() {
    let mut maps = MapTable::new();
    let id = maps.insert(Box::new(FakeArray::new(8, 4, 0)));
    let os = FakeOs::default();
    let r = run_with(prog![ld_map_fd(1, id), ldx(DW, 0, 1, 0), exit()], &mut maps, &os, &mut []);
    assert_eq!(r, Err(Fault::Memory { pc: 2, addr: map_handle(id), size: 8, write: false }));
}

#[test]
fn map_values_are_memory_within_one_slot() {
    let mut maps = MapTable::new();
    let id = maps.insert(Box::new(FakeArray::new(8, 4, 0)));
    let os = FakeOs::default();
    // Value 1 (offset 8) through a PSEUDO_MAP_VALUE pointer: store then load.
    let ok = prog![ld_map_value(1, id, 0), mov64_imm(2, 42), stx(DW, 1, 2, 8), ldx(DW, 0, 1, 8), exit()];
    assert_eq!(run_with(ok, &mut maps, &os, &mut []), Ok(42));
    let across = prog![ld_map_value(1, id, 4), ldx(DW, 0, 1, 0), exit()];
    let r = run_with(across, &mut maps, &os, &mut []);
    assert_eq!(r, Err(Fault::Memory { pc: 2, addr: vaddr(REGION_MAPS + id, 4), size: 8, write: false }));
    let past = prog![ld_map_value(1, id, 0), ldx(B, 0, 1, 32), exit()];
    assert!(matches!(run_with(past, &mut maps, &os, &mut []), Err(Fault::Memory { pc: 2, .. })));
}

#[test]
fn read_only_maps_refuse_program_stores() {
    let mut maps = MapTable::new();
    let id = maps.insert(Box::new(FakeArray::new(8, 1, map_flags::RDONLY_PROG)));
    let os = FakeOs::default();
    let r = run_with(prog![ld_map_value(1, id, 0), st(W, 1, 0, 1), mov64_imm(0, 0), exit()], &mut maps, &os, &mut []);
    assert_eq!(r, Err(Fault::ReadOnly { pc: 2, addr: vaddr(REGION_MAPS + id, 0) }));
    let r = run_with(prog![ld_map_value(1, id, 0), ldx(W, 0, 1, 4), exit()], &mut maps, &os, &mut []);
    assert_eq!(r, Ok(0), "loads are fine");
}

#[test]
fn a_pointer_past_the_stack_faults() {
    // r10 + 8 in frame 0 is frame 1's memory: allowed at run time; the
    // stack region's end is not.
    let r = run(prog![mov64_reg(1, 10), alu64_imm(ADD, 1, 4096), ldx(B, 0, 1, 0), exit()]);
    assert!(matches!(r, Err(Fault::Memory { pc: 2, .. })), "{r:?}");
}
