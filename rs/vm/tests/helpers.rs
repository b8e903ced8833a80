//! The helpers, called from programs, against a fake OS and fake maps.

mod support;

use proctap_vm::consts::{helper, update};
use proctap_vm::helpers;
use proctap_vm::map::MapTable;
use proctap_vm::mem::{vaddr, REGION_MAPS};
use proctap_vm::program::{Env, Insn};
use proctap_vm::retcode::Fault;
use support::asm::*;
use support::fake_map::{FakeArray, FakeRingbuf};
use support::fake_os::FakeOs;
use support::run_with;

const EFAULT: u64 = (-14i64) as u64;
const EINVAL: u64 = (-22i64) as u64;

fn run_os(insns: Vec<Insn>, os: &FakeOs) -> Result<u64, Fault> {
    run_with(insns, &mut MapTable::new(), os, &mut [])
}

/// Instructions that write `bytes` to the stack at r10 + `off` (8 at a time).
fn put_bytes(bytes: &[u8], off: i16) -> Vec<Insn> {
    let mut out = Vec::new();
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        out.extend(ld_imm64(1, u64::from_le_bytes(word)));
        out.push(stx(DW, 10, 1, off + 8 * i as i16));
    }
    out
}

#[test]
fn task_time_cpu_and_random() {
    let os = FakeOs::default();
    let one = |id| run_os(prog![call(id), exit()], &os).unwrap();
    assert_eq!(one(helper::GET_CURRENT_PID_TGID), os.pid_tgid);
    assert_eq!(one(helper::GET_CURRENT_UID_GID), os.uid_gid);
    assert_eq!(one(helper::KTIME_GET_NS), os.time_ns);
    assert_eq!(one(helper::KTIME_GET_BOOT_NS), os.boot_ns);
    assert_eq!(one(helper::GET_SMP_PROCESSOR_ID), os.cpu as u64);
    assert_eq!(one(helper::GET_PRANDOM_U32), os.random as u64);
}

/// Runs get_current_comm into a 16-byte stack buffer pre-filled with 0xaa
/// with `size`; (r0, the buffer).
fn comm(size: i32) -> (u64, [u8; 16]) {
    let os = FakeOs::default();
    let mut p = put_bytes(&[0xaa; 16], -16);
    p.extend(prog![mov64_reg(1, 10), alu64_imm(ADD, 1, -16), mov64_imm(2, size), call(helper::GET_CURRENT_COMM)]);
    p.extend(prog![stx(DW, 10, 0, -24), ldx(DW, 0, 10, -16), exit()]);
    let lo = run_os(p.clone(), &os).unwrap();
    let n = p.len();
    p[n - 2] = ldx(DW, 0, 10, -8);
    let hi = run_os(p.clone(), &os).unwrap();
    p[n - 2] = ldx(DW, 0, 10, -24);
    let r0 = run_os(p, &os).unwrap();
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&lo.to_le_bytes());
    buf[8..].copy_from_slice(&hi.to_le_bytes());
    (r0, buf)
}

#[test]
fn get_current_comm_terminates_and_pads() {
    let (r0, buf) = comm(16);
    assert_eq!(r0, 0);
    assert_eq!(&buf, b"fake-os\0\0\0\0\0\0\0\0\0");
    let (r0, buf) = comm(4);
    assert_eq!(r0, 0);
    assert_eq!(&buf[..5], b"fak\0\xaa", "truncated to size - 1 and NUL-terminated");
}

fn array_maps() -> (MapTable, u32) {
    let mut maps = MapTable::new();
    let id = maps.insert(Box::new(FakeArray::new(8, 4, 0)));
    (maps, id)
}

#[test]
fn map_update_then_lookup_through_the_value_pointer() {
    let (mut maps, id) = array_maps();
    let os = FakeOs::default();
    let p = prog![
        st(W, 10, -4, 2),
        st(DW, 10, -16, 4242),
        ld_map_fd(1, id),
        mov64_reg(2, 10),
        alu64_imm(ADD, 2, -4),
        mov64_reg(3, 10),
        alu64_imm(ADD, 3, -16),
        mov64_imm(4, 0),
        call(helper::MAP_UPDATE_ELEM),
        jmp_imm(JNE, 0, 0, 8),
        ld_map_fd(1, id),
        mov64_reg(2, 10),
        alu64_imm(ADD, 2, -4),
        call(helper::MAP_LOOKUP_ELEM),
        jmp_imm(JEQ, 0, 0, 2),
        ldx(DW, 0, 0, 0),
        exit(),
        mov64_imm(0, -1),
        exit(),
    ];
    assert_eq!(run_with(p, &mut maps, &os, &mut []), Ok(4242));
    assert_eq!(&maps.get(id).unwrap().values()[16..24], &4242u64.to_le_bytes());
}

/// Runs a lookup of key `key` in map `id`: r0.
fn lookup(maps: &mut MapTable, id: u32, key: i32) -> u64 {
    let p = prog![
        st(W, 10, -4, key),
        ld_map_fd(1, id),
        mov64_reg(2, 10),
        alu64_imm(ADD, 2, -4),
        call(helper::MAP_LOOKUP_ELEM),
        exit()
    ];
    run_with(p, maps, &FakeOs::default(), &mut []).unwrap()
}

#[test]
fn map_lookup_returns_the_value_address_or_null() {
    let (mut maps, id) = array_maps();
    assert_eq!(lookup(&mut maps, id, 3), vaddr(REGION_MAPS + id, 24));
    assert_eq!(lookup(&mut maps, id, 4), 0);
}

#[test]
fn map_errors_are_negative_errnos() {
    let (mut maps, id) = array_maps();
    let os = FakeOs::default();
    let del = prog![
        st(W, 10, -4, 0),
        ld_map_fd(1, id),
        mov64_reg(2, 10),
        alu64_imm(ADD, 2, -4),
        call(helper::MAP_DELETE_ELEM),
        exit()
    ];
    assert_eq!(run_with(del, &mut maps, &os, &mut []), Ok(EINVAL), "arrays refuse delete");
    let noexist = prog![
        st(W, 10, -4, 0),
        st(DW, 10, -16, 0),
        ld_map_fd(1, id),
        mov64_reg(2, 10),
        alu64_imm(ADD, 2, -4),
        mov64_reg(3, 10),
        alu64_imm(ADD, 3, -16),
        mov64_imm(4, update::NOEXIST as i32),
        call(helper::MAP_UPDATE_ELEM),
        exit()
    ];
    assert_eq!(run_with(noexist, &mut maps, &os, &mut []), Ok((-17i64) as u64));
}

#[test]
fn a_map_argument_that_is_no_map_faults() {
    let (mut maps, _) = array_maps();
    let p = prog![mov64_imm(1, 0), mov64_reg(2, 10), alu64_imm(ADD, 2, -4), call(helper::MAP_LOOKUP_ELEM), exit()];
    let r = run_with(p, &mut maps, &FakeOs::default(), &mut []);
    assert!(matches!(r, Err(Fault::Helper { pc: 3, id: helper::MAP_LOOKUP_ELEM, .. })), "{r:?}");
}

#[test]
fn a_key_outside_program_memory_faults() {
    let (mut maps, id) = array_maps();
    let p = prog![ld_map_fd(1, id), mov64_imm(2, 64), call(helper::MAP_LOOKUP_ELEM), exit()];
    let r = run_with(p, &mut maps, &FakeOs::default(), &mut []);
    assert_eq!(r, Err(Fault::Memory { pc: 3, addr: 64, size: 4, write: false }));
}

/// probe_read-style helper `id` of `size` bytes from `src` into a stack
/// buffer pre-filled with 0xaa: (r0, the first 8 bytes of the buffer).
fn probe(os: &FakeOs, id: u32, src: u64, size: i32) -> (u64, u64) {
    let mut p = put_bytes(&[0xaa; 16], -16);
    p.extend(prog![mov64_reg(1, 10), alu64_imm(ADD, 1, -16), mov64_imm(2, size), ld_imm64(3, src), call(id)]);
    p.extend(prog![stx(DW, 10, 0, -24), ldx(DW, 0, 10, -16), exit()]);
    let buf = run_os(p.clone(), os).unwrap();
    let n = p.len();
    p[n - 2] = ldx(DW, 0, 10, -24);
    (run_os(p, os).unwrap(), buf)
}

fn os_with_memory() -> FakeOs {
    let os = FakeOs {
        kernel: support::fake_os::Area { base: 0xffff_8000_0000_0000, bytes: b"kernel!\0tail".to_vec() },
        ..FakeOs::default()
    };
    os.user.lock().unwrap().bytes = b"user-str\0".to_vec();
    os
}

#[test]
fn probe_read_kernel_and_user() {
    let os = os_with_memory();
    let k = os.kernel.base;
    assert_eq!(probe(&os, helper::PROBE_READ_KERNEL, k, 8), (0, u64::from_le_bytes(*b"kernel!\0")));
    assert_eq!(probe(&os, helper::PROBE_READ, k + 4, 4).1 as u32, u32::from_le_bytes(*b"el!\0"));
    assert_eq!(probe(&os, helper::PROBE_READ_USER, 0x7000_0000, 8), (0, u64::from_le_bytes(*b"user-str")));
}

#[test]
fn a_faulting_probe_read_zeroes_the_buffer_and_returns_efault() {
    let os = os_with_memory();
    assert_eq!(probe(&os, helper::PROBE_READ_KERNEL, 0x10, 8), (EFAULT, 0));
    assert_eq!(probe(&os, helper::PROBE_READ_USER, os.kernel.base, 8), (EFAULT, 0), "kernel memory is not user memory");
    assert_eq!(probe(&os, helper::PROBE_READ_KERNEL, os.kernel.base + 8, 8), (EFAULT, 0), "crosses the end");
}

#[test]
fn probe_read_str_returns_the_length_with_the_nul() {
    let os = os_with_memory();
    let k = os.kernel.base;
    let (r0, buf) = probe(&os, helper::PROBE_READ_KERNEL_STR, k, 16);
    assert_eq!((r0, buf), (8, u64::from_le_bytes(*b"kernel!\0")));
    let (r0, buf) = probe(&os, helper::PROBE_READ_KERNEL_STR, k, 4);
    assert_eq!((r0, buf & 0xffff_ffff), (4, u32::from_le_bytes(*b"ker\0") as u64), "truncated, NUL-terminated");
    let (r0, buf) = probe(&os, helper::PROBE_READ_USER_STR, 0x7000_0000, 16);
    assert_eq!((r0, buf), (9, u64::from_le_bytes(*b"user-str")));
    assert_eq!(probe(&os, helper::PROBE_READ_KERNEL_STR, 0x10, 16), (EFAULT, 0));
}

#[test]
fn probe_read_of_the_programs_own_memory() {
    let os = FakeOs::default();
    let mut p = put_bytes(b"stack", -32);
    p.extend(prog![
        mov64_reg(1, 10),
        alu64_imm(ADD, 1, -16),
        mov64_imm(2, 8),
        mov64_reg(3, 10),
        alu64_imm(ADD, 3, -32),
        call(helper::PROBE_READ_KERNEL_STR),
        ldx(DW, 0, 10, -16),
        exit()
    ]);
    assert_eq!(run_os(p, &os).unwrap(), u64::from_le_bytes(*b"stack\0\0\0"));
}

/// Runs trace_printk with `fmt` (NUL added) and r3-r5 = `args`: (r0, the console lines).
fn printk(fmt: &str, args: [u64; 3], extra: &[u8]) -> (u64, Vec<String>) {
    let os = FakeOs::default();
    let mut bytes = fmt.as_bytes().to_vec();
    bytes.push(0);
    let mut p = put_bytes(&bytes, -128);
    p.extend(put_bytes(extra, -256));
    p.extend(ld_imm64(3, args[0]));
    p.extend(ld_imm64(4, args[1]));
    p.extend(ld_imm64(5, args[2]));
    p.extend(prog![
        mov64_reg(1, 10),
        alu64_imm(ADD, 1, -128),
        mov64_imm(2, bytes.len() as i32),
        call(helper::TRACE_PRINTK),
        exit()
    ]);
    let r0 = run_os(p, &os).unwrap();
    (r0, os.console_lines())
}

#[test]
fn trace_printk_formats_to_the_console() {
    let (r0, lines) = printk("x=%d u=%u h=%x\n", [(-5i64) as u64, 7, 255], &[]);
    assert_eq!(lines, ["x=-5 u=7 h=ff"]);
    assert_eq!(r0, "x=-5 u=7 h=ff\n".len() as u64);
    let (_, lines) = printk("[%5d|%-4x|%08llx]", [42, 10, 0xabc], &[]);
    assert_eq!(lines, ["[   42|a   |00000abc]"]);
    let (_, lines) = printk("%c%c 100%%", [b'o' as u64, b'k' as u64, 0], &[]);
    assert_eq!(lines, ["ok 100%"]);
    let (_, lines) = printk("%lld %llu %lx", [u64::MAX, u64::MAX, 1 << 40], &[]);
    assert_eq!(lines, [format!("-1 {} 10000000000", u64::MAX)]);
}

#[test]
fn trace_printk_reads_strings() {
    let os_str = vaddr(1, 512 - 256);
    let (r0, lines) = printk("name=%s!", [os_str, 0, 0], b"hello\0");
    assert_eq!(lines, ["name=hello!"]);
    assert_eq!(r0, 11);
}

#[test]
fn trace_printk_refuses_what_the_kernel_refuses() {
    assert_eq!(printk("%q", [0; 3], &[]), (EINVAL, vec![]));
    assert_eq!(printk("%d %d %d %d", [0; 3], &[]), (EINVAL, vec![]));
}

#[test]
fn ringbuf_reserve_write_submit_and_output() {
    let mut maps = MapTable::new();
    let id = maps.insert(Box::new(FakeRingbuf::new(64)));
    let os = FakeOs::default();
    let p = prog![
        ld_map_fd(1, id),
        mov64_imm(2, 8),
        mov64_imm(3, 0),
        call(helper::RINGBUF_RESERVE),
        jmp_imm(JEQ, 0, 0, 6),
        st(DW, 0, 0, 77),
        mov64_reg(1, 0),
        mov64_imm(2, 0),
        call(helper::RINGBUF_SUBMIT),
        mov64_imm(0, 1),
        exit(),
        mov64_imm(0, 2),
        exit(),
    ];
    assert_eq!(run_with(p, &mut maps, &os, &mut []), Ok(1));
    let rb = maps.get(id).unwrap();
    assert_eq!(&rb.values()[8..16], &77u64.to_le_bytes(), "the sample is in the map's region after its header");
    let out = prog![
        st(DW, 10, -8, 5),
        ld_map_fd(1, id),
        mov64_reg(2, 10),
        alu64_imm(ADD, 2, -8),
        mov64_imm(3, 8),
        mov64_imm(4, 0),
        call(helper::RINGBUF_OUTPUT),
        exit(),
    ];
    assert_eq!(run_with(out, &mut maps, &os, &mut []), Ok(0));
    let query = prog![ld_map_fd(1, id), mov64_imm(2, 1), call(helper::RINGBUF_QUERY), exit()];
    assert_eq!(run_with(query, &mut maps, &os, &mut []), Ok(64));
    let too_big = prog![ld_map_fd(1, id), mov64_imm(2, 100), mov64_imm(3, 0), call(helper::RINGBUF_RESERVE), exit()];
    assert_eq!(run_with(too_big, &mut maps, &os, &mut []), Ok(0));
}

#[test]
fn unknown_helpers_fault_and_are_not_known() {
    let os = FakeOs::default();
    let mut maps = MapTable::new();
    let mut env = Env::new(&os, &mut maps, &mut []);
    assert!(matches!(helpers::call(&mut env, 3, 9999, [0; 5]), Err(Fault::Helper { pc: 3, id: 9999, .. })));
    assert!(!helpers::known(9999));
    assert!(helpers::known(helper::KTIME_GET_NS));
}
