//! The JIT as a safety boundary on its own: programs that never went
//! through the safety pass (random opcodes, registers, offsets, wild
//! jumps and calls) are refused at compile time or run to an exit or a
//! fault, and never touch host memory outside their regions (a stray
//! access would crash this test process).

mod jit_support;
#[allow(unused_macros)]
mod support;

use jit_support::compile_raw;
use proctap_vm::map::MapTable;
use proctap_vm::osutil::HostOs;
use proctap_vm::program::{Env, Insn, Program};
use proptest::prelude::*;

/// Opcodes of every class, valid and not.
fn opcode() -> impl Strategy<Value = u8> {
    prop_oneof![
        60 => prop::sample::select(vec![
            0x07u8, 0x0f, 0x04, 0x0c, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x3c, 0x47, 0x57, 0x67, 0x6f, 0x77, 0x7f, 0x87,
            0x97, 0x9f, 0x9c, 0xa7, 0xb7, 0xbf, 0xbc, 0xc7, 0xcf, 0xd4, 0xdc, 0xd7, 0x05, 0x06, 0x15, 0x1d, 0x16, 0x25,
            0x2d, 0x45, 0x4d, 0x55, 0x65, 0x6d, 0xa5, 0xd5, 0x85, 0x95, 0x18, 0x61, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91,
            0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b, 0xc3, 0xdb,
        ]),
        1 => any::<u8>(),
    ]
}

fn insn() -> impl Strategy<Value = Insn> {
    let imm = prop_oneof![
        any::<i32>(),
        -8i32..8,
        prop::sample::select(vec![0x00, 0x01, 0x40, 0x41, 0xe1, 0xf1, 5, 7, 12, 181])
    ];
    let reg = prop_oneof![30 => 0u8..10, 1 => 10u8..16];
    (
        opcode(),
        reg.clone(),
        prop_oneof![10 => 0u8..11, 1 => 11u8..16],
        prop_oneof![any::<i16>(), -8i16..8, -520i16..0],
        imm,
    )
        .prop_map(|(op, dst, src, off, imm)| Insn { op, dst, src, off, imm })
}

/// Points most jumps and calls inside the program (wild ones are only refused).
fn aim_jumps(mut insns: Vec<Insn>) -> Vec<Insn> {
    let n = insns.len() as i64;
    for (pc, i) in insns.iter_mut().enumerate() {
        let class = i.op & 7;
        if class != 5 && class != 6 || i.op & 0xf0 == 0x90 || (i.op & 0xf0 == 0x80 && i.src != 1) {
            continue;
        }
        let uses_imm = i.op & 0xf0 == 0x80 || (class == 6 && i.op & 0xf0 == 0);
        let delta = if uses_imm { i.imm as i64 } else { i.off as i64 };
        let target = (pc as i64 + 1 + delta).rem_euclid(n);
        let delta = target - pc as i64 - 1;
        if uses_imm {
            i.imm = delta as i32;
        } else {
            i.off = delta as i16;
        }
    }
    insns
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn unverified_programs_are_refused_or_end(insns in prop::collection::vec(insn(), 1..24),
            ctx in prop::collection::vec(any::<u8>(), 0..32)) {
        let prog = Program { name: "raw".into(), prog_type: 0, insns: aim_jumps(insns) };
        let Some(jit) = compile_raw(&prog) else { return Ok(()) };
        let os = HostOs::with_seed(7);
        let mut maps = MapTable::new();
        let mut ctx = ctx;
        let mut env = Env::new(&os, &mut maps, &mut ctx);
        env.budget = 10_000;
        let _ = jit.run(&mut env);
    }
}
