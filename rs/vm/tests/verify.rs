//! The safety pass: each check refuses with the instruction's index, the
//! errno Linux gives and a reason that says what is wrong; and programs
//! that are fine load.

mod support;

use proctap_vm::consts::{atomic, class, helper, MAX_INSNS};
use proctap_vm::map::MapTable;
use proctap_vm::program::verify::Options;
use proctap_vm::program::{Insn, Program};
use proctap_vm::retcode::Errno;
use support::asm::*;
use support::fake_map::FakeArray;
use support::{load, refusal};

/// Asserts `insns` is refused at `insn` with `errno` and a reason containing `what`.
#[track_caller]
fn refused(insns: Vec<Insn>, insn: usize, errno: Errno, what: &str) {
    let e = refusal(insns);
    assert_eq!((e.insn, e.errno), (Some(insn), errno), "{e}");
    assert!(e.reason.contains(what), "reason {:?} does not say {what:?}", e.reason);
}

#[test]
fn empty_and_oversized_programs() {
    let e = refusal(vec![]);
    assert_eq!(e.errno, Errno::EINVAL);
    let e = refusal(vec![exit(); MAX_INSNS + 1]);
    assert_eq!(e.errno, Errno::E2BIG);
}

#[test]
fn unknown_opcodes() {
    refused(prog![mov64_imm(0, 0), insn(0xff, 0, 0, 0, 0), exit()], 1, Errno::EINVAL, "unknown opcode 0xff");
    refused(prog![mov64_imm(0, 0), insn(0xe7, 0, 0, 0, 0), exit()], 1, Errno::EINVAL, "unknown opcode");
    // callx (call by register) is not in Linux's ISA.
    refused(prog![mov64_imm(0, 5), insn(0x8d, 0, 0, 0, 0), exit()], 1, Errno::EINVAL, "unknown opcode 0x8d");
    // JMP32 has no call or exit.
    refused(prog![mov64_imm(0, 0), insn(class::JMP32 | 0x90, 0, 0, 0, 0)], 1, Errno::EINVAL, "unknown opcode");
    // Legacy packet loads are refused.
    refused(prog![insn(0x20, 0, 0, 0, 0), exit()], 0, Errno::EINVAL, "legacy");
    // ldsx of 8 bytes does not exist.
    refused(prog![insn(0x99, 0, 10, -8, 0), exit()], 0, Errno::EINVAL, "unknown opcode");
}

#[test]
fn reserved_fields() {
    refused(prog![mov64_imm(0, 0), insn(0x87, 0, 0, 0, 1), exit()], 1, Errno::EINVAL, "BPF_NEG");
    refused(prog![mov64_imm(0, 0), insn(0x0f, 0, 0, 0, 3), exit()], 1, Errno::EINVAL, "reserved");
    refused(prog![mov64_imm(0, 0), insn(0x07, 0, 1, 0, 3), exit()], 1, Errno::EINVAL, "reserved");
    refused(prog![with_off(mov64_imm(0, 0), 8), exit()], 0, Errno::EINVAL, "BPF_MOV");
    refused(prog![movsx32(0, 1, 32), exit()], 0, Errno::EINVAL, "sign-extension width 32");
    refused(prog![with_off(alu64_reg(ADD, 1, 1), 1), mov64_imm(0, 0), exit()], 0, Errno::EINVAL, "reserved");
    refused(prog![mov64_imm(0, 0), with_off(alu64_reg(DIV, 0, 1), 2), exit()], 1, Errno::EINVAL, "reserved");
    refused(prog![mov64_imm(0, 0), le(0, 8), exit()], 1, Errno::EINVAL, "BPF_END");
    refused(prog![insn(0x62, 10, 1, -8, 0), mov64_imm(0, 0), exit()], 0, Errno::EINVAL, "BPF_ST");
    refused(prog![mov64_imm(0, 0), insn(0x95, 0, 0, 0, 1)], 1, Errno::EINVAL, "BPF_EXIT");
    refused(prog![mov64_imm(0, 0), insn(0x05, 0, 0, 0, 1), exit()], 1, Errno::EINVAL, "BPF_JA");
    refused(prog![mov64_imm(0, 0), insn(0x15, 0, 1, 0, 0), exit()], 1, Errno::EINVAL, "conditional jump");
    refused(prog![mov64_imm(0, 0), insn(0x61, 0, 1, 0, 5), exit()], 1, Errno::EINVAL, "BPF_LDX");
}

#[test]
fn ld_imm64_halves() {
    let mut bad = prog![ld_imm64(0, 1), exit()];
    bad[1].op = 0x07;
    refused(bad, 0, Errno::EINVAL, "ld_imm64");
    refused(vec![mov64_imm(0, 0), ld_imm64(1, 0)[0]], 1, Errno::EINVAL, "second half");
    let mut btf_id = prog![ld_imm64(0, 1), exit()];
    btf_id[0].src = 3;
    refused(btf_id, 0, Errno::EINVAL, "unsupported ld_imm64 source 3");
}

#[test]
fn register_numbers_and_the_frame_pointer() {
    refused(prog![mov64_imm(11, 0), mov64_imm(0, 0), exit()], 0, Errno::EINVAL, "invalid register r11");
    refused(prog![mov64_imm(0, 0), mov64_reg(0, 12), exit()], 1, Errno::EINVAL, "invalid register r12");
    refused(prog![mov64_imm(10, 0), mov64_imm(0, 0), exit()], 0, Errno::EACCES, "frame pointer");
    refused(prog![mov64_imm(0, 0), ldx(DW, 10, 1, 0), exit()], 1, Errno::EACCES, "frame pointer");
    refused(prog![mov64_imm(0, 0), ld_imm64(10, 1), exit()], 1, Errno::EACCES, "frame pointer");
    let fetch_into_fp = atomic_op(DW, 1, 10, 0, atomic::ADD | atomic::FETCH);
    refused(prog![mov64_imm(0, 0), fetch_into_fp, exit()], 1, Errno::EACCES, "frame pointer");
}

#[test]
fn constant_operands() {
    refused(prog![mov64_imm(0, 1), alu64_imm(DIV, 0, 0), exit()], 1, Errno::EINVAL, "division by zero");
    refused(prog![mov64_imm(0, 1), alu32_imm(MOD, 0, 0), exit()], 1, Errno::EINVAL, "division by zero");
    refused(prog![mov64_imm(0, 1), alu64_imm(LSH, 0, 64), exit()], 1, Errno::EINVAL, "invalid shift 64");
    refused(prog![mov64_imm(0, 1), alu32_imm(ARSH, 0, 32), exit()], 1, Errno::EINVAL, "invalid shift 32");
    refused(prog![mov64_imm(0, 1), alu32_imm(RSH, 0, -1), exit()], 1, Errno::EINVAL, "invalid shift");
    refused(prog![mov64_imm(0, 0), atomic_op(DW, 10, 0, -8, 0x10), exit()], 1, Errno::EINVAL, "atomic");
    refused(prog![mov64_imm(0, 0), atomic_op(B, 10, 0, -8, atomic::ADD), exit()], 1, Errno::EINVAL, "unknown");
}

#[test]
fn jump_targets() {
    refused(prog![mov64_imm(0, 0), ja(5), exit()], 1, Errno::EINVAL, "leaves the subprogram");
    refused(prog![mov64_imm(0, 0), jmp_imm(JEQ, 0, 0, -3), exit()], 1, Errno::EINVAL, "leaves the subprogram");
    refused(prog![mov64_imm(0, 0), ja(1), ld_imm64(1, 0), exit()], 1, Errno::EINVAL, "inside an ld_imm64");
    refused(prog![mov64_imm(0, 0), gotol(100), exit()], 1, Errno::EINVAL, "leaves the subprogram");
}

#[test]
fn falling_off_the_end() {
    refused(prog![mov64_imm(0, 0)], 0, Errno::EINVAL, "fall through");
    refused(prog![mov64_imm(0, 0), jmp_imm(JEQ, 0, 0, -2)], 1, Errno::EINVAL, "fall through");
}

#[test]
fn calls() {
    refused(prog![mov64_imm(0, 0), call(9999), exit()], 1, Errno::EINVAL, "unknown helper function #9999");
    refused(prog![call_local(5), exit()], 0, Errno::EINVAL, "call target");
    refused(prog![call_local(1), exit(), ld_imm64(0, 1)], 3, Errno::EINVAL, "fall through");
    refused(prog![call_local(-2), exit()], 0, Errno::EINVAL, "call target");
    refused(prog![insn(0x85, 0, 2, 0, 1), exit()], 0, Errno::EINVAL, "unsupported call kind");
    // A subprogram must end in exit or ja, not run into the next one.
    refused(prog![call_local(2), exit(), mov64_imm(0, 1), mov64_imm(0, 2), exit()], 2, Errno::EINVAL, "fall through");
    // Recursion, direct and mutual.
    refused(prog![call_local(1), exit(), mov64_imm(0, 1), call_local(-2), exit()], 3, Errno::EINVAL, "recursive");
    let mutual = prog![call_local(1), exit(), call_local(1), exit(), call_local(-3), exit()];
    refused(mutual, 4, Errno::EINVAL, "recursive");
}

#[test]
fn callbacks() {
    // A bpf_loop callback gets r1 (the index) and r2 (its context) only.
    let reads_r3 = prog![
        mov64_imm(1, 1),
        ld_func(2, 5),
        mov64_imm(3, 0),
        mov64_imm(4, 0),
        call(helper::LOOP),
        exit(),
        mov64_reg(0, 3),
        exit()
    ];
    refused(reads_r3, 7, Errno::EACCES, "r3 is read");
    let ok = prog![
        mov64_imm(1, 1),
        ld_func(2, 5),
        mov64_imm(3, 0),
        mov64_imm(4, 0),
        call(helper::LOOP),
        exit(),
        mov64_reg(0, 2),
        exit()
    ];
    assert!(load(ok).is_ok());
    refused(prog![ld_func(2, 9), mov64_imm(0, 0), exit()], 0, Errno::EINVAL, "call target");
    // A callback counts as a call for the depth and for recursion.
    refused(prog![mov64_imm(0, 0), exit(), ld_func(2, -3), mov64_imm(0, 0), exit()], 2, Errno::EINVAL, "recursive");
}

#[test]
fn call_depth() {
    let chain = |depth: usize| {
        let mut p = Vec::new();
        for _ in 0..depth - 1 {
            p.push(call_local(1));
            p.push(exit());
        }
        p.extend([mov64_imm(0, 7), exit()]);
        p
    };
    assert!(load(chain(8)).is_ok());
    let e = refusal(chain(9));
    assert_eq!((e.insn, e.errno), (Some(0), Errno::E2BIG), "{e}");
}

#[test]
fn register_initialization() {
    refused(prog![mov64_reg(0, 2), exit()], 0, Errno::EACCES, "r2 is read before it is written");
    refused(prog![exit()], 0, Errno::EACCES, "r0 is not set at exit");
    refused(prog![mov64_imm(0, 1), alu64_reg(ADD, 0, 7), exit()], 1, Errno::EACCES, "r7");
    // Set on one path only.
    refused(prog![jmp_imm(JEQ, 1, 0, 1), mov64_imm(0, 1), exit()], 2, Errno::EACCES, "r0 is not set");
    // A helper call clobbers r1-r5.
    refused(
        prog![mov64_imm(2, 1), call(helper::KTIME_GET_NS), mov64_reg(0, 2), exit()],
        2,
        Errno::EACCES,
        "r2 is read",
    );
    // A helper's arguments must be set.
    refused(prog![call(helper::MAP_LOOKUP_ELEM), exit()], 0, Errno::EACCES, "r2 is read");
    // A callee does not get the caller's r6-r9.
    refused(prog![mov64_imm(6, 1), call_local(1), exit(), mov64_reg(0, 6), exit()], 3, Errno::EACCES, "r6");
    // ...nor arguments the caller did not set.
    refused(prog![mov64_imm(2, 1), call_local(1), exit(), mov64_reg(0, 3), exit()], 3, Errno::EACCES, "r3");
    // Atomics read their operands; cmpxchg reads r0.
    refused(prog![cmpxchg(DW, 10, 1, -8), exit()], 0, Errno::EACCES, "r0");
    // Stores read their base register.
    refused(prog![mov64_imm(0, 0), st(W, 3, 0, 1), exit()], 1, Errno::EACCES, "r3");
}

#[test]
fn stack_bounds() {
    refused(prog![mov64_imm(0, 0), st(B, 10, -513, 1), exit()], 1, Errno::EACCES, "outside [-512, 0)");
    refused(prog![mov64_imm(0, 0), ldx(B, 0, 10, 0), exit()], 1, Errno::EACCES, "outside [-512, 0)");
    refused(prog![mov64_imm(0, 0), stx(DW, 10, 0, -4), exit()], 1, Errno::EACCES, "outside [-512, 0)");
    refused(prog![mov64_imm(0, 0), atomic_op(W, 10, 0, 8, atomic::ADD), exit()], 1, Errno::EACCES, "stack");
    assert!(load(prog![st(B, 10, -512, 1), ldx(DW, 0, 10, -8), exit()]).is_ok());
}

#[test]
fn maps_must_exist() {
    let mut maps = MapTable::new();
    let id = maps.insert(Box::new(FakeArray::new(16, 1, 0)));
    let load_with = |insns| Program::load("m", 0, insns, &maps);
    let e = load_with(prog![ld_map_fd(1, id + 1), mov64_imm(0, 0), exit()]).unwrap_err();
    assert_eq!((e.insn, e.errno), (Some(0), Errno::EBADF));
    let e = load_with(prog![mov64_imm(0, 0), ld_map_value(1, id, 16), exit()]).unwrap_err();
    assert_eq!((e.insn, e.errno), (Some(1), Errno::EINVAL));
    assert!(e.reason.contains("offset 16"), "{e}");
    let p = load_with(prog![ld_map_value(1, id, 8), mov64_imm(0, 0), exit()]).unwrap();
    assert_eq!(p.insns[0].src, 0, "resolved to a plain constant");
}

#[test]
fn what_loads() {
    // Loops, unreachable code, reading a stack slot never written.
    assert!(load(prog![mov64_imm(0, 0), alu64_imm(ADD, 0, 1), jmp_imm(JLT, 0, 10, -2), exit()]).is_ok());
    assert!(load(prog![mov64_imm(0, 0), exit(), mov64_reg(0, 7), exit()]).is_ok());
    assert!(load(prog![ldx(DW, 0, 10, -8), exit()]).is_ok());
    // r2 is set at the entry only when asked for.
    assert!(load(prog![mov64_reg(0, 2), exit()]).is_err());
    let two = Options { entry_args: 2 };
    assert!(Program::load_with("c", 0, prog![mov64_reg(0, 2), exit()], &MapTable::new(), &two).is_ok());
}
