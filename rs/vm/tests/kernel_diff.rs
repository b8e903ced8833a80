//! Differential tests against the real kernel: each fixture program is
//! loaded into Linux as BPF_PROG_TYPE_SYSCALL and into the runtime (the
//! interpreter, and the JIT on x86-64), run on the same random contexts,
//! and r0, the context, every keyed map's entries and every ringbuf's
//! samples (consumed from both sides) are compared after every run.
//!
//! Needs root and BPF. Under CI=true it runs and fails loudly when the
//! kernel refuses; elsewhere, without root, it is skipped with a reason.

mod common;

use common::kbpf::{self, KProg};
use proctap_vm::consts::map_type;
use proctap_vm::elf::{entries, Engine, Loaded, Object};
use proctap_vm::osutil::HostOs;

/// Whether the kernel side can run here.
fn kernel_ready() -> bool {
    match kbpf::available() {
        Ok(()) => true,
        Err(why) => {
            assert!(!common::ci(), "CI=true: the kernel differential tests cannot run: {why}");
            eprintln!("SKIPPED: the kernel differential tests cannot run: {why}");
            false
        }
    }
}

/// The running kernel's (major, minor) version.
fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("read the kernel release");
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok());
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Whether the kernel runs cpu v4 instructions (Linux 6.6 on); says so
/// when it does not.
fn kernel_has_cpu_v4() -> bool {
    let v = kernel_version();
    if v < (6, 6) {
        eprintln!("SKIPPED: Linux {}.{} predates cpu v4 instructions (6.6)", v.0, v.1);
    }
    v >= (6, 6)
}

/// A deterministic generator of context bytes (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// `n` random bytes, where one 8-byte word in eight is an edge value
    /// instead (0, -1, the most negative, 1, a sign bit of a narrower type),
    /// so that signed division's overflow, sign extension and the like
    /// come up.
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        const EDGES: [u64; 9] =
            [0, u64::MAX, 1 << 63, 1, 0x80, 0x8000, 0x8000_0000, 0xffff_ffff, 0xffff_ffff_8000_0000];
        let mut out: Vec<u8> = (0..n).map(|_| self.next() as u8).collect();
        for word in out.chunks_mut(8) {
            let r = self.next();
            if r.is_multiple_of(8) {
                let edge = EDGES[(r >> 8) as usize % EDGES.len()].to_le_bytes();
                word.copy_from_slice(&edge[..word.len()]);
            }
        }
        out
    }
}

/// The fixtures' syscall programs and their context sizes.
const PROGRAMS: &[(&str, &str, usize)] = &[
    ("maps", "update_maps", 16),
    ("maps", "send_event", 16),
    ("globals", "globals", 16),
    ("globals", "read_globals", 16),
    ("calls", "nested_calls", 24),
    ("calls", "bounded_loop", 24),
    ("calls", "with_bpf_loop", 24),
    ("packet", "parse_packet", 64),
];

/// Runs per program.
const RUNS: usize = 256;

#[test]
fn the_kernel_accepts_and_runs_every_fixture_program() {
    let mut loaded = Vec::new();
    for (fixture, name, ctx_len) in PROGRAMS {
        let Some(bytes) = common::fixture_bytes(fixture) else { return };
        if loaded.is_empty() && !kernel_ready() {
            return;
        }
        let obj = Object::parse(&bytes).expect("parse");
        let maps = kbpf::create_maps(&obj).expect("create the maps");
        let prog = obj.program(name).unwrap_or_else(|| panic!("{fixture}: no program {name}"));
        let btf = obj.btf.as_ref().map(|b| kbpf::load_btf(b).unwrap_or_else(|e| panic!("{fixture}: {e}")));
        let kprog = KProg::load(prog, &maps, btf.as_ref()).unwrap_or_else(|e| panic!("{fixture}: {e}"));
        let mut rng = Rng(0x5eed ^ *ctx_len as u64);
        for _ in 0..8 {
            let mut ctx = rng.bytes(*ctx_len);
            kprog.run(&mut ctx).unwrap_or_else(|e| panic!("{name}: BPF_PROG_TEST_RUN: {e}"));
        }
        for m in &maps {
            if m.def.map_type != 27 {
                m.entries().unwrap_or_else(|e| panic!("{name}: iterate {}: {e}", m.def.name));
            }
        }
        loaded.push(name);
    }
    assert_eq!(loaded.len(), PROGRAMS.len());
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn sorted(mut e: Entries) -> Entries {
    e.sort();
    e
}

/// One fixture program, in the kernel and in each engine of the runtime:
/// r0, the context, every keyed map and every ringbuf's samples compared
/// after every run. The number of ringbuf samples compared (0 when skipped).
fn differential(fixture: &str, name: &str, ctx_len: usize) -> usize {
    differential_with(fixture, name, ctx_len, &[])
}

/// [`differential`] with some contexts run first.
fn differential_with(fixture: &str, name: &str, ctx_len: usize, first: &[Vec<u8>]) -> usize {
    let Some(bytes) = common::fixture_bytes(fixture) else { return 0 };
    if !kernel_ready() {
        return 0;
    }
    let mut samples = 0;
    let cpu = kbpf::pin_to_one_cpu();
    let obj = Object::parse(&bytes).expect("parse");
    let kmaps = kbpf::create_maps(&obj).expect("create the kernel's maps");
    let btf = obj.btf.as_ref().map(|b| kbpf::load_btf(b).unwrap_or_else(|e| panic!("{fixture}: {e}")));
    let prog = obj.program(name).unwrap_or_else(|| panic!("{fixture}: no program {name}"));
    let kprog = KProg::load(prog, &kmaps, btf.as_ref()).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    let cpus = kbpf::possible_cpus() as u32;
    // Each engine gets its own copy of the object's maps.
    let mut engines = vec![(Engine::Interpreter, Loaded::new(&obj, cpus).expect("load into the runtime"))];
    if cfg!(target_arch = "x86_64") {
        engines.push((Engine::Jit, Loaded::new(&obj, cpus).expect("load into the runtime")));
    }
    let os = HostOs::with_seed(42);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (ctx_len as u64) << 32 ^ name.len() as u64);
    for run in 0..RUNS {
        let ctx = first.get(run).cloned().unwrap_or_else(|| rng.bytes(ctx_len));
        let mut kctx = ctx.clone();
        let kr0 = kprog.run(&mut kctx).unwrap_or_else(|e| panic!("{name}: BPF_PROG_TEST_RUN: {e}"));
        let ksamples: Vec<Vec<Vec<u8>>> = obj
            .maps
            .iter()
            .zip(&kmaps)
            .filter(|(m, _)| m.def.map_type == map_type::RINGBUF)
            .map(|(_, km)| km.drain_ringbuf().expect("read the kernel's ringbuf"))
            .collect();
        samples += ksamples.iter().map(Vec::len).sum::<usize>();
        for (engine, loaded) in &mut engines {
            let what = format!("{name} ({engine:?}), run {run}, ctx {}", hex(&ctx));
            let mut vctx = ctx.clone();
            let r0 = loaded.run_on(*engine, name, &os, &mut vctx, cpu).unwrap_or_else(|e| panic!("{what}: {e}"));
            // BPF_PROG_TEST_RUN reports r0's low 32 bits.
            assert_eq!(r0 as u32, kr0, "{what}: r0");
            assert_eq!(hex(&vctx), hex(&kctx), "{what}: the context after the run");
            for (m, km) in obj.maps.iter().zip(&kmaps) {
                if m.def.map_type == map_type::RINGBUF {
                    // Drained once per run, so the kernel's samples are kept
                    // for every engine's comparison.
                    continue;
                }
                let kernel = sorted(km.entries().expect("iterate the kernel's map"));
                let ours = sorted(entries(loaded.map(&m.name).expect("the runtime's map")));
                assert_eq!(ours, kernel, "{what}: map {}", m.name);
            }
            let rings = obj.maps.iter().filter(|m| m.def.map_type == map_type::RINGBUF);
            for (m, kernel) in rings.zip(&ksamples) {
                let id = loaded.map_id(&m.name).expect("the runtime's ringbuf");
                let ring = loaded.maps.get_mut(id).and_then(|r| r.as_ringbuf_mut()).expect("a ringbuf");
                let mut ours = Vec::new();
                ring.consume(|sample| ours.push(sample.to_vec()));
                assert_eq!(&ours, kernel, "{what}: ringbuf {} samples", m.name);
            }
        }
    }
    samples
}

#[test]
fn keyed_maps_of_every_type_agree() {
    differential("maps", "update_maps", 16);
}

#[test]
fn ringbuf_samples_agree() {
    let samples = differential("maps", "send_event", 16);
    // Half the runs output, a quarter reserve and submit, a quarter discard.
    assert!(samples == 0 || samples > RUNS / 2, "only {samples} samples compared");
}

#[test]
fn global_data_agrees() {
    differential("globals", "globals", 16);
}

#[test]
fn a_second_program_reading_globals_agrees() {
    differential("globals", "read_globals", 16);
}

#[test]
fn nested_bpf_to_bpf_calls_agree() {
    differential("calls", "nested_calls", 24);
}

#[test]
fn a_bounded_loop_agrees() {
    differential("calls", "bounded_loop", 24);
}

#[test]
fn bpf_loop_with_a_callback_agrees() {
    differential("calls", "with_bpf_loop", 24);
}

#[test]
fn packet_parsing_agrees() {
    differential("packet", "parse_packet", 64);
}

/// An `isa` fixture context from its five fields.
fn isa_input(a: i64, b: i64, c: u64, d: u32, e: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(32);
    for w in [a.to_le_bytes(), b.to_le_bytes(), c.to_le_bytes()] {
        v.extend_from_slice(&w);
    }
    v.extend_from_slice(&d.to_le_bytes());
    v.extend_from_slice(&e.to_le_bytes());
    v
}

#[test]
fn cpu_v4_instructions_agree() {
    // Signed division's overflow (MIN / -1) and negative operands first.
    let first = [
        isa_input(i64::MIN, -1, 0x80, 0x8000_0000, u32::MAX),
        isa_input(-7, 2, 0xffff_8000, (-7i32) as u32, 2),
        isa_input(7, -2, u64::MAX, 7, (-2i32) as u32),
        isa_input(i64::MIN, 0, 0x7f, 0, 0),
    ];
    if kernel_has_cpu_v4() {
        differential_with("isa", "v4_alu", 32, &first);
    }
}

#[test]
fn atomics_agree() {
    if kernel_has_cpu_v4() {
        differential("isa", "atomics", 32);
    }
}
