//! The runtime's benchmark (issue 16, §10), every contender in one run:
//! proctap-vm's interpreter and JIT, the rbpf crate's interpreter and JIT,
//! and the kernel's own JIT, on the programs of tests/fixtures/bench.bpf.c
//! (loop-heavy, map-heavy, packet parsing, and `empty`: each engine's fixed
//! cost of a run); and the load of a 1,000-instruction object
//! (tests/fixtures/bench_load.bpf.c).
//!
//! Before anything is timed, every contender runs each program once on the
//! same context (maps fresh) and their r0 must agree: a mismatch aborts the
//! benchmark. It measures; it asserts no time (`./dev.sh bench vm` turns
//! the results into a table, with benches/vm_table.py).
//!
//! - **rbpf** gets the program's instructions after our ELF linking, with
//!   the context as its memory. It has no maps: it is no contender for the
//!   map-heavy program.
//! - **The kernel** (root only; otherwise a line says it was skipped and
//!   why) loads the same object as BPF_PROG_TYPE_SYSCALL. Linux refuses
//!   BPF_PROG_TEST_RUN's `repeat` for that type (EINVAL), so unless the
//!   kernel accepts it, a run is timed by the kernel's own statistics
//!   (BPF_ENABLE_STATS: run_time_ns, the time around each run, which the
//!   syscall's cost never enters), minus the same of an empty program with
//!   the same context (`empty`): the statistics' clock reads taken out.
//!   Where statistics cannot be enabled, N syscalls of the program minus N
//!   of the empty one.
//! - **Our engines** run with an environment made once per sample (maps,
//!   context, stack buffer); each run zeroes its stack as the engines do.

#[path = "../tests/common/mod.rs"]
mod common;

use common::kbpf::{self, KMap, KProg};
use criterion::{criterion_group, criterion_main, Bencher, Criterion};
use proctap_vm::elf::{Loaded, Object};
use proctap_vm::jit::JitProgram;
use proctap_vm::osutil::{HostOs, Os};
use proctap_vm::program::{Env, Program};
use std::time::{Duration, Instant};

/// A program of bench.bpf.c, its context, whether rbpf can run it and
/// whether the kernel is a contender (not for `empty`, its baseline).
struct Case {
    program: &'static str,
    ctx: Vec<u8>,
    rbpf: bool,
    kernel: bool,
}

fn cases() -> Vec<Case> {
    let words: Vec<u8> = [0x0123_4567_89ab_cdefu64, 0xfedc_ba98_7654_3210, 0x0f1e_2d3c_4b5a_6978, 42]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    vec![
        Case { program: "loop_heavy", ctx: words.clone(), rbpf: true, kernel: true },
        Case { program: "map_heavy", ctx: words.clone(), rbpf: false, kernel: true },
        Case { program: "packet_parse", ctx: tcp_syn_ack(), rbpf: true, kernel: true },
        // The fixed cost of a run in each engine (the kernel's is what
        // its baseline takes out).
        Case { program: "empty", ctx: words, rbpf: true, kernel: false },
    ]
}

/// `struct pkt` of bench.bpf.c: a length, padding, and 128 bytes holding
/// an Ethernet/IPv4/TCP SYN-ACK with an MSS option and 8 bytes of payload.
fn tcp_syn_ack() -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend([0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]);
    let total: u16 = 20 + 24 + 8;
    frame.extend([0x45, 0]);
    frame.extend(total.to_be_bytes());
    frame.extend([0x12, 0x34, 0x40, 0x00, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    frame.extend(443u16.to_be_bytes());
    frame.extend(51234u16.to_be_bytes());
    frame.extend([0, 0, 0, 1, 0, 0, 0, 2, 0x60, 0x12, 0xff, 0xff, 0, 0, 0, 0]);
    frame.extend([2, 4, 0x05, 0xb4]);
    frame.extend(*b"payload!");
    let mut ctx = Vec::with_capacity(136);
    ctx.extend((frame.len() as u32).to_le_bytes());
    ctx.extend([0; 4]);
    ctx.extend(&frame);
    ctx.resize(136, 0);
    ctx
}

/// Says something about the run, on stdout, where the table script finds it.
fn note(text: &str) {
    println!("vm-bench: {text}");
}

/// One of our engines on its own fresh copy of the object's maps.
struct Ours {
    loaded: Loaded,
    prog: Program,
    jit: Option<JitProgram>,
}

impl Ours {
    fn new(obj: &Object, name: &str, os: &HostOs, jit: bool) -> Ours {
        let loaded = Loaded::new(obj, os.cpu_count()).unwrap_or_else(|e| panic!("load into the runtime: {e}"));
        let prog = loaded.program(name).unwrap_or_else(|| panic!("no program {name}")).clone();
        let jit = jit.then(|| JitProgram::compile(&prog, os).unwrap_or_else(|e| panic!("jit {name}: {e}")));
        Ours { loaded, prog, jit }
    }

    /// Runs `runs` times with one environment; the last r0.
    fn run(&mut self, os: &HostOs, ctx: &mut [u8], runs: u64, mut each: impl FnMut(u64)) {
        let mut env = Env::new(os, &mut self.loaded.maps, ctx);
        env.ctx_writable = true;
        for _ in 0..runs {
            let r0 = match &self.jit {
                Some(jit) => jit.run(&mut env),
                None => self.prog.run(&mut env),
            };
            each(r0.unwrap_or_else(|e| panic!("{}: {e}", self.prog.name)));
        }
    }

    fn first_r0(&mut self, os: &HostOs, ctx: &[u8]) -> u64 {
        let mut r0 = 0;
        self.run(os, &mut ctx.to_vec(), 1, |r| r0 = r);
        r0
    }

    fn bench(&mut self, b: &mut Bencher, os: &HostOs, ctx: &[u8]) {
        let mut ctx = ctx.to_vec();
        let mut env = Env::new(os, &mut self.loaded.maps, &mut ctx);
        env.ctx_writable = true;
        match &self.jit {
            Some(jit) => b.iter(|| jit.run(&mut env).expect("jit run")),
            None => b.iter(|| self.prog.run(&mut env).expect("interpreter run")),
        }
    }
}

/// How the kernel's runs are timed.
enum KernelClock {
    /// BPF_PROG_TEST_RUN's `repeat` and the kernel's mean duration.
    Repeat,
    /// The kernel's own per-program statistics (BPF_ENABLE_STATS, open
    /// while this fd is): the program's run time minus the empty
    /// program's, per run, which takes out the statistics' clock reads.
    Stats { _enabled: kbpf::Fd },
    /// Wall time of the syscalls minus as many of the empty program's.
    Syscalls,
}

/// The kernel's JIT: the program and the empty baseline loaded from the
/// same object, with the object's maps.
struct Kernel {
    _maps: Vec<KMap>,
    prog: KProg,
    empty: KProg,
    clock: KernelClock,
}

impl Kernel {
    fn new(obj: &Object, name: &str, ctx: &[u8]) -> Kernel {
        let maps = kbpf::create_maps(obj).expect("create the kernel's maps");
        let btf = obj.btf.as_ref().map(|b| kbpf::load_btf(b).unwrap_or_else(|e| panic!("kernel BTF: {e}")));
        let load = |name: &str| {
            let p = obj.program(name).unwrap_or_else(|| panic!("no program {name}"));
            KProg::load(p, &maps, btf.as_ref()).unwrap_or_else(|e| panic!("kernel: {e}"))
        };
        let (prog, empty) = (load(name), load("empty"));
        let clock = if empty.run_repeat(&mut ctx.to_vec(), 1).is_ok() {
            KernelClock::Repeat
        } else {
            match kbpf::enable_stats() {
                Ok(fd) if stats_count(&empty, &mut ctx.to_vec()) => KernelClock::Stats { _enabled: fd },
                _ => KernelClock::Syscalls,
            }
        };
        Kernel { _maps: maps, prog, empty, clock }
    }

    fn r0(&self, ctx: &[u8]) -> u32 {
        self.prog.run(&mut ctx.to_vec()).expect("BPF_PROG_TEST_RUN")
    }

    /// The time of `iters` runs (see [`KernelClock`]).
    fn time(&self, iters: u64, ctx: &mut [u8]) -> Duration {
        match self.clock {
            KernelClock::Repeat => {
                let (mut ns, mut left) = (0u64, iters);
                while left > 0 {
                    let n = left.min(u32::MAX as u64) as u32;
                    let (_, each) = self.prog.run_repeat(ctx, n).expect("BPF_PROG_TEST_RUN with repeat");
                    ns += each as u64 * n as u64;
                    left -= n as u64;
                }
                Duration::from_nanos(ns)
            }
            KernelClock::Stats { .. } => {
                let full = stats_of_runs(&self.prog, iters, ctx);
                let base = stats_of_runs(&self.empty, iters, ctx);
                Duration::from_nanos(full.saturating_sub(base).max(1))
            }
            KernelClock::Syscalls => {
                let full = wall_of_runs(&self.prog, iters, ctx);
                let base = wall_of_runs(&self.empty, iters, ctx);
                full.saturating_sub(base).max(Duration::from_nanos(1))
            }
        }
    }
}

/// Whether the kernel counts runs of `prog` (statistics are enabled).
fn stats_count(prog: &KProg, ctx: &mut [u8]) -> bool {
    let before = prog.stats().map(|s| s.1);
    let _ = prog.run(ctx);
    matches!((before, prog.stats().map(|s| s.1)), (Ok(b), Ok(a)) if a > b)
}

/// The kernel's own run time, in ns, of `iters` runs of `prog`.
fn stats_of_runs(prog: &KProg, iters: u64, ctx: &mut [u8]) -> u64 {
    let (t0, n0) = prog.stats().expect("the program's statistics");
    for _ in 0..iters {
        prog.run(ctx).expect("BPF_PROG_TEST_RUN");
    }
    let (t1, n1) = prog.stats().expect("the program's statistics");
    assert_eq!(n1 - n0, iters, "the kernel counted other runs of the program");
    t1 - t0
}

/// The wall time of `iters` BPF_PROG_TEST_RUN calls of `prog`.
fn wall_of_runs(prog: &KProg, iters: u64, ctx: &mut [u8]) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        prog.run(ctx).expect("BPF_PROG_TEST_RUN");
    }
    start.elapsed()
}

/// rbpf's interpreter and JIT on the program's linked instructions.
struct Rbpf {
    interp: rbpf::EbpfVmRaw<'static>,
    jit: rbpf::EbpfVmRaw<'static>,
}

impl Rbpf {
    fn new(obj: &Object, name: &str) -> Rbpf {
        let p = obj.program(name).unwrap_or_else(|| panic!("no program {name}"));
        let insns = p.insns_with_maps(&[]).unwrap_or_else(|e| panic!("{name} uses maps, rbpf has none: {e}"));
        let bytes: &'static [u8] = Vec::leak(insns.iter().flat_map(|i| i.encode()).collect());
        let interp = rbpf::EbpfVmRaw::new(Some(bytes)).unwrap_or_else(|e| panic!("rbpf refuses {name}: {e}"));
        let mut jit = rbpf::EbpfVmRaw::new(Some(bytes)).expect("rbpf");
        jit.jit_compile().unwrap_or_else(|e| panic!("rbpf's JIT refuses {name}: {e}"));
        Rbpf { interp, jit }
    }

    fn run_interp(&self, ctx: &mut [u8]) -> u64 {
        self.interp.execute_program(ctx).expect("rbpf interpreter run")
    }

    fn run_jit(&self, ctx: &mut [u8]) -> u64 {
        // SAFETY: rbpf's JIT code checks no memory access. Before any
        // timing, this program ran on this same context in rbpf's
        // interpreter, which checks every access, and returned the r0
        // every other contender returned; the context is never written,
        // so each run repeats exactly those accesses: inside the context
        // and rbpf's stack.
        unsafe { self.jit.execute_program_jit(ctx) }.expect("rbpf JIT run")
    }
}

/// Runs every contender once on fresh state; aborts unless all r0 agree
/// (the kernel reports r0's low 32 bits).
fn check_agreement(case: &Case, results: &[(&str, u64)], kernel: Option<u32>) {
    let (first, r0) = results[0];
    for (who, r) in results {
        assert_eq!(*r, r0, "{}: {who} returned {r:#x}, {first} returned {r0:#x}: not benchmarked", case.program);
    }
    if let Some(k) = kernel {
        assert_eq!(k, r0 as u32, "{}: the kernel returned {k:#x}, {first} {r0:#x}: not benchmarked", case.program);
    }
    note(&format!("{}: every contender returned r0 = {r0:#x}", case.program));
}

fn bench_case(c: &mut Criterion, obj: &Object, case: &Case, os: &HostOs, kernel_ok: bool) {
    let name = case.program;
    let mut interp = Ours::new(obj, name, os, false);
    let mut jit = Ours::new(obj, name, os, true);
    let rbpf = case.rbpf.then(|| Rbpf::new(obj, name));
    let kernel = (kernel_ok && case.kernel).then(|| Kernel::new(obj, name, &case.ctx));
    let mut results = vec![("ours_interp", interp.first_r0(os, &case.ctx)), ("ours_jit", jit.first_r0(os, &case.ctx))];
    if let Some(r) = &rbpf {
        results.push(("rbpf_interp", r.run_interp(&mut case.ctx.clone())));
        results.push(("rbpf_jit", r.run_jit(&mut case.ctx.clone())));
    }
    check_agreement(case, &results, kernel.as_ref().map(|k| k.r0(&case.ctx)));
    if !case.rbpf {
        note(&format!("{name}: rbpf is no contender (it has no maps)"));
    }

    let mut group = c.benchmark_group(name);
    group.bench_function("ours_interp", |b| interp.bench(b, os, &case.ctx));
    group.bench_function("ours_jit", |b| jit.bench(b, os, &case.ctx));
    if let Some(r) = &rbpf {
        let mut ctx = case.ctx.clone();
        group.bench_function("rbpf_interp", |b| b.iter(|| r.run_interp(&mut ctx)));
        group.bench_function("rbpf_jit", |b| b.iter(|| r.run_jit(&mut ctx)));
    }
    if let Some(k) = &kernel {
        let mut ctx = case.ctx.clone();
        group.bench_function("kernel_jit", |b| b.iter_custom(|iters| k.time(iters, &mut ctx)));
    }
    group.finish();
}

/// The kernel contender, if it can run here; says why not or how it is timed.
fn kernel_contender(obj: &Object) -> bool {
    if let Err(why) = kbpf::available() {
        note(&format!("kernel JIT skipped: {why}"));
        return false;
    }
    kbpf::pin_to_one_cpu();
    let probe = Kernel::new(obj, "empty", &[0; 8]);
    note(match probe.clock {
        KernelClock::Repeat => "kernel JIT: the kernel's own duration (BPF_PROG_TEST_RUN with repeat)",
        KernelClock::Stats { .. } => {
            "kernel JIT: the kernel refuses BPF_PROG_TEST_RUN repeat for BPF_PROG_TYPE_SYSCALL (EINVAL); \
             timed by the kernel's own run statistics (BPF_ENABLE_STATS run_time_ns), minus an empty program's"
        }
        KernelClock::Syscalls => {
            "kernel JIT: no repeat and no run statistics here; \
             timed as N BPF_PROG_TEST_RUN calls minus N calls of an empty program (the syscall's own cost)"
        }
    });
    true
}

fn bench_programs(c: &mut Criterion) {
    let Some(bytes) = common::fixture_bytes("bench") else {
        note("skipped: no clang to build tests/fixtures/bench.bpf.c");
        return;
    };
    let obj = Object::parse(&bytes).expect("parse bench.bpf.o");
    let os = HostOs::with_seed(7);
    let kernel_ok = kernel_contender(&obj);
    for case in cases() {
        bench_case(c, &obj, &case, &os, kernel_ok);
    }
}

/// Parse, map creation and the safety pass of a 1,000-instruction object.
fn bench_load(c: &mut Criterion) {
    let Some(bytes) = common::fixture_bytes("bench_load") else {
        note("skipped: no clang to build tests/fixtures/bench_load.bpf.c");
        return;
    };
    let obj = Object::parse(&bytes).expect("parse bench_load.bpf.o");
    let insns: usize = obj.programs.iter().map(|p| p.insns.len()).sum();
    assert!(insns >= 1000, "bench_load.bpf.c has {insns} instructions, fewer than 1,000");
    note(&format!("load: bench_load.bpf.o, {} bytes, {insns} instructions in its programs", bytes.len()));
    let cpus = HostOs::with_seed(7).cpu_count();
    let mut group = c.benchmark_group("load");
    group.bench_function("bench_load", |b| {
        b.iter(|| {
            let obj = Object::parse(&bytes).expect("parse");
            Loaded::new(&obj, cpus).expect("load")
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_programs, bench_load
}
criterion_main!(benches);
