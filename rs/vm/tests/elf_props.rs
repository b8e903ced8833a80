//! Property tests of the loader: whatever bytes it is given (here, clang's
//! objects with random bytes changed, or cut short), it answers with an
//! object or a refusal and never panics, and what it accepts is
//! self-consistent: every map reference names a map of the object, every
//! BPF-to-BPF call lands inside the program, and loading it into the
//! runtime is again an answer, not a panic.

mod common;

use proctap_vm::consts::pseudo;
use proctap_vm::elf::file::{self, ElfFile};
use proctap_vm::elf::reloc::{CALL, LD_IMM64};
use proctap_vm::elf::{Loaded, Object};
use proptest::prelude::*;
use std::sync::OnceLock;

fn objects() -> &'static [Vec<u8>] {
    static OBJECTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    OBJECTS.get_or_init(|| ["calls", "globals", "maps"].iter().filter_map(|n| common::fixture_bytes(n)).collect())
}

/// Loads `obj` unless a (mutated) map definition asks for more than a
/// test should allocate: the maps take any size Linux allows.
fn try_load(obj: &Object) {
    let small = |d: &proctap_vm::map::MapDef| {
        (u64::from(d.key_size) + u64::from(d.value_size) + 8) * u64::from(d.max_entries) <= 16 << 20
    };
    if obj.maps.iter().all(|m| small(&m.def)) {
        let _ = Loaded::new(obj, 2);
    }
}

fn consistent(obj: &Object) {
    for p in &obj.programs {
        let mut i = 0;
        while i < p.insns.len() {
            let insn = p.insns[i];
            if insn.op == CALL && insn.src == pseudo::CALL {
                let t = i as i64 + 1 + i64::from(insn.imm);
                assert!((0..p.insns.len() as i64).contains(&t), "{}: call at {i} to {t}", p.name);
            }
            if insn.op == LD_IMM64 {
                if matches!(insn.src, pseudo::MAP_FD | pseudo::MAP_VALUE) {
                    assert!((insn.imm as usize) < obj.maps.len(), "{}: map index at {i}", p.name);
                }
                i += 1;
            }
            i += 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn changed_bytes_never_panic_the_loader(
        which in 0usize..3,
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let objs = objects();
        if objs.is_empty() {
            return Ok(());
        }
        let mut bytes = objs[which % objs.len()].clone();
        for (at, b) in changes {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Ok(obj) = Object::parse(&bytes) {
            consistent(&obj);
            try_load(&obj);
        }
    }

    /// The same, with the changes inside one section (code, relocations,
    /// symbols, BTF...), where a random byte of the file rarely falls.
    #[test]
    fn changed_sections_never_panic_the_loader(
        which in 0usize..3,
        section in any::<prop::sample::Index>(),
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let objs = objects();
        if objs.is_empty() {
            return Ok(());
        }
        let mut bytes = objs[which % objs.len()].clone();
        let elf = ElfFile::parse(&bytes).expect("clang's object parses");
        let ranges: Vec<(usize, usize)> = elf
            .sections
            .iter()
            .filter(|s| s.kind != file::SHT_NOBITS && s.size > 0)
            .map(|s| (s.offset as usize, s.size as usize))
            .collect();
        let (start, len) = ranges[section.index(ranges.len())];
        for (at, b) in changes {
            bytes[start + at.index(len)] = b;
        }
        if let Ok(obj) = Object::parse(&bytes) {
            consistent(&obj);
            try_load(&obj);
        }
    }

    #[test]
    fn truncated_objects_are_refused(which in 0usize..3, cut in any::<prop::sample::Index>()) {
        let objs = objects();
        if objs.is_empty() {
            return Ok(());
        }
        let bytes = &objs[which % objs.len()];
        let len = cut.index(bytes.len());
        // Section headers sit at the end of clang's objects: any cut loses them.
        prop_assert!(Object::parse(&bytes[..len]).is_err());
    }
}
