//! Objects loaded into the runtime's fd world, as a libbpf-style loader
//! ported to an OS loads them over bpf(2): maps created, filled and
//! frozen, programs loaded with map fds, and attached by section name.

mod common;

use proctap_vm::elf::{AttachPoint, Object};
use proctap_vm::osutil::HostOs;
use proctap_vm::retcode::Errno;
use proctap_vm::runtime::Runtime;

fn object(name: &str) -> Option<Object> {
    common::fixture_bytes(name).map(|b| Object::parse(&b).expect("parses"))
}

#[test]
fn programs_attach_where_their_sections_say_and_run_at_the_hook() {
    let Some(obj) = object("calls") else { return };
    let on_switch = obj.program("on_switch").unwrap();
    assert_eq!(on_switch.attach_point(), Some(AttachPoint::Tracepoint("sched/sched_switch".into())));
    assert_eq!(obj.program("nested_calls").unwrap().attach_point(), None, "syscall programs are run, not attached");

    let mut rt = Runtime::new(HostOs::with_seed(1));
    // The hook does not exist yet: the attach is refused, naming the program.
    let e = obj.load_into(&mut rt, true).expect_err("no such tracepoint");
    assert_eq!(e.section, "tracepoint/sched/sched_switch");
    assert!(e.reason.contains("program on_switch"), "{e}");
    assert_eq!(rt.fds().iter().count(), 0, "what was made is closed again");

    let mut rt = Runtime::new(HostOs::with_seed(1));
    rt.register_tracepoint("sched/sched_switch").unwrap();
    let fds = obj.load_into(&mut rt, true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fds.links.len(), 1);
    assert_eq!(fds.links[0].0, "on_switch");
    let results = fds.map("results").expect("results");
    for _ in 0..3 {
        let runs = rt.run("sched/sched_switch", &mut [0u8; 16]).expect("the hook runs");
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].result, Ok(0));
    }
    assert_eq!(rt.map_lookup_vec(results, &3u32.to_le_bytes()), Ok(3u64.to_le_bytes().to_vec()), "store(3, 1) thrice");

    // A syscall program, run as PROG_TEST_RUN runs it.
    let prog = fds.program("bounded_loop").expect("bounded_loop");
    let mut ctx = [0u8; 24];
    ctx[0] = 1;
    ctx[16] = 2; // n = 2: acc = (1 * 31 + 0) * 31 + 0
    assert_eq!(rt.run_program(prog, &mut ctx), Ok(Ok(961)));
    assert_eq!(rt.map_lookup_vec(results, &1u32.to_le_bytes()), Ok(961u64.to_le_bytes().to_vec()));
}

#[test]
fn global_data_is_filled_and_rodata_frozen() {
    let Some(obj) = object("globals") else { return };
    let mut rt = Runtime::new(HostOs::with_seed(1));
    let fds = obj.load_into(&mut rt, false).unwrap_or_else(|e| panic!("{e}"));
    let rodata = fds.map(".rodata").expect(".rodata");
    let data = fds.map(".data").expect(".data");
    let key = 0u32.to_le_bytes();
    let init = rt.map_lookup_vec(rodata, &key).expect("readable");
    assert_eq!(&init[..8], &3u64.to_le_bytes(), "scale");
    assert_eq!(rt.map_update(rodata, &key, &init, 0), Err(Errno::EPERM), "frozen");
    assert_eq!(rt.map_update(data, &key, &5u64.to_le_bytes(), 0), Ok(()), ".data stays writable");
    let mut input = [0u8; 16];
    input[0] = 2; // x = 2, pick = 0: total = 5 + 2 * 3 + table[0] (2)
    let r0 = rt.run_program(fds.program("globals").unwrap(), &mut input).expect("a program").expect("runs");
    assert_eq!(rt.map_lookup_vec(data, &key), Ok(13u64.to_le_bytes().to_vec()));
    assert_eq!(r0, 13 + u64::from(b'h'));
}
