//! proctap's own kernel programs in the runtime.
//!
//! The real object (prebuilt/x86_64/proctap.bpf.o, built from c/bpf) uses
//! CO-RE, map types and helpers the runtime lacks: it is refused, cleanly,
//! naming the section, the instruction and the program. proctap's emit path
//! (c/bpf/lib/emit.bpf.h with its transport and maps), compiled into a
//! fixture whose current task is a fake one, loads and runs: the record,
//! the data pages and the counters come out as proctap's consumer reads them.

mod common;

use proctap_vm::consts::prog_type;
use proctap_vm::elf::btf::Btf;
use proctap_vm::elf::{entries, Loaded, Object, ParseOptions};
use proctap_vm::map::{self, MapTable};
use proctap_vm::mem::{vaddr, REGION_CTX};
use proctap_vm::osutil::{HostOs, Os};
use proctap_vm::program::Program;

fn proctap_object() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../prebuilt/x86_64/proctap.bpf.o");
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const LOCAL_CORE: ParseOptions = ParseOptions { core_as_local: true };

#[test]
fn the_real_object_is_refused_at_its_first_co_re_relocation() {
    let e = Object::parse(&proctap_object()).expect_err("CO-RE needs the kernel's BTF");
    assert_eq!(e.section, "tracepoint/syscalls/sys_enter_openat");
    assert!(e.insn.is_some(), "{e}");
    assert!(e.reason.contains("program pt_openat_enter"), "{e}");
    assert!(e.reason.contains("CO-RE relocation") && e.reason.contains("kernel's BTF"), "{e}");
}

#[test]
fn with_co_re_taken_as_local_its_maps_and_helpers_are_refused() {
    let obj = Object::parse_with(&proctap_object(), LOCAL_CORE).expect("parses");
    assert_eq!(obj.programs.len(), 38);
    assert_eq!(obj.program("pt_exec").map(|p| p.prog_type), Some(prog_type::TRACING));
    assert!(obj.programs.iter().any(|p| !p.core.is_empty()));
    // The first map the runtime has no type for: a cgroup array.
    let e = Loaded::new(&obj, 2).err().expect("refused");
    assert_eq!(e.section, ".maps");
    assert!(e.reason.contains("pt_cgroups") && e.reason.contains("map type 8"), "{e}");
    // Each program on its own, with the maps the runtime can create: every
    // one is refused at an instruction, for a helper (or a map) the
    // runtime lacks. bpf_get_current_task_btf (158) is in nearly all.
    let mut table = MapTable::new();
    let ids: Vec<u32> = obj
        .maps
        .iter()
        .map(|m| map::create(&m.def, 2).map(|created| table.insert(created)).unwrap_or(u32::MAX))
        .collect();
    let mut refusals = Vec::new();
    for p in &obj.programs {
        let insns = p.insns_with_maps(&ids).expect("relocates");
        match Program::load(&p.name, p.prog_type, insns, &table) {
            Ok(_) => println!("{}: loads", p.name),
            Err(e) => {
                assert!(e.insn.is_some_and(|i| i < p.insns.len()), "{}: {e}", p.name);
                assert!(e.reason.contains("helper") || e.reason.contains("map"), "{}: {e}", p.name);
                println!("{} [{}]: {e}", p.name, p.section);
                refusals.push(e);
            }
        }
    }
    let task_btf = refusals.iter().filter(|e| e.reason.contains("#158")).count();
    assert!(task_btf >= 30, "bpf_get_current_task_btf refusals: {task_btf}");
}

/// The fake task: a task_struct's bytes with `comm`, its own address as
/// its group leader, and the leader's start time.
fn fake_task(btf: &Btf, comm: &[u8], start_boottime: u64) -> Vec<u8> {
    let off = |m: &str| btf.member_offset("task_struct", m).unwrap_or_else(|| panic!("task_struct.{m}")) as usize;
    let size = off("comm").max(off("group_leader")).max(off("start_boottime")) + 64;
    let mut task = vec![0u8; size];
    task[off("comm")..off("comm") + comm.len()].copy_from_slice(comm);
    // The context region's first byte: the task is its own group leader.
    task[off("group_leader")..][..8].copy_from_slice(&vaddr(REGION_CTX, 0).to_le_bytes());
    task[off("start_boottime")..][..8].copy_from_slice(&start_boottime.to_le_bytes());
    task
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn the_emit_path_runs_against_a_fake_task() {
    let includes = ["vendor/x86_64", "c", "c/bpf", "c/bpf/lib", "rs/vm/tests/fixtures", "rs/vm/tests/fixtures/proctap"];
    let Some(path) = common::fixture_with("proctap_emit", &includes) else { return };
    let bytes = std::fs::read(path).expect("read the fixture");
    let e = Object::parse(&bytes).expect_err("vmlinux.h types are CO-RE");
    assert!(e.reason.contains("program emit_task") && e.insn.is_some(), "{e}");
    let mut obj = Object::parse_with(&bytes, LOCAL_CORE).expect("parses");
    let btf_bytes = obj.btf.clone().expect("BTF");
    let btf = Btf::parse(&btf_bytes).expect("BTF parses");
    // As proctap's loader does: one control block and one data element per CPU.
    for name in ["pt_ctl", "pt_data"] {
        let i = obj.map_index(name).expect(name);
        obj.maps[i].def.max_entries = 2;
    }
    let mut loaded = Loaded::new(&obj, 2).unwrap_or_else(|e| panic!("{e}"));
    let os = HostOs::with_seed(7);
    let start = 0x1234_5678_9abc;
    let mut task = fake_task(&btf, b"faketask", start);
    let r0 = loaded.run("emit_task", &os, &mut task, 1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r0, 8, "the comm's length");

    // The metadata record, as proctap's consumer reads it.
    let meta_id = loaded.map_id("pt_meta").expect("pt_meta");
    let ring = loaded.maps.get_mut(meta_id).and_then(|m| m.as_ringbuf_mut()).expect("a ringbuf");
    let mut records = Vec::new();
    ring.consume(|r| records.push(r.to_vec()));
    assert_eq!(records.len(), 1);
    let h = &records[0];
    assert_eq!(h.len(), 56, "PT_HDR_SIZE");
    let pid_tgid = os.current_pid_tgid();
    assert_eq!(u16::from_le_bytes([h[0], h[1]]), 5, "kind");
    assert_eq!(u16::from_le_bytes([h[2], h[3]]), 0, "flags: no data lost");
    assert_eq!(u16::from_le_bytes([h[4], h[5]]), 1, "cpu");
    assert_eq!((u32_at(h, 8), u32_at(h, 12)), ((pid_tgid >> 32) as u32, pid_tgid as u32), "pid, tid");
    assert!(u64_at(h, 16) > 0, "ts_ns");
    assert_eq!(u64_at(h, 24), start, "proc_start_ns: the fake task's leader's");
    assert_eq!(u64_at(h, 32), 0, "data_pos");
    assert_eq!((u32_at(h, 40), u32_at(h, 44)), (8, 8), "data_span trimmed to data_len");

    // The comm in CPU 1's data pages; CPU 0's are untouched.
    let data = entries(loaded.map("pt_data").expect("pt_data"));
    assert_eq!(&data[1].1[..9], b"faketask\0");
    assert!(data[0].1.iter().all(|&b| b == 0));
    // The control block: prod advanced by the used bytes only, one record
    // emitted and its bytes counted for kind 5.
    let ctl = &entries(loaded.map("pt_ctl").expect("pt_ctl"))[1].1;
    assert_eq!(u64_at(ctl, 0), 8, "prod");
    let (emitted, data_bytes) = (128 + 5 * 8, 128 + 3 * 64 * 8 + 5 * 8);
    assert_eq!((u64_at(ctl, emitted), u64_at(ctl, data_bytes)), (1, 8));
}

/// Sets `.rodata` variable `name` of `obj` (before load, as proctap's
/// loader sets its `const volatile` knobs).
fn set_rodata(obj: &mut Object, btf: &Btf, name: &str, value: &[u8]) {
    let vars = btf.datasec(".rodata").expect(".rodata DATASEC");
    let (_, offset, _) = vars.into_iter().find(|(v, _, _)| btf.name_of(*v) == name).expect(name);
    let i = obj.map_index(".rodata").expect(".rodata map");
    let init = obj.maps[i].init.as_mut().expect("contents");
    init[offset as usize..offset as usize + value.len()].copy_from_slice(value);
}

#[test]
fn pf_exit_of_the_real_object_runs_against_a_fake_task() {
    let mut obj = Object::parse_with(&proctap_object(), LOCAL_CORE).expect("parses");
    let btf_bytes = obj.btf.clone().expect("BTF");
    let btf = Btf::parse(&btf_bytes).expect("BTF parses");
    set_rodata(&mut obj, &btf, "pf_blocked_by_tid", &[1]);
    // Its blocked-state values are 10 KiB: fewer of them, as a loader may.
    let i = obj.map_index("pf_blocked_tids").expect("pf_blocked_tids");
    obj.maps[i].def.max_entries = 16;
    let mut loaded = Loaded::with_programs(&obj, &["pf_exit"], 2).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.map("pt_cgroups").is_none(), "only the maps pf_exit uses are created");

    // The fake task at offset 64 of the context, its signal_struct after it;
    // the context's first u64 (the tracepoint's first argument) points to it.
    let off = |s: &str, m: &str| btf.member_offset(s, m).unwrap_or_else(|| panic!("{s}.{m}")) as usize;
    let task_at = 64;
    let signal_at = task_at + off("task_struct", "signal").max(off("task_struct", "tgid")) + 64;
    let mut ctx = vec![0u8; signal_at + off("signal_struct", "live") + 64];
    ctx[..8].copy_from_slice(&vaddr(REGION_CTX, task_at as u32).to_le_bytes());
    ctx[task_at + off("task_struct", "pid")..][..4].copy_from_slice(&4250u32.to_le_bytes());
    ctx[task_at + off("task_struct", "tgid")..][..4].copy_from_slice(&4242u32.to_le_bytes());
    ctx[task_at + off("task_struct", "signal")..][..8]
        .copy_from_slice(&vaddr(REGION_CTX, signal_at as u32).to_le_bytes());
    let live = signal_at + off("signal_struct", "live");

    let targets = loaded.map_id("pf_targets").expect("pf_targets");
    let blocked = loaded.map_id("pf_blocked_tids").expect("pf_blocked_tids");
    for tgid in [4242u32, 4243] {
        let t = loaded.maps.get_mut(targets).unwrap();
        t.update_copy(&tgid.to_le_bytes(), &[7; 16], 0).expect("a target");
    }
    let b = loaded.maps.get_mut(blocked).unwrap();
    b.update_copy(&4250u32.to_le_bytes(), &vec![1; 10280], 0).expect("a blocked state");
    let keys = |loaded: &Loaded, id: u32| -> Vec<Vec<u8>> {
        entries(loaded.maps.get(id).unwrap()).into_iter().map(|(k, _)| k).collect()
    };

    // A thread exits while others live: its blocked state goes, the target stays.
    ctx[live..live + 4].copy_from_slice(&2u32.to_le_bytes());
    let os = HostOs::with_seed(3);
    assert_eq!(loaded.run("pf_exit", &os, &mut ctx.clone(), 0), Ok(0));
    assert!(keys(&loaded, blocked).is_empty(), "the tid's blocked state is deleted");
    assert_eq!(keys(&loaded, targets).len(), 2);
    // The last thread exits: the process' target entry goes too.
    ctx[live..live + 4].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(loaded.run("pf_exit", &os, &mut ctx.clone(), 0), Ok(0));
    assert_eq!(keys(&loaded, targets), [4243u32.to_le_bytes().to_vec()]);
}
