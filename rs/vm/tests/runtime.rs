//! The runtime object through its typed API: fds, object lifetimes as
//! Linux's reference counts, prog arrays, hook points and their runs.

mod common;

use common::insns::{ld_map_value, ret, ret_using};
use common::{FakeOs, CPUS};
use proctap_vm::consts::{map_type, prog_type, update};
use proctap_vm::map::{flags, MapDef};
use proctap_vm::retcode::Errno;
use proctap_vm::runtime::{Object, Runtime};
use proctap_vm::tracepoints::{HookKind, PtRegs};

fn rt() -> Runtime<FakeOs> {
    Runtime::new(FakeOs::new())
}

fn def(map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> MapDef {
    MapDef { map_type, key_size, value_size, max_entries, flags: 0, name: "m".into() }
}

fn array(rt: &mut Runtime<FakeOs>) -> u32 {
    rt.create_map(&def(map_type::ARRAY, 4, 8, 4)).unwrap()
}

#[test]
fn fds_are_lowest_free_first_and_name_one_object() {
    let mut rt = rt();
    let m = array(&mut rt);
    let p = rt.prog_load("p", prog_type::RAW_TRACEPOINT, ret(0)).unwrap();
    assert_eq!((m, p), (3, 4));
    rt.register_tracepoint("tp").unwrap();
    let l = rt.attach_tracepoint(p, "tp").unwrap();
    assert_eq!(l, 5);
    assert_eq!(rt.fds().get(l), Ok(Object::Link(0)));
    rt.close(m).unwrap();
    assert_eq!(rt.close(m), Err(Errno::EBADF));
    assert_eq!(array(&mut rt), 3, "the freed fd is reused");
    assert_eq!(rt.map_id(p), Err(Errno::EINVAL), "a program fd is not a map");
    assert_eq!(rt.prog_id(99), Err(Errno::EBADF));
    assert_eq!(rt.map_update(p, &[0; 4], &[0; 8], 0), Err(Errno::EINVAL));
}

#[test]
fn a_map_lives_while_a_program_uses_it() {
    let mut rt = rt();
    let m = array(&mut rt);
    let id = rt.map_id(m).unwrap();
    let p = rt.prog_load("p", prog_type::RAW_TRACEPOINT, ret_using(m, 1)).unwrap();
    rt.close(m).unwrap();
    assert!(rt.map_alive(id), "the program still references it");
    rt.close(p).unwrap();
    assert!(!rt.map_alive(id));
}

#[test]
fn a_program_lives_while_a_link_attaches_it() {
    let mut rt = rt();
    rt.register_tracepoint("tp").unwrap();
    let p = rt.prog_load("p", prog_type::RAW_TRACEPOINT, ret(9)).unwrap();
    let id = rt.prog_id(p).unwrap();
    let l = rt.attach_tracepoint(p, "tp").unwrap();
    rt.close(p).unwrap();
    let runs = rt.run("tp", &mut []).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].prog, runs[0].result.clone()), (id, Ok(9)));
    rt.close(l).unwrap();
    assert!(!rt.prog_alive(id));
    assert!(rt.run("tp", &mut []).unwrap().is_empty());
}

#[test]
fn prog_arrays_hold_programs_until_their_last_fd_closes() {
    let mut rt = rt();
    let pa = rt.create_map(&def(map_type::PROG_ARRAY, 4, 4, 4)).unwrap();
    let pa_id = rt.map_id(pa).unwrap();
    // A program that references the array that holds it: a cycle.
    let p = rt.prog_load("p", prog_type::KPROBE, ret_using(pa, 0)).unwrap();
    let p_id = rt.prog_id(p).unwrap();
    rt.map_update(pa, &1u32.to_le_bytes(), &p.to_le_bytes(), update::ANY).unwrap();
    assert_eq!(rt.maps().get(pa_id).unwrap().prog_at(1), Some(p_id));
    assert_eq!(
        rt.map_lookup_vec(pa, &1u32.to_le_bytes()),
        Ok((p_id + 1).to_le_bytes().to_vec()),
        "bpf(2) ids come back"
    );
    rt.close(p).unwrap();
    assert!(rt.prog_alive(p_id), "the array holds it");
    rt.close(pa).unwrap();
    assert!(!rt.prog_alive(p_id), "the array was emptied with its last fd");
    assert!(!rt.map_alive(pa_id), "and the program's reference went with it");
}

#[test]
fn prog_array_updates_check_the_program() {
    let mut rt = rt();
    let pa = rt.create_map(&def(map_type::PROG_ARRAY, 4, 4, 2)).unwrap();
    let m = array(&mut rt);
    let k = rt.prog_load("k", prog_type::KPROBE, ret(0)).unwrap();
    let t = rt.prog_load("t", prog_type::TRACEPOINT, ret(0)).unwrap();
    assert_eq!(rt.map_update(pa, &0u32.to_le_bytes(), &77u32.to_le_bytes(), 0), Err(Errno::EBADF));
    assert_eq!(rt.map_update(pa, &0u32.to_le_bytes(), &m.to_le_bytes(), 0), Err(Errno::EINVAL));
    rt.map_update(pa, &0u32.to_le_bytes(), &k.to_le_bytes(), 0).unwrap();
    assert_eq!(
        rt.map_update(pa, &1u32.to_le_bytes(), &t.to_le_bytes(), 0),
        Err(Errno::EINVAL),
        "one program type per array"
    );
    assert_eq!(rt.map_update(pa, &2u32.to_le_bytes(), &k.to_le_bytes(), 0), Err(Errno::E2BIG));
    let k_id = rt.prog_id(k).unwrap();
    rt.close(k).unwrap();
    assert!(rt.prog_alive(k_id));
    rt.map_delete(pa, &0u32.to_le_bytes()).unwrap();
    assert!(!rt.prog_alive(k_id), "deleting the slot dropped the last reference");
    assert_eq!(rt.map_delete(pa, &0u32.to_le_bytes()), Err(Errno::ENOENT));
}

#[test]
fn load_errors_name_the_program_and_instruction() {
    let mut rt = rt();
    let mut insns = ret(0);
    insns.splice(0..0, ld_map_value(1, 42, 0));
    let e = rt.prog_load("bad", prog_type::KPROBE, insns).unwrap_err();
    assert_eq!((e.errno, e.insn, e.section.as_str()), (Errno::EBADF, Some(0), "bad"));
    assert!(e.to_string().contains("fd 42"), "{e}");
}

#[test]
fn access_flags_limit_the_syscall_side() {
    let mut rt = rt();
    let mut d = def(map_type::HASH, 4, 4, 4);
    d.flags = flags::RDONLY;
    let ro = rt.create_map(&d).unwrap();
    assert_eq!(rt.map_update(ro, &[0; 4], &[0; 4], 0), Err(Errno::EPERM));
    assert_eq!(rt.map_delete(ro, &[0; 4]), Err(Errno::EPERM));
    assert_eq!(rt.map_lookup_vec(ro, &[0; 4]), Err(Errno::ENOENT));
    d.flags = flags::WRONLY;
    let wo = rt.create_map(&d).unwrap();
    rt.map_update(wo, &[0; 4], &[0; 4], 0).unwrap();
    assert_eq!(rt.map_lookup_vec(wo, &[0; 4]), Err(Errno::EPERM));
    assert_eq!(rt.map_next_key(wo, None, &mut [0; 4]), Err(Errno::EPERM));
}

#[test]
fn per_cpu_maps_get_the_os_cpu_count() {
    let mut rt = rt();
    let m = rt.create_map(&def(map_type::PERCPU_ARRAY, 4, 4, 1)).unwrap();
    assert_eq!(rt.map_value_size(m), Ok(CPUS as usize * 8));
}

#[test]
fn hooks_run_their_programs_in_attach_order() {
    let mut rt = rt();
    rt.register_tracepoint("sched_switch").unwrap();
    rt.register_tracepoint("other").unwrap();
    assert_eq!(rt.register_tracepoint("other"), Err(Errno::EEXIST));
    let progs: Vec<u32> = (0..3).map(|i| rt.prog_load("p", prog_type::RAW_TRACEPOINT, ret(10 + i)).unwrap()).collect();
    let links: Vec<u32> = [2, 0, 1].iter().map(|i| rt.attach_tracepoint(progs[*i], "sched_switch").unwrap()).collect();
    let r0s = |rt: &mut Runtime<FakeOs>| -> Vec<u64> {
        rt.run("sched_switch", &mut [0u8; 8]).unwrap().into_iter().map(|r| r.result.unwrap()).collect()
    };
    assert_eq!(r0s(&mut rt), vec![12, 10, 11]);
    assert!(rt.run("other", &mut []).unwrap().is_empty());
    assert_eq!(rt.run("nope", &mut []), Err(Errno::ENOENT));
    rt.link_detach(links[1]).unwrap();
    assert_eq!(r0s(&mut rt), vec![12, 11]);
    assert_eq!(rt.link_info(1).unwrap().prog, None, "a detached link stays, defunct");
    rt.close(links[1]).unwrap();
    rt.close(links[0]).unwrap();
    assert_eq!(r0s(&mut rt), vec![11]);
}

#[test]
fn attaching_checks_the_hook_and_the_program_type() {
    let mut rt = rt();
    rt.register_tracepoint("tp").unwrap();
    rt.register_kprobe("do_sys_openat2").unwrap();
    assert_eq!(rt.hooks().kind("kprobe/do_sys_openat2"), Some(HookKind::Kprobe));
    assert_eq!(rt.hooks().kind("kretprobe/do_sys_openat2"), Some(HookKind::Kretprobe));
    let kp = rt.prog_load("kp", prog_type::KPROBE, ret(1)).unwrap();
    let tp = rt.prog_load("tp", prog_type::TRACEPOINT, ret(2)).unwrap();
    assert_eq!(rt.attach_tracepoint(tp, "missing"), Err(Errno::ENOENT));
    assert_eq!(rt.attach_tracepoint(kp, "tp"), Err(Errno::EINVAL), "a kprobe program on a tracepoint");
    assert_eq!(rt.attach_kprobe(tp, &["do_sys_openat2"], false), Err(Errno::EINVAL));
    assert_eq!(rt.attach_kprobe(kp, &["do_sys_openat2", "missing"], false), Err(Errno::ENOENT));
    assert!(rt.hooks().links("kprobe/do_sys_openat2").unwrap().is_empty(), "all or nothing");
    rt.attach_kprobe(kp, &["do_sys_openat2"], true).unwrap();
    let regs = PtRegs::with_args(&[1, 2, 3]);
    assert!(rt.run("kprobe/do_sys_openat2", &mut regs.to_bytes()).unwrap().is_empty());
    let runs = rt.run("kretprobe/do_sys_openat2", &mut regs.to_bytes()).unwrap();
    assert_eq!(runs[0].result, Ok(1));
    assert_eq!(rt.attach_tracepoint(999, "tp"), Err(Errno::EBADF));
}

#[test]
fn pt_regs_bytes_follow_x86_64_field_order() {
    let r = PtRegs { r15: 1, di: 0xdd, ip: 0x1111, ss: 0x55, ..PtRegs::default() };
    let b = r.to_bytes();
    assert_eq!(b.len(), PtRegs::SIZE);
    assert_eq!(std::mem::size_of::<PtRegs>(), PtRegs::SIZE);
    let at = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!((at(0), at(14), at(16), at(20)), (1, 0xdd, 0x1111, 0x55));
    let a = PtRegs::with_args(&[1, 2, 3, 4, 5, 6]);
    assert_eq!((a.di, a.si, a.dx, a.cx, a.r8, a.r9), (1, 2, 3, 4, 5, 6));
}

#[test]
fn the_os_consumes_a_ringbuf_by_fd() {
    let mut rt = rt();
    let fd = rt.create_map(&MapDef { map_type: map_type::RINGBUF, max_entries: 4096, ..MapDef::default() }).unwrap();
    let id = rt.map_id(fd).unwrap();
    rt.maps_mut().get_mut(id).unwrap().ringbuf_output(b"event").unwrap();
    let mut got = Vec::new();
    assert_eq!(rt.ringbuf(fd).unwrap().consume(|s| got.push(s.to_vec())), 1);
    assert_eq!(got, vec![b"event".to_vec()]);
    let arr = array(&mut rt);
    assert_eq!(rt.ringbuf(arr).err(), Some(Errno::EINVAL));
}

#[test]
fn a_test_run_lets_syscall_programs_and_only_them_write_their_context() {
    let mut rt = Runtime::new(FakeOs::new());
    // ctx[0] = 7; r0 = 0.
    let insns = vec![
        proctap_vm::program::Insn { op: 0x72, dst: 1, src: 0, off: 0, imm: 7 },
        proctap_vm::program::Insn { op: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
        proctap_vm::program::Insn { op: 0x95, ..Default::default() },
    ];
    let syscall = rt.prog_load("w", prog_type::SYSCALL, insns.clone()).unwrap();
    let mut ctx = [0u8; 4];
    assert_eq!(rt.run_program(syscall, &mut ctx).unwrap(), Ok(0));
    assert_eq!(ctx, [7, 0, 0, 0]);
    let tracepoint = rt.prog_load("w", prog_type::RAW_TRACEPOINT, insns).unwrap();
    let mut ctx = [0u8; 4];
    assert!(matches!(rt.run_program(tracepoint, &mut ctx).unwrap(), Err(proctap_vm::retcode::Fault::ReadOnly { .. })));
    assert_eq!(ctx, [0; 4]);
}
