//! The stack's frames start zeroed: the first at a run's entry, every other
//! one when a call (or a bpf_loop callback) enters it; the interpreter and
//! the JIT agree.

mod jit_support;
mod support;

use jit_support::same;
use proctap_vm::consts::helper;
use support::asm::*;

#[test]
fn a_callee_finds_its_frame_zeroed_whatever_an_earlier_callee_left() {
    let p = prog![
        call_local(2), // f
        call_local(4), // g: r0 = what it finds at r10 - 8
        exit(),
        st(DW, 10, -8, 0x55), // f
        mov64_imm(0, 0),
        exit(),
        ldx(DW, 0, 10, -8), // g
        exit(),
    ];
    assert_eq!(same(p), Ok(0));
}

#[test]
fn each_bpf_loop_callback_finds_its_frame_zeroed() {
    // The callback returns what it finds at r10 - 8, then leaves 0x77
    // there: a stale frame would stop the loop after one round.
    let p = prog![
        ld_func(2, 6),
        mov64_imm(1, 3),
        mov64_imm(3, 0),
        mov64_imm(4, 0),
        call(helper::LOOP),
        exit(),
        ldx(DW, 0, 10, -8), // the callback
        st(DW, 10, -8, 0x77),
        exit(),
    ];
    assert_eq!(same(p), Ok(3));
}

#[test]
fn the_callers_frame_is_kept_across_a_call() {
    let p = prog![
        st(DW, 10, -8, 0x31),
        call_local(2),
        ldx(DW, 0, 10, -8),
        exit(),
        st(DW, 10, -8, 0x55), // the callee writes its own frame only
        mov64_imm(0, 0),
        exit(),
    ];
    assert_eq!(same(p), Ok(0x31));
}
