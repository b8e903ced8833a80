//! The JIT's jumps, calls (BPF-to-BPF, helpers, bpf_loop, tail calls) and
//! the instruction budget, against hand-computed results and the
//! interpreter.

mod jit_support;
mod support;

use jit_support::{both, compile, load, run_one, same, same_with, Setup};
use proctap_vm::consts::{helper, MAX_TAIL_CALLS};
use proctap_vm::jit::JitProgram;
use proctap_vm::map::MapTable;
use proctap_vm::osutil::HostOs;
use proctap_vm::program::Env;
use proctap_vm::program::{Insn, Program, Programs};
use proctap_vm::retcode::Fault;
use support::asm::*;
use support::fake_map::FakeProgArray;

/// 1 if `a op b` (64-bit, or 32-bit with `wide` false) jumps, else 0.
fn taken(op: u8, wide: bool, a: u64, b: u64) -> u64 {
    let j = if wide { jmp_reg(op, 1, 2, 1) } else { jmp32_reg(op, 1, 2, 1) };
    let reg = same(prog![ld_imm64(1, a), ld_imm64(2, b), mov64_imm(0, 0), j, exit(), mov64_imm(0, 1), exit()]).unwrap();
    if b as i32 as i64 as u64 == b || !wide {
        let j = if wide { jmp_imm(op, 1, b as i32, 1) } else { jmp32_imm(op, 1, b as i32, 1) };
        let imm = same(prog![ld_imm64(1, a), mov64_imm(0, 0), j, exit(), mov64_imm(0, 1), exit()]).unwrap();
        assert_eq!(reg, imm, "op {op:#x} {a:#x} {b:#x}: register and immediate forms");
    }
    reg
}

#[test]
fn conditional_jumps_64_and_32() {
    let m1 = u64::MAX;
    for (op, a, b, want) in [
        (JEQ, 5, 5, 1),
        (JNE, 5, 5, 0),
        (JGT, m1, 1, 1),
        (JSGT, m1, 1, 0),
        (JGE, 3, 3, 1),
        (JLT, 1, m1, 1),
        (JSLT, m1, 1, 1),
        (JLE, 4, 3, 0),
        (JSLE, m1, m1, 1),
        (JSGE, 0, m1, 1),
        (JSET, 6, 2, 1),
        (JSET, 6, 1, 0),
    ] {
        assert_eq!(taken(op, true, a, b), want, "64-bit op {op:#x} {a:#x} {b:#x}");
    }
    assert_eq!(taken(JEQ, false, 0x1_0000_0005, 5), 1, "jmp32 compares low halves");
    assert_eq!(taken(JSGT, false, 0xffff_ffff, 0), 0, "jmp32 signed");
    assert_eq!(taken(JGT, false, 0xffff_ffff, 0), 1);
    assert_eq!(taken(JSET, false, 0x1_0000_0000, 0x1_0000_0000), 0);
    assert_eq!(taken(JEQ, true, 0xffff_ffff_ffff_fffe, (-2i64) as u64), 1, "the immediate sign-extends");
}

#[test]
fn backward_jumps_loop_and_gotol_jumps_far() {
    // r0 = sum 1..=100 by a backward jump.
    let p = prog![
        mov64_imm(0, 0),
        mov64_imm(1, 100),
        alu64_reg(ADD, 0, 1),
        alu64_imm(SUB, 1, 1),
        jmp_imm(JNE, 1, 0, -3),
        exit()
    ];
    assert_eq!(same(p).unwrap(), 5050);
    let p = prog![mov64_imm(0, 1), gotol(1), mov64_imm(0, 2), exit()];
    assert_eq!(same(p).unwrap(), 1);
    // jumps comparing r10
    let p = prog![mov64_reg(1, 10), mov64_imm(0, 0), jmp_reg(JEQ, 10, 1, 1), exit(), mov64_imm(0, 1), exit()];
    assert_eq!(same(p).unwrap(), 1);
}

#[test]
fn bpf_to_bpf_calls_pass_arguments_and_keep_r6_to_r9() {
    let p = prog![
        mov64_imm(6, 60),
        mov64_imm(9, 90),
        mov64_imm(1, 1),
        mov64_imm(5, 5),
        call_local(3),
        alu64_reg(ADD, 0, 6),
        alu64_reg(ADD, 0, 9),
        exit(),
        // callee: clobbers r6 and r9, writes its own stack, returns r1 + r5
        mov64_imm(6, 0),
        mov64_imm(9, 0),
        st(DW, 10, -8, 1000),
        ldx(DW, 0, 10, -8),
        alu64_reg(ADD, 0, 1),
        alu64_reg(ADD, 0, 5),
        exit(),
    ];
    assert_eq!(same(p).unwrap(), 1000 + 1 + 5 + 60 + 90);
}

#[test]
fn a_callee_sees_its_callers_stack_and_its_own_frame() {
    let p = prog![
        st(DW, 10, -8, 42),
        mov64_reg(1, 10),
        alu64_imm(ADD, 1, -8),
        call_local(2),
        ldx(DW, 0, 10, -8),
        exit(),
        // callee: r0 = its r10 - caller's r10; *(r1) += r0
        mov64_reg(0, 10),
        ldx(DW, 2, 1, 0),
        alu64_reg(ADD, 2, 0),
        stx(DW, 1, 2, 0),
        exit(),
    ];
    assert_eq!(same(p).unwrap(), 42 + (1 << 32) + 1024);
}

/// main -> f1 -> ... a chain of `depth` frames in all.
fn chain(depth: usize) -> Vec<Insn> {
    let mut v = Vec::new();
    for _ in 1..depth {
        v.extend(prog![call_local(1), exit()]);
    }
    v.extend(prog![mov64_imm(0, 7), exit()]);
    v
}

#[test]
fn eight_frames_are_allowed() {
    assert_eq!(same(chain(8)).unwrap(), 7);
}

#[test]
fn helpers_get_their_arguments_and_clobber_nothing_else() {
    let p = prog![mov64_imm(6, 3), call(helper::KTIME_GET_NS), alu64_reg(ADD, 0, 6), exit()];
    assert_eq!(same(p).unwrap(), 1_000_000_007 + 3);
    let p = prog![
        call(helper::GET_PRANDOM_U32),
        mov64_reg(7, 0),
        call(helper::GET_SMP_PROCESSOR_ID),
        alu64_reg(ADD, 0, 7),
        exit()
    ];
    assert_eq!(same(p).unwrap(), 0xdead_beef + 1);
    // get_current_comm into the stack: a helper writing program memory.
    let p = prog![
        mov64_reg(1, 10),
        alu64_imm(ADD, 1, -16),
        mov64_imm(2, 16),
        call(helper::GET_CURRENT_COMM),
        ldx(DW, 0, 10, -16),
        exit()
    ];
    assert_eq!(same(p).unwrap(), u64::from_le_bytes(*b"fake-os\0"));
    // A bad pointer: the helper's fault.
    let p = prog![mov64_imm(1, 8), mov64_imm(2, 16), call(helper::GET_CURRENT_COMM), exit()];
    assert!(matches!(same(p), Err(Fault::Memory { pc: 2, .. })));
}

#[test]
fn bpf_loop_calls_back_until_done_or_stopped() {
    let p = prog![
        st(DW, 10, -8, 0),
        mov64_imm(1, 10),
        ld_func(2, 9),
        mov64_reg(3, 10),
        alu64_imm(ADD, 3, -8),
        mov64_imm(4, 0),
        call(helper::LOOP),
        alu64_imm(MUL, 0, 1000),
        ldx(DW, 1, 10, -8),
        alu64_reg(ADD, 0, 1),
        exit(),
        ldx(DW, 3, 2, 0),
        alu64_reg(ADD, 3, 1),
        stx(DW, 2, 3, 0),
        mov64_imm(0, 0),
        jmp_imm(JNE, 1, 6, 1),
        mov64_imm(0, 1),
        exit(),
    ];
    assert_eq!(same(p).unwrap(), 7 * 1000 + 21);
    let refused = |n: i32, flags: i32| {
        same(prog![
            mov64_imm(1, n),
            ld_func(2, 5),
            mov64_imm(3, 0),
            mov64_imm(4, flags),
            call(helper::LOOP),
            exit(),
            mov64_imm(0, 0),
            exit()
        ])
    };
    assert_eq!(refused(1, 1).unwrap(), (-22i64) as u64);
    assert_eq!(refused((1 << 23) + 1, 0).unwrap(), (-7i64) as u64);
    assert_eq!(refused(3, 0).unwrap(), 3);
}

#[test]
fn a_fault_inside_a_bpf_loop_callback_ends_the_run() {
    let p = prog![
        mov64_imm(1, 3),
        ld_func(2, 5),
        mov64_imm(3, 0),
        mov64_imm(4, 0),
        call(helper::LOOP),
        exit(),
        ldx(DW, 0, 2, 0),
        exit()
    ];
    assert!(matches!(same(p), Err(Fault::Memory { pc: 7, addr: 0, .. })));
}

/// Tail-call targets by id, with their JIT code.
struct Table(Vec<Program>, Vec<JitProgram>);

impl Table {
    fn new(progs: Vec<Program>) -> Table {
        let jitted = progs.iter().map(compile).collect();
        Table(progs, jitted)
    }
}

impl Programs for Table {
    fn program(&self, id: u32) -> Option<&Program> {
        self.0.get(id as usize)
    }
    fn jit(&self, id: u32) -> Option<&JitProgram> {
        self.1.get(id as usize)
    }
}

/// Tail-call targets without JIT code: a JIT run compiles them.
struct Bare(Vec<Program>);

impl Programs for Bare {
    fn program(&self, id: u32) -> Option<&Program> {
        self.0.get(id as usize)
    }
}

fn prog_array(slots: Vec<Option<u32>>) -> impl Fn() -> MapTable {
    move || {
        let mut m = MapTable::new();
        m.insert(Box::new(FakeProgArray::new(slots.clone())));
        m
    }
}

fn tail_caller(index: i32) -> Vec<Insn> {
    prog![ld_map_fd(2, 0), mov64_imm(3, index), call(helper::TAIL_CALL), alu64_imm(ADD, 0, 100), exit()]
}

#[test]
fn tail_calls_replace_the_program_or_fall_through() {
    let maps = prog_array(vec![Some(0), None, Some(9)]);
    let base = Setup { maps: &maps, ..Setup::default() };
    let table = Table::new(vec![load(prog![mov64_imm(0, 5), exit()], &base)]);
    let setup = Setup { maps: &maps, progs: Some(&table), ..Setup::default() };
    assert_eq!(same_with(tail_caller(0), &setup).r0, Ok(5));
    let enoent = (-2i64 + 100) as u64;
    for index in [1, 2, 3] {
        assert_eq!(same_with(tail_caller(index), &setup).r0, Ok(enoent), "index {index}");
    }
    // A tail call from a subprogram returns to the subprogram's caller.
    let from_sub = prog![
        call_local(2),
        alu64_imm(ADD, 0, 1000),
        exit(),
        ld_map_fd(2, 0),
        mov64_imm(3, 0),
        call(helper::TAIL_CALL),
        exit()
    ];
    assert_eq!(same_with(from_sub, &setup).r0, Ok(1005));
}

#[test]
fn a_tail_call_deep_in_frames_can_run_out_of_frames() {
    // The caller is 2 frames deep when it tail-calls an 8-frame chain.
    let maps = prog_array(vec![Some(0)]);
    let base = Setup { maps: &maps, ..Setup::default() };
    let table = Table::new(vec![load(chain(8), &base)]);
    let setup = Setup { maps: &maps, progs: Some(&table), ..Setup::default() };
    let main = prog![call_local(1), exit(), ld_map_fd(2, 0), mov64_imm(3, 0), call(helper::TAIL_CALL), exit()];
    assert_eq!(same_with(main, &setup).r0, Err(Fault::CallDepth { pc: 12 }));
}

#[test]
fn bpf_loop_from_the_last_frame_faults_only_when_it_calls_back() {
    // Frame 0 tail-calls program 0 from frame 1: a chain of 7 more calls
    // reaches the last frame, which runs bpf_loop `n` times.
    let deepest = |n: i32| {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.extend(prog![call_local(1), exit()]);
        }
        v.extend(prog![
            mov64_imm(1, n),
            ld_func(2, 5),
            mov64_imm(3, 0),
            mov64_imm(4, 0),
            call(helper::LOOP),
            exit(),
            mov64_imm(0, 0),
            exit()
        ]);
        v
    };
    let maps = prog_array(vec![Some(0)]);
    let base = Setup { maps: &maps, ..Setup::default() };
    let main = prog![call_local(1), exit(), ld_map_fd(2, 0), mov64_imm(3, 0), call(helper::TAIL_CALL), exit()];
    let none = Table::new(vec![load(deepest(0), &base)]);
    let setup = Setup { maps: &maps, progs: Some(&none), ..Setup::default() };
    assert_eq!(same_with(main.clone(), &setup).r0, Ok(0));
    let one = Table::new(vec![load(deepest(1), &base)]);
    let setup = Setup { maps: &maps, progs: Some(&one), ..Setup::default() };
    assert_eq!(same_with(main, &setup).r0, Err(Fault::CallDepth { pc: 12 + 5 }));
}

#[test]
fn a_tail_call_target_without_jit_code_is_compiled_for_the_run() {
    let maps = prog_array(vec![Some(0)]);
    let base = Setup { maps: &maps, ..Setup::default() };
    let bare = Bare(vec![load(prog![mov64_imm(0, 5), exit()], &base)]);
    let prog = load(tail_caller(0), &base);
    let jit = compile(&prog);
    let os = HostOs::with_seed(1);
    let mut m = maps();
    let mut env = Env::new(&os, &mut m, &mut []);
    env.progs = Some(&bare);
    assert_eq!(jit.run(&mut env), Ok(5));
}

#[test]
fn a_tail_call_counts_only_what_runs() {
    // ld_imm64, mov, call in the caller, mov, exit in the target: 5.
    let maps = prog_array(vec![Some(0)]);
    let base = Setup { maps: &maps, ..Setup::default() };
    let table = Table::new(vec![load(prog![mov64_imm(0, 5), exit()], &base)]);
    let exact = Setup { maps: &maps, progs: Some(&table), budget: 5, ..Setup::default() };
    assert_eq!(same_with(tail_caller(0), &exact).r0, Ok(5));
}

#[test]
fn tail_calls_stop_after_the_limit() {
    let looping = prog![
        ldx(DW, 0, 10, -8),
        alu64_imm(ADD, 0, 1),
        stx(DW, 10, 0, -8),
        ld_map_fd(2, 0),
        mov64_imm(3, 0),
        call(helper::TAIL_CALL),
        ldx(DW, 0, 10, -8),
        exit(),
    ];
    let maps = prog_array(vec![Some(0)]);
    let base = Setup { maps: &maps, ..Setup::default() };
    let table = Table::new(vec![load(looping.clone(), &base)]);
    let setup = Setup { maps: &maps, progs: Some(&table), ..Setup::default() };
    assert_eq!(same_with(looping, &setup).r0, Ok(MAX_TAIL_CALLS as u64 + 1));
}

#[test]
fn the_budget_stops_loops_and_counts_exactly_on_completion() {
    // 2 + 3 * 100 + 1 instructions.
    let p = prog![
        mov64_imm(0, 0),
        mov64_imm(1, 100),
        alu64_reg(ADD, 0, 1),
        alu64_imm(SUB, 1, 1),
        jmp_imm(JNE, 1, 0, -3),
        exit()
    ];
    let exact = Setup { budget: 303, ..Setup::default() };
    assert_eq!(same_with(p.clone(), &exact).r0, Ok(5050));
    let short = Setup { budget: 302, ..Setup::default() };
    let prog = load(p.clone(), &short);
    let (i, j) = both(&prog, &short);
    assert_eq!(i.r0, Err(Fault::Budget { pc: 5, budget: 302 }));
    assert_eq!(j.r0, Err(Fault::Budget { pc: 5, budget: 302 }), "the last block is the exit alone");
    let tiny = Setup { budget: 10, ..Setup::default() };
    let jit = compile(&prog);
    assert!(
        matches!(run_one(&prog, Some(&jit), &tiny).r0, Err(Fault::Budget { pc: 2, budget: 10 })),
        "stops at a block's start"
    );
    // An endless loop ends.
    let forever = prog![mov64_imm(0, 0), ja(-1), exit()];
    assert!(matches!(same(forever), Err(Fault::Budget { .. })));
}

#[test]
fn code_that_runs_off_its_end_faults_instead_of_running_into_the_stubs() {
    // Not admitted by the safety pass; built directly, as an embedder could.
    let prog = Program { name: "raw".into(), prog_type: 0, insns: prog![mov64_imm(0, 1), mov64_reg(1, 0)] };
    let jit = compile(&prog);
    let os = HostOs::with_seed(1);
    let mut m = MapTable::new();
    let mut env = Env::new(&os, &mut m, &mut []);
    let want = Fault::Other { pc: 2, reason: "execution ran past the last instruction".into() };
    assert_eq!(jit.run(&mut env), Err(want.clone()));
    assert_eq!(prog.run(&mut env), Err(want));
}

/// `trace_printk("%d %d %d")` with r3-r5 as they are, from a format at r10-16.
fn print_r3_to_r5() -> Vec<Insn> {
    prog![
        ld_imm64(1, u64::from_le_bytes(*b"%d %d %d")),
        stx(DW, 10, 1, -16),
        st(DW, 10, -8, 0),
        mov64_reg(1, 10),
        alu64_imm(ADD, 1, -16),
        mov64_imm(2, 16),
        call(helper::TRACE_PRINTK),
    ]
}

/// The console lines of `insns` in each engine, which must agree.
fn printed(insns: Vec<Insn>, setup: &Setup) -> Vec<String> {
    let prog = load(insns, setup);
    let jit = compile(&prog);
    let interp = run_one(&prog, None, setup);
    let lines = std::mem::take(&mut *setup.os.lines.lock().unwrap());
    let jitted = run_one(&prog, Some(&jit), setup);
    let jit_lines = std::mem::take(&mut *setup.os.lines.lock().unwrap());
    assert_eq!(interp, jitted);
    assert_eq!(lines, jit_lines, "interpreter (left) and JIT (right) print differently");
    lines
}

#[test]
fn registers_the_safety_pass_treats_as_unset_read_as_zero() {
    let setup = Setup::default();
    let ret0 = prog![mov64_imm(0, 0), exit()];
    // At the entry: no host value in r3-r5.
    let p = [print_r3_to_r5(), ret0.clone()].concat();
    assert_eq!(printed(p, &setup), ["0 0 0"]);
    // After a helper call.
    let p = [
        prog![mov64_imm(3, 3), mov64_imm(4, 4), mov64_imm(5, 5), call(helper::KTIME_GET_NS)],
        print_r3_to_r5(),
        ret0.clone(),
    ]
    .concat();
    assert_eq!(printed(p, &setup), ["0 0 0"]);
    // After a BPF-to-BPF call, and inside the callee (r3-r5 passed).
    let callee = [print_r3_to_r5(), ret0.clone()].concat();
    let p = [
        prog![mov64_imm(3, 3), mov64_imm(4, 4), mov64_imm(5, 5), call_local((print_r3_to_r5().len() + 2) as i32)],
        print_r3_to_r5(),
        ret0.clone(),
        callee,
    ]
    .concat();
    assert_eq!(printed(p, &setup), ["3 4 5", "0 0 0"]);
    // A bpf_loop callback gets r1 and r2 only.
    let cb = [print_r3_to_r5(), prog![mov64_imm(0, 1), exit()]].concat();
    let p = [
        prog![
            mov64_imm(5, 5),
            mov64_imm(1, 1),
            ld_func(2, 5),
            mov64_imm(3, 3),
            mov64_imm(4, 0),
            call(helper::LOOP),
            exit()
        ],
        cb,
    ]
    .concat();
    assert_eq!(printed(p, &setup), ["0 0 0"]);
}

#[test]
fn a_tail_called_program_starts_with_only_r1() {
    let maps = prog_array(vec![None, Some(0)]);
    let base = Setup { maps: &maps, ..Setup::default() };
    let target = [print_r3_to_r5(), prog![mov64_imm(0, 9), exit()]].concat();
    let table = Table::new(vec![load(target, &base)]);
    let setup = Setup { maps: &maps, progs: Some(&table), ..Setup::default() };
    let main =
        prog![mov64_imm(4, 4), mov64_imm(5, 5), ld_map_fd(2, 0), mov64_imm(3, 1), call(helper::TAIL_CALL), exit()];
    assert_eq!(printed(main, &setup), ["0 0 0"]);
}
