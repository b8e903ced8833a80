//! Programs run by the interpreter at hook points of a runtime on a fake
//! OS: a kprobe reading its registers, per-CPU counters on the CPU the OS
//! says, ringbuf records the OS consumes, tail calls through a prog array,
//! and a faulting program that does not stop the others.

mod common;
mod support;

use common::{FakeOs, CPUS};
use proctap_vm::consts::{atomic, helper, map_type, prog_type};
use proctap_vm::map::MapDef;
use proctap_vm::retcode::Fault;
use proctap_vm::runtime::Runtime;
use proctap_vm::tracepoints::PtRegs;
use support::asm::*;

fn rt() -> Runtime<FakeOs> {
    Runtime::new(FakeOs::new())
}

fn def(map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> MapDef {
    MapDef { map_type, key_size, value_size, max_entries, flags: 0, name: "m".into() }
}

#[test]
fn a_kprobe_reads_its_argument_registers() {
    let mut rt = rt();
    rt.register_kprobe("do_sys_openat2").unwrap();
    let m = rt.create_map(&def(map_type::ARRAY, 4, 8, 1)).unwrap();
    // value = regs->si (the second argument); map[0] = value.
    let insns = prog![
        ldx(DW, 2, 1, 13 * 8),
        stx(DW, 10, 2, -8),
        st(W, 10, -12, 0),
        ld_map_fd(1, m),
        mov64_reg(2, 10),
        alu64_imm(ADD, 2, -12),
        mov64_reg(3, 10),
        alu64_imm(ADD, 3, -8),
        mov64_imm(4, 0),
        call(helper::MAP_UPDATE_ELEM),
        exit(),
    ];
    let p = rt.prog_load("capture", prog_type::KPROBE, insns).unwrap();
    rt.attach_kprobe(p, &["do_sys_openat2"], false).unwrap();
    let mut regs = PtRegs::with_args(&[0xaaaa, 0x5151]).to_bytes();
    let runs = rt.run("kprobe/do_sys_openat2", &mut regs).unwrap();
    assert_eq!(runs[0].result, Ok(0), "bpf_map_update_elem returned 0");
    assert_eq!(rt.map_lookup_vec(m, &0u32.to_le_bytes()).unwrap(), 0x5151u64.to_le_bytes());
}

#[test]
fn per_cpu_counters_count_on_the_running_cpu() {
    let mut rt = rt();
    rt.register_tracepoint("sched_switch").unwrap();
    let m = rt.create_map(&def(map_type::PERCPU_ARRAY, 4, 8, 1)).unwrap();
    let insns = prog![
        st(W, 10, -4, 0),
        ld_map_fd(1, m),
        mov64_reg(2, 10),
        alu64_imm(ADD, 2, -4),
        call(helper::MAP_LOOKUP_ELEM),
        jmp_imm(JEQ, 0, 0, 2),
        mov64_imm(1, 1),
        atomic_op(DW, 0, 1, 0, atomic::ADD),
        mov64_imm(0, 0),
        exit(),
    ];
    let p = rt.prog_load("count", prog_type::RAW_TRACEPOINT, insns).unwrap();
    rt.attach_tracepoint(p, "sched_switch").unwrap();
    for cpu in [1, 1, 3] {
        rt.os().set_cpu(cpu);
        rt.run("sched_switch", &mut [0u8; 8]).unwrap();
    }
    let all = rt.map_lookup_vec(m, &0u32.to_le_bytes()).unwrap();
    let per_cpu: Vec<u64> = all.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(per_cpu, vec![0, 2, 0, 1]);
    assert_eq!(per_cpu.len(), CPUS as usize);
}

#[test]
fn ringbuf_records_reach_the_os_consumer_in_order() {
    let mut rt = rt();
    rt.register_tracepoint("tp").unwrap();
    let rb = rt.create_map(&MapDef { map_type: map_type::RINGBUF, max_entries: 4096, ..MapDef::default() }).unwrap();
    // Emits the first 8 bytes of its context.
    let insns = prog![
        ldx(DW, 2, 1, 0),
        stx(DW, 10, 2, -8),
        ld_map_fd(1, rb),
        mov64_reg(2, 10),
        alu64_imm(ADD, 2, -8),
        mov64_imm(3, 8),
        mov64_imm(4, 0),
        call(helper::RINGBUF_OUTPUT),
        exit(),
    ];
    let p = rt.prog_load("emit", prog_type::RAW_TRACEPOINT, insns).unwrap();
    rt.attach_tracepoint(p, "tp").unwrap();
    for word in [b"record-1", b"record-2"] {
        let mut ctx = *word;
        assert_eq!(rt.run("tp", &mut ctx).unwrap()[0].result, Ok(0));
    }
    let mut got = Vec::new();
    assert_eq!(rt.ringbuf(rb).unwrap().consume(|s| got.push(s.to_vec())), 2);
    assert_eq!(got, vec![b"record-1".to_vec(), b"record-2".to_vec()]);
}

#[test]
fn tail_calls_reach_programs_held_by_a_prog_array() {
    let mut rt = rt();
    rt.register_tracepoint("tp").unwrap();
    let pa = rt.create_map(&def(map_type::PROG_ARRAY, 4, 4, 2)).unwrap();
    let target = rt.prog_load("target", prog_type::RAW_TRACEPOINT, prog![mov64_imm(0, 42), exit()]).unwrap();
    let caller = prog![ld_map_fd(2, pa), mov64_imm(3, 0), call(helper::TAIL_CALL), mov64_imm(0, 1), exit()];
    let caller = rt.prog_load("caller", prog_type::RAW_TRACEPOINT, caller).unwrap();
    rt.attach_tracepoint(caller, "tp").unwrap();
    assert_eq!(rt.run("tp", &mut [0u8; 8]).unwrap()[0].result, Ok(1), "an empty slot falls through");
    rt.map_update(pa, &0u32.to_le_bytes(), &target.to_le_bytes(), 0).unwrap();
    rt.close(target).unwrap();
    assert_eq!(rt.run("tp", &mut [0u8; 8]).unwrap()[0].result, Ok(42), "the array keeps the target alive");
    rt.map_delete(pa, &0u32.to_le_bytes()).unwrap();
    assert_eq!(rt.run("tp", &mut [0u8; 8]).unwrap()[0].result, Ok(1));
}

#[test]
fn a_faulting_program_does_not_stop_the_others() {
    let mut rt = rt();
    rt.register_tracepoint("tp").unwrap();
    let bad = rt.prog_load("bad", prog_type::RAW_TRACEPOINT, prog![ldx(DW, 0, 1, 64), exit()]).unwrap();
    let good = rt.prog_load("good", prog_type::RAW_TRACEPOINT, prog![mov64_imm(0, 5), exit()]).unwrap();
    rt.attach_tracepoint(bad, "tp").unwrap();
    rt.attach_tracepoint(good, "tp").unwrap();
    let runs = rt.run("tp", &mut [0u8; 8]).unwrap();
    assert!(matches!(runs[0].result, Err(Fault::Memory { pc: 0, write: false, .. })), "{:?}", runs[0]);
    assert_eq!(runs[1].result, Ok(5));
}

#[test]
fn the_budget_bounds_every_run() {
    let mut rt = rt();
    rt.register_tracepoint("tp").unwrap();
    // A loop the safety pass admits; the budget stops it.
    let spin = prog![mov64_imm(0, 0), alu64_imm(ADD, 0, 1), jmp_imm(JNE, 0, 0, -2), exit()];
    let p = rt.prog_load("spin", prog_type::RAW_TRACEPOINT, spin).unwrap();
    rt.attach_tracepoint(p, "tp").unwrap();
    rt.set_budget(1000);
    let runs = rt.run("tp", &mut []).unwrap();
    assert!(matches!(runs[0].result, Err(Fault::Budget { budget: 1000, .. })), "{:?}", runs[0]);
}

/// The hook programs above, loaded into `rt`: (tracepoint "tp" programs in
/// attach order, the array they write).
fn jit_workload(rt: &mut Runtime<FakeOs>) -> (Vec<u32>, u32) {
    rt.register_tracepoint("tp").unwrap();
    let m = rt.create_map(&def(map_type::HASH, 4, 8, 4)).unwrap();
    let pa = rt.create_map(&def(map_type::PROG_ARRAY, 4, 4, 1)).unwrap();
    // map[ctx[0] & 3] += ctx[1..8] as a u64; r0 = the new value.
    let count = prog![
        mov64_reg(6, 1),
        ldx(W, 1, 6, 0),
        alu64_imm(AND, 1, 3),
        stx(W, 10, 1, -4),
        ld_map_fd(1, m),
        mov64_reg(2, 10),
        alu64_imm(ADD, 2, -4),
        call(helper::MAP_LOOKUP_ELEM),
        jmp_imm(JNE, 0, 0, 9),
        st(DW, 10, -16, 0),
        ld_map_fd(1, m),
        mov64_reg(2, 10),
        alu64_imm(ADD, 2, -4),
        mov64_reg(3, 10),
        alu64_imm(ADD, 3, -16),
        mov64_imm(4, 0),
        call(helper::MAP_UPDATE_ELEM),
        mov64_imm(0, 0),
        exit(),
        ldx(DW, 1, 6, 0),
        atomic_op(DW, 0, 1, 0, atomic::ADD | atomic::FETCH),
        mov64_reg(0, 1),
        exit(),
    ];
    let target = rt.prog_load("target", prog_type::RAW_TRACEPOINT, prog![ldx(B, 0, 1, 7), exit()]).unwrap();
    rt.map_update(pa, &0u32.to_le_bytes(), &target.to_le_bytes(), 0).unwrap();
    let tail = prog![ld_map_fd(2, pa), mov64_imm(3, 0), call(helper::TAIL_CALL), mov64_imm(0, 1), exit()];
    let bad = prog![ldx(DW, 0, 1, 64), exit()];
    let mut progs = Vec::new();
    for (name, insns) in [("count", count), ("tail", tail), ("bad", bad)] {
        let p = rt.prog_load(name, prog_type::RAW_TRACEPOINT, insns).unwrap();
        rt.attach_tracepoint(p, "tp").unwrap();
        progs.push(p);
    }
    (progs, m)
}

#[test]
fn with_the_jit_on_hooks_run_jit_code_and_agree_with_the_interpreter() {
    let (mut interp, mut jit) = (rt(), rt());
    jit.set_jit(true);
    let (_, m_interp) = jit_workload(&mut interp);
    let (progs, m_jit) = jit_workload(&mut jit);
    for fd in &progs {
        let id = jit.prog_id(*fd).unwrap();
        assert_eq!(jit.jitted(id), cfg!(target_arch = "x86_64"), "program fd {fd}");
        assert!(!interp.jitted(interp.prog_id(*fd).unwrap()));
    }
    for i in 0u64..40 {
        let mut a = ((i * 0x0101_0101_0101_0101) ^ (i << 40)).to_le_bytes();
        let mut b = a;
        let (x, y) = (interp.run("tp", &mut a).unwrap(), jit.run("tp", &mut b).unwrap());
        let results = |r: &[proctap_vm::tracepoints::RunResult]| r.iter().map(|r| r.result.clone()).collect::<Vec<_>>();
        assert_eq!(results(&x), results(&y), "run {i}");
        assert!(matches!(results(&y)[2], Err(Fault::Memory { .. })));
    }
    for k in 0u32..4 {
        let key = k.to_le_bytes();
        assert_eq!(interp.map_lookup_vec(m_interp, &key).ok(), jit.map_lookup_vec(m_jit, &key).ok(), "key {k}");
    }
}
