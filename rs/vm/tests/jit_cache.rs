//! The JIT keeps its region table in the `Env` between runs; whatever
//! changes under it (the maps' table, a map replaced, the context) must be
//! seen by the next run, never the memory it described before.

mod jit_support;
mod support;

use jit_support::compile;
use proctap_vm::consts::map_type;
use proctap_vm::map::{self, MapDef, MapTable};
use proctap_vm::program::{Env, Program};
use proctap_vm::retcode::Fault;
use support::asm::*;
use support::fake_os::FakeOs;

fn array_holding(value: u64) -> Box<dyn map::Map> {
    let def =
        MapDef { map_type: map_type::ARRAY, key_size: 4, value_size: 8, max_entries: 1, flags: 0, name: "v".into() };
    let mut m = map::create(&def, 1).unwrap();
    m.update(&0u32.to_le_bytes(), &value.to_le_bytes(), 0, 0).unwrap();
    m
}

fn table_holding(value: u64) -> MapTable {
    let mut t = MapTable::new();
    t.insert(array_holding(value));
    t
}

/// r0 = map 0's value + ctx[0].
fn program() -> Program {
    let insns = prog![ld_map_value(2, 0, 0), ldx(DW, 0, 2, 0), ldx(B, 3, 1, 0), alu64_reg(ADD, 0, 3), exit()];
    Program::load("cache", 0, insns, &table_holding(0)).unwrap()
}

#[test]
fn a_new_map_table_at_the_same_place_is_seen() {
    let jit = compile(&program());
    let os = FakeOs::default();
    let mut maps = table_holding(10);
    let mut ctx = [1u8; 8];
    let mut env = Env::new(&os, &mut maps, &mut ctx);
    assert_eq!(jit.run(&mut env), Ok(11));
    assert_eq!(jit.run(&mut env), Ok(11), "the cached table");
    // The old arena is freed; a table built for it must not be used.
    *env.maps = table_holding(20);
    assert_eq!(jit.run(&mut env), Ok(21));
    env.maps.remove(0);
    env.maps.insert(array_holding(30));
    assert!(matches!(jit.run(&mut env), Err(Fault::Memory { .. })), "map 0 is gone; id 1 is another map");
}

#[test]
fn a_new_context_is_seen() {
    let jit = compile(&program());
    let os = FakeOs::default();
    let mut maps = table_holding(10);
    let (mut a, mut b) = ([1u8; 8], [5u8; 1]);
    let mut env = Env::new(&os, &mut maps, &mut a);
    assert_eq!(jit.run(&mut env), Ok(11));
    env.ctx = &mut b;
    assert_eq!(jit.run(&mut env), Ok(15));
    env.ctx = &mut [];
    assert!(matches!(jit.run(&mut env), Err(Fault::Memory { write: false, .. })), "an empty context");
}
