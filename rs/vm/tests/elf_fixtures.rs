//! The loader on objects clang builds from tests/fixtures: maps, global
//! data, programs and their relocations as the parser reports them.

mod common;

use proctap_vm::consts::{map_flags, map_type, prog_type, pseudo};
use proctap_vm::elf::reloc::{CALL, LD_IMM64, PSEUDO_FUNC};
use proctap_vm::elf::{ObjProgram, Object};

fn parse(name: &str) -> Option<Object> {
    let bytes = common::fixture_bytes(name)?;
    Some(Object::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}")))
}

/// Every BPF-to-BPF call and callback reference lands inside the program,
/// and every map reference names a map of the object.
fn check_references(obj: &Object, p: &ObjProgram) -> (usize, usize) {
    let (mut calls, mut callbacks) = (0, 0);
    let mut i = 0;
    while i < p.insns.len() {
        let insn = p.insns[i];
        let target = i as i64 + 1 + i64::from(insn.imm);
        if insn.op == CALL && insn.src == pseudo::CALL {
            assert!((0..p.insns.len() as i64).contains(&target), "{}: call at {i} out of range", p.name);
            calls += 1;
        }
        if insn.op == LD_IMM64 {
            match insn.src {
                PSEUDO_FUNC => {
                    assert!((0..p.insns.len() as i64).contains(&target), "{}: callback at {i}", p.name);
                    callbacks += 1;
                }
                pseudo::MAP_FD => assert!((insn.imm as usize) < obj.maps.len()),
                pseudo::MAP_VALUE => {
                    let map = &obj.maps[insn.imm as usize];
                    assert!((p.insns[i + 1].imm as u32) < map.def.value_size, "{}: value offset", p.name);
                }
                0 => {}
                other => panic!("{}: ld_imm64 src {other}", p.name),
            }
            i += 1;
        }
        i += 1;
    }
    (calls, callbacks)
}

#[test]
fn every_map_type_decodes_from_btf() {
    let Some(obj) = parse("maps") else { return };
    let defs: Vec<_> = obj
        .maps
        .iter()
        .map(|m| (m.name.as_str(), m.def.map_type, m.def.key_size, m.def.value_size, m.def.max_entries))
        .collect();
    assert_eq!(
        defs,
        [
            ("arr", map_type::ARRAY, 4, 8, 8),
            ("hash", map_type::HASH, 4, 8, 64),
            ("pcpu_arr", map_type::PERCPU_ARRAY, 4, 4, 4),
            ("pcpu_hash", map_type::PERCPU_HASH, 4, 8, 64),
            ("lru", map_type::LRU_HASH, 8, 8, 1024),
            ("events", map_type::RINGBUF, 0, 0, 4096),
        ]
    );
    assert!(obj.maps.iter().all(|m| m.init.is_none() && !m.readonly));
    let names: Vec<_> = obj.programs.iter().map(|p| (p.name.as_str(), p.section.as_str(), p.prog_type)).collect();
    assert_eq!(names, [("update_maps", "syscall", prog_type::SYSCALL), ("send_event", "syscall", prog_type::SYSCALL)]);
    assert_eq!(obj.license, "GPL");
    for p in &obj.programs {
        check_references(&obj, p);
    }
}

#[test]
fn global_data_sections_become_array_maps() {
    let Some(obj) = parse("globals") else { return };
    let rodata = &obj.maps[obj.map_index(".rodata").expect(".rodata")];
    assert!(rodata.readonly);
    assert_eq!(rodata.def.flags & map_flags::RDONLY_PROG, map_flags::RDONLY_PROG);
    assert_eq!((rodata.def.map_type, rodata.def.key_size, rodata.def.max_entries), (map_type::ARRAY, 4, 1));
    let init = rodata.init.as_ref().expect("contents");
    assert_eq!(init.len() as u32, rodata.def.value_size);
    let has = |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(has(init, &3u64.to_le_bytes()), "scale = 3 in .rodata");
    assert!(has(init, &[2, 0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0]), "table in .rodata");
    let data = &obj.maps[obj.map_index(".data").expect(".data")];
    assert!(!data.readonly);
    assert_eq!(data.init.as_deref(), Some(&100u64.to_le_bytes()[..]));
    let bss = &obj.maps[obj.map_index(".bss").expect(".bss")];
    assert!(bss.init.as_ref().is_some_and(|b| b.len() >= 12 && b.iter().all(|&x| x == 0)));
    let extra = &obj.maps[obj.map_index(".data.extra").expect(".data.extra")];
    assert_eq!(extra.init.as_deref(), Some(&7u64.to_le_bytes()[..]));
    assert!(obj.maps.iter().any(|m| m.init.as_ref().is_some_and(|b| has(b, b"hello, vm\0"))), "the string");
    for p in &obj.programs {
        check_references(&obj, p);
        let values = p.insns.iter().filter(|i| i.op == LD_IMM64 && i.src == pseudo::MAP_VALUE).count();
        assert!(values >= 2, "{}: global accesses are map values", p.name);
    }
    assert_eq!(obj.programs.len(), 2);
}

#[test]
fn subprograms_are_appended_and_calls_point_at_them() {
    let Some(obj) = parse("calls") else { return };
    let names: Vec<_> = obj.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["nested_calls", "bounded_loop", "with_bpf_loop", "on_switch"]);
    assert_eq!(obj.program("on_switch").map(|p| p.prog_type), Some(prog_type::TRACEPOINT));
    let nested = obj.program("nested_calls").expect("nested_calls");
    let (calls, _) = check_references(&obj, nested);
    assert!(calls >= 5, "three_levels, twice, mix (x2+), store: {calls}");
    let looped = obj.program("with_bpf_loop").expect("with_bpf_loop");
    let (_, callbacks) = check_references(&obj, looped);
    assert_eq!(callbacks, 1, "the bpf_loop callback");
    // Each program carries only what it calls: the tracepoint program
    // calls `store` alone, so it is shorter than the nested one.
    let on_switch = obj.program("on_switch").expect("on_switch");
    assert!(on_switch.insns.len() < nested.insns.len());
    // A call target is the first instruction of a function: the
    // instruction before it is an exit (or the target is the entry).
    for p in &obj.programs {
        for (i, insn) in p.insns.iter().enumerate() {
            if insn.op == CALL && insn.src == pseudo::CALL {
                let t = (i as i64 + 1 + i64::from(insn.imm)) as usize;
                assert!(t == 0 || p.insns[t - 1].op == 0x95, "{}: call at {i} lands mid-function ({t})", p.name);
            }
        }
    }
}

#[test]
fn the_packet_parser_parses() {
    let Some(obj) = parse("packet") else { return };
    assert_eq!(obj.maps.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["ports", "verdicts"]);
    let p = obj.program("parse_packet").expect("parse_packet");
    let (calls, _) = check_references(&obj, p);
    assert!(calls >= 1);
}

#[test]
fn an_objects_maps_are_created_and_global_data_filled() {
    use proctap_vm::elf::entries;
    let Some(obj) = parse("globals") else { return };
    let mut table = proctap_vm::map::MapTable::new();
    let ids = obj.create_maps(&mut table, 2).expect("create");
    assert_eq!(ids.len(), obj.maps.len());
    for (m, id) in obj.maps.iter().zip(&ids) {
        let map = table.get(*id).expect("in the table");
        assert_eq!(map.def().value_size, m.def.value_size);
        let all = entries(map);
        assert_eq!(all.len(), 1, "{}: one entry", m.name);
        assert_eq!(all[0].0, 0u32.to_le_bytes());
        assert_eq!(Some(&all[0].1), m.init.as_ref(), "{}: filled", m.name);
    }
    let Some(maps) = parse("maps") else { return };
    let mut table = proctap_vm::map::MapTable::new();
    let ids = maps.create_maps(&mut table, 2).expect("create every type");
    let pcpu = table.get(ids[maps.map_index("pcpu_arr").unwrap()]).unwrap();
    let all = entries(pcpu);
    assert_eq!(all.len(), 4, "every index of an array");
    assert!(all.iter().all(|(_, v)| v.len() == 16), "two CPUs' values, 8-byte rounded");
    assert!(entries(table.get(ids[maps.map_index("hash").unwrap()]).unwrap()).is_empty());
}

#[test]
fn fixture_programs_load_and_run_in_the_runtime() {
    use proctap_vm::elf::Loaded;
    use proctap_vm::osutil::HostOs;
    let os = HostOs::with_seed(1);
    for name in ["maps", "globals", "calls", "packet", "isa"] {
        let Some(obj) = parse(name) else { return };
        let mut loaded = Loaded::new(&obj, 2).unwrap_or_else(|e| panic!("{name}: {e}"));
        for p in &obj.programs {
            let mut ctx = vec![7u8; 64];
            loaded.run(&p.name, &os, &mut ctx, 0).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        }
    }
}

/// The refusal of fixture refused.bpf.c built with `REFUSE_<case>`.
fn refusal(case: &str) -> Option<proctap_vm::retcode::LoadError> {
    let path = common::fixture_defined("refused", &format!("REFUSE_{case}"))?;
    let bytes = std::fs::read(path).expect("read the fixture");
    Some(Object::parse(&bytes).expect_err("refused"))
}

#[test]
fn what_the_runtime_cannot_run_is_refused_naming_where() {
    let Some(e) = refusal("KFUNC") else { return };
    assert_eq!((e.section.as_str(), e.insn), ("syscall", Some(0)), "{e}");
    assert!(e.reason.contains("program calls_kfunc") && e.reason.contains("bpf_rcu_read_lock"), "{e}");
    assert!(e.reason.contains("no kernel functions"), "{e}");
    let Some(e) = refusal("KCONFIG") else { return };
    assert_eq!((e.section.as_str(), e.insn), ("syscall", Some(0)), "{e}");
    assert!(e.reason.contains("program reads_kconfig") && e.reason.contains("LINUX_KERNEL_VERSION"), "{e}");
    assert!(e.reason.contains("no kernel symbols"), "{e}");
    let Some(e) = refusal("SECTION") else { return };
    assert_eq!((e.section.as_str(), e.insn), ("xdp", None), "{e}");
    assert!(e.reason.contains("no program type"), "{e}");
    let Some(e) = refusal("LEGACY_MAPS") else { return };
    assert_eq!(e.section, "maps", "{e}");
    assert!(e.reason.contains("legacy"), "{e}");
}

#[test]
fn the_btf_for_kernels_has_datasec_offsets_and_sizes() {
    use proctap_vm::elf::btf::Btf;
    let Some(obj) = parse("globals") else { return };
    let btf = Btf::parse(obj.btf.as_ref().expect("BTF")).expect("the fixed-up BTF parses");
    // clang leaves every offset 0; the fix-up puts each variable where its
    // symbol is: .data's one u64, .bss's three variables after each other.
    let data = btf.datasec(".data").expect(".data");
    assert_eq!(data.iter().map(|v| (btf.name_of(v.0), v.1, v.2)).collect::<Vec<_>>(), [("total", 0, 8)]);
    let bss = btf.datasec(".bss").expect(".bss");
    let mut offsets: Vec<_> = bss.iter().map(|v| v.1).collect();
    offsets.sort_unstable();
    offsets.dedup();
    assert_eq!(offsets.len(), bss.len(), "distinct offsets: {bss:?}");
    let rodata = btf.datasec(".rodata").expect(".rodata");
    let table = rodata.iter().find(|v| btf.name_of(v.0) == "table").expect("table");
    assert_eq!((table.1, table.2), (8, 32), "after the u64 scale");
}

/// The interpreter and the JIT on every fixture program, without a kernel:
/// the same random contexts, then r0, the context and every map compared.
#[test]
#[cfg(target_arch = "x86_64")]
fn the_jit_agrees_with_the_interpreter_on_every_fixture() {
    use proctap_vm::elf::{entries, Engine, Loaded};
    use proctap_vm::osutil::HostOs;
    let os = HostOs::with_seed(9);
    let mut seed = 0x243f_6a88_85a3_08d3u64;
    for name in ["maps", "globals", "calls", "packet", "isa"] {
        let Some(obj) = parse(name) else { return };
        for p in obj.programs.iter().filter(|p| p.prog_type == prog_type::SYSCALL) {
            let mut engines = [Engine::Interpreter, Engine::Jit].map(|e| (e, Loaded::new(&obj, 2).expect("loads")));
            for run in 0..64 {
                let ctx: Vec<u8> = (0..64)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u8
                    })
                    .collect();
                let mut outcomes = Vec::new();
                for (engine, loaded) in &mut engines {
                    let mut c = ctx.clone();
                    let r0 = loaded.run_on(*engine, &p.name, &os, &mut c, 1);
                    let maps: Vec<_> =
                        loaded.map_ids().iter().map(|(_, id)| entries(loaded.maps.get(*id).unwrap())).collect();
                    outcomes.push((r0, c, maps));
                }
                assert_eq!(outcomes[0], outcomes[1], "{name}/{} run {run}", p.name);
            }
        }
    }
}

#[test]
fn programs_cannot_write_rodata() {
    use proctap_vm::elf::{Loaded, RunError};
    use proctap_vm::osutil::HostOs;
    use proctap_vm::retcode::Fault;
    let Some(path) = common::fixture_defined("refused", "REFUSE_RODATA_WRITE") else { return };
    let obj = Object::parse(&std::fs::read(path).unwrap()).expect("parses");
    match Loaded::new(&obj, 2) {
        Err(e) => assert!(e.reason.contains("read-only") || e.reason.contains("rodata"), "{e}"),
        Ok(mut loaded) => {
            let r = loaded.run("writes_rodata", &HostOs::with_seed(1), &mut [0u8; 8], 0);
            assert!(matches!(r, Err(RunError::Fault(Fault::ReadOnly { .. }))), "{r:?}");
            let rodata = proctap_vm::elf::entries(loaded.map(".rodata").unwrap());
            assert_eq!(rodata[0].1, 10u64.to_le_bytes(), "unchanged");
        }
    }
}

#[test]
fn some_programs_load_with_only_their_maps() {
    use proctap_vm::elf::Loaded;
    use proctap_vm::retcode::Errno;
    let Some(obj) = parse("maps") else { return };
    let send = obj.program("send_event").unwrap();
    assert_eq!(send.map_indexes(), [obj.map_index("events").unwrap()]);
    let loaded = Loaded::with_programs(&obj, &["send_event"], 2).expect("loads");
    assert!(loaded.program("send_event").is_some() && loaded.program("update_maps").is_none());
    assert_eq!(loaded.map_ids().iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["events"]);
    let e = Loaded::with_programs(&obj, &["nope"], 2).err().expect("no such program");
    assert_eq!(e.errno, Errno::ENOENT);
    assert!(e.reason.contains("nope"), "{e}");
}
