//! Calls: helpers by id, BPF-to-BPF calls with their own frames, the call
//! depth, bpf_loop callbacks and tail calls.

mod support;

use proctap_vm::consts::{helper, MAX_TAIL_CALLS};
use proctap_vm::map::MapTable;
use proctap_vm::program::{Env, Insn, Program, Programs};
use proctap_vm::retcode::Fault;
use support::asm::*;
use support::fake_map::FakeProgArray;
use support::fake_os::FakeOs;
use support::run;

#[test]
fn helper_5_is_ktime_get_ns() {
    assert_eq!(run(prog![call(helper::KTIME_GET_NS), exit()]).unwrap(), FakeOs::default().time_ns);
}

#[test]
fn bpf_to_bpf_calls_pass_r1_to_r5_and_keep_r6_to_r9() {
    let p = prog![
        mov64_imm(1, 1),
        mov64_imm(2, 2),
        mov64_imm(3, 3),
        mov64_imm(4, 4),
        mov64_imm(5, 5),
        mov64_imm(6, 60),
        mov64_imm(9, 90),
        st(DW, 10, -8, 1000),
        call_local(5),
        // back in the caller: r0 = sum + r6 + r9 + stack[-8]
        alu64_reg(ADD, 0, 6),
        alu64_reg(ADD, 0, 9),
        ldx(DW, 1, 10, -8),
        alu64_reg(ADD, 0, 1),
        exit(),
        // callee at 14: r0 = r1+..+r5; clobbers r6, r9 and its own stack slot
        mov64_reg(0, 1),
        alu64_reg(ADD, 0, 2),
        alu64_reg(ADD, 0, 3),
        alu64_reg(ADD, 0, 4),
        alu64_reg(ADD, 0, 5),
        mov64_imm(6, 0),
        mov64_imm(9, 0),
        st(DW, 10, -8, 7),
        exit(),
    ];
    assert_eq!(run(p).unwrap(), 15 + 60 + 90 + 1000);
}

#[test]
fn a_callee_sees_the_callers_stack_through_a_pointer() {
    let p = prog![
        st(DW, 10, -8, 41),
        mov64_reg(1, 10),
        alu64_imm(ADD, 1, -8),
        call_local(1),
        exit(),
        // callee: *r1 += 1; r0 = *r1; its r10 is another frame
        ldx(DW, 0, 1, 0),
        alu64_imm(ADD, 0, 1),
        stx(DW, 1, 0, 0),
        mov64_reg(2, 10),
        alu64_reg(SUB, 2, 1),
        // r2 = callee r10 - &caller slot = 512 + 8
        jmp_imm(JEQ, 2, 520, 1),
        mov64_imm(0, -1),
        exit(),
    ];
    assert_eq!(run(p).unwrap(), 42);
}

/// A chain of `depth` frames: each subprogram calls the next; the last
/// returns 7.
fn chain(depth: usize) -> Vec<Insn> {
    let mut p = Vec::new();
    for _ in 0..depth - 1 {
        p.push(call_local(1));
        p.push(exit());
    }
    p.push(mov64_imm(0, 7));
    p.push(exit());
    p
}

#[test]
fn eight_frames_are_allowed() {
    assert_eq!(run(chain(8)).unwrap(), 7);
}

/// Tail-call targets by id.
struct Table(Vec<Program>);

impl Programs for Table {
    fn program(&self, id: u32) -> Option<&Program> {
        self.0.get(id as usize)
    }
}

/// Runs `main` with a prog array (map 0) of `slots` over `table`.
fn run_tail(main: Vec<Insn>, slots: Vec<Option<u32>>, table: &Table) -> Result<u64, Fault> {
    let mut maps = MapTable::new();
    maps.insert(Box::new(FakeProgArray::new(slots)));
    let prog = Program::load("main", 0, main, &maps).unwrap();
    let os = FakeOs::default();
    let mut env = Env::new(&os, &mut maps, &mut []);
    env.progs = Some(table);
    prog.run(&mut env)
}

/// Loads a tail-call target against a table like `run_tail`'s (a prog
/// array as map 0).
fn load(insns: Vec<Insn>) -> Program {
    let mut maps = MapTable::new();
    maps.insert(Box::new(FakeProgArray::new(vec![])));
    Program::load("t", 0, insns, &maps).unwrap()
}

/// `r0 = tail_call(ctx, map 0, index); return r0 + 100` (the return only
/// when the tail call falls through).
fn tail_caller(index: i32) -> Vec<Insn> {
    prog![ld_map_fd(2, 0), mov64_imm(3, index), call(helper::TAIL_CALL), alu64_imm(ADD, 0, 100), exit()]
}

#[test]
fn a_tail_call_replaces_the_program() {
    let table = Table(vec![load(prog![mov64_imm(0, 5), exit()])]);
    assert_eq!(run_tail(tail_caller(0), vec![Some(0)], &table), Ok(5));
}

#[test]
fn a_missing_tail_call_target_falls_through() {
    let table = Table(vec![]);
    let enoent = (-2i64 + 100) as u64;
    assert_eq!(run_tail(tail_caller(0), vec![None], &table), Ok(enoent), "empty slot");
    assert_eq!(run_tail(tail_caller(3), vec![Some(0)], &table), Ok(enoent), "index past the end");
    assert_eq!(run_tail(tail_caller(0), vec![Some(9)], &table), Ok(enoent), "no such program");
}

#[test]
fn tail_calls_stop_after_the_limit() {
    // Program 0 counts in the (writable) context... there is none here, so
    // it counts on the stack it shares with its tail-called self: the
    // frame is reused, so r10-8 holds the count across tail calls.
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
    let table = Table(vec![load(looping.clone())]);
    assert_eq!(run_tail(looping, vec![Some(0)], &table), Ok(MAX_TAIL_CALLS as u64 + 1));
}

#[test]
fn bpf_loop_calls_back_until_done_or_stopped() {
    // sum of the indexes 0..10 into the stack through callback_ctx.
    let p = prog![
        st(DW, 10, -8, 0),
        mov64_imm(1, 10),
        ld_func(2, 9),
        mov64_reg(3, 10),
        alu64_imm(ADD, 3, -8),
        mov64_imm(4, 0),
        call(helper::LOOP),
        // r0 = loops run * 1000 + sum
        alu64_imm(MUL, 0, 1000),
        ldx(DW, 1, 10, -8),
        alu64_reg(ADD, 0, 1),
        exit(),
        // callback at 11: *ctx += index; stop after index 6
        ldx(DW, 3, 2, 0),
        alu64_reg(ADD, 3, 1),
        stx(DW, 2, 3, 0),
        mov64_imm(0, 0),
        jmp_imm(JNE, 1, 6, 1),
        mov64_imm(0, 1),
        exit(),
    ];
    assert_eq!(run(p).unwrap(), 7 * 1000 + 21);
}

#[test]
fn bpf_loop_refuses_flags_and_too_many_loops() {
    let p = |n: i32, flags: i32| {
        prog![
            mov64_imm(1, n),
            ld_func(2, 5),
            mov64_imm(3, 0),
            mov64_imm(4, flags),
            call(helper::LOOP),
            exit(),
            mov64_imm(0, 0),
            exit()
        ]
    };
    assert_eq!(run(p(1, 1)).unwrap(), (-22i64) as u64);
    assert_eq!(run(p((1 << 23) + 1, 0)).unwrap(), (-7i64) as u64);
    assert_eq!(run(p(3, 0)).unwrap(), 3);
}

#[test]
fn a_tail_call_deep_in_frames_can_run_out_of_frames() {
    // The caller is 2 frames deep when it tail-calls a program whose own
    // chain is 8 frames: 9 in all.
    let table = Table(vec![load(chain(8))]);
    let main = prog![call_local(1), exit(), ld_map_fd(2, 0), mov64_imm(3, 0), call(helper::TAIL_CALL), exit()];
    assert!(matches!(run_tail(main, vec![Some(0)], &table), Err(Fault::CallDepth { .. })));
}

#[test]
fn a_bpf_loop_callback_that_is_no_function_faults() {
    let p = prog![mov64_imm(1, 1), mov64_imm(2, 3), mov64_imm(3, 0), mov64_imm(4, 0), call(helper::LOOP), exit()];
    assert!(matches!(run(p), Err(Fault::Helper { pc: 4, id: helper::LOOP, .. })));
}

/// `trace_printk("%d %d %d")` with r3-r5 as they are, from a format at r10-8.
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

#[test]
fn registers_after_a_call_read_as_zero() {
    // r3-r5 set, then a helper call: trace_printk (which reads r3-r5
    // without the safety pass checking them) sees zeros.
    let os = FakeOs::default();
    let mut p = prog![mov64_imm(3, 3), mov64_imm(4, 4), mov64_imm(5, 5), call(helper::KTIME_GET_NS)];
    p.extend(print_r3_to_r5());
    p.extend(prog![mov64_imm(0, 0), exit()]);
    support::run_with(p, &mut MapTable::new(), &os, &mut []).unwrap();
    assert_eq!(os.console_lines(), ["0 0 0"]);
}

#[test]
fn a_tail_called_program_starts_with_only_r1() {
    let os = FakeOs::default();
    let mut target = print_r3_to_r5();
    target.extend(prog![mov64_imm(0, 9), exit()]);
    let table = Table(vec![load(target)]);
    let mut maps = MapTable::new();
    maps.insert(Box::new(FakeProgArray::new(vec![None, Some(0)])));
    let main =
        prog![mov64_imm(4, 4), mov64_imm(5, 5), ld_map_fd(2, 0), mov64_imm(3, 1), call(helper::TAIL_CALL), exit()];
    let prog = Program::load("main", 0, main, &maps).unwrap();
    let mut env = Env::new(&os, &mut maps, &mut []);
    env.progs = Some(&table);
    assert_eq!(prog.run(&mut env), Ok(9));
    assert_eq!(os.console_lines(), ["0 0 0"]);
}
