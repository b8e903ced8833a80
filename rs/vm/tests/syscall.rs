//! The raw `bpf(2)` surface: `union bpf_attr` layouts as Linux's, user
//! pointers through the OS, and the errnos (EBADF, EINVAL, E2BIG, ENOENT,
//! EEXIST, EFAULT, ENOSPC).

mod common;

use common::insns::{bytes, ld_map_fd, ret, ret_using};
use common::{attr, FakeOs};
use proctap_vm::consts::{cmd, map_type, prog_type, update};
use proctap_vm::retcode::Errno;
use proctap_vm::runtime::Runtime;
use proctap_vm::syscall::{ATTR_SIZE, KPROBE_MULTI_RETURN, TRACE_KPROBE_MULTI};

/// A user address nothing is mapped at.
const BAD: u64 = 0xdead_0000;

fn rt() -> Runtime<FakeOs> {
    Runtime::new(FakeOs::new())
}

fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

fn le64(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

fn map_create(rt: &mut Runtime<FakeOs>, t: u32, ks: u32, vs: u32, max: u32, name: &[u8]) -> Result<i64, Errno> {
    let mut a = attr(72, &[(0, &le32(t)), (4, &le32(ks)), (8, &le32(vs)), (12, &le32(max)), (28, name)]);
    rt.bpf(cmd::MAP_CREATE, &mut a)
}

/// An ELEM command on `fd` with user pointers.
fn elem(rt: &mut Runtime<FakeOs>, c: u32, fd: i64, key: u64, value: u64, flags: u64) -> Result<i64, Errno> {
    let mut a = attr(32, &[(0, &le32(fd as u32)), (8, &le64(key)), (16, &le64(value)), (24, &le64(flags))]);
    rt.bpf(c, &mut a)
}

#[test]
fn map_create_reads_linux_offsets() {
    let mut rt = rt();
    let fd = map_create(&mut rt, map_type::HASH, 8, 16, 32, b"my_map.1\0").unwrap();
    assert_eq!(fd, 3);
    let m = rt.maps().get(rt.map_id(3).unwrap()).unwrap();
    let d = m.def();
    assert_eq!((d.map_type, d.key_size, d.value_size, d.max_entries, d.name.as_str()), (1, 8, 16, 32, "my_map.1"));
    assert_eq!(map_create(&mut rt, map_type::HASH, 8, 16, 32, b"bad-name\0"), Err(Errno::EINVAL));
    assert_eq!(map_create(&mut rt, map_type::HASH, 8, 16, 32, b"0123456789abcdef"), Err(Errno::EINVAL), "no NUL");
    assert_eq!(map_create(&mut rt, 99, 4, 4, 1, b""), Err(Errno::EINVAL));
    assert_eq!(map_create(&mut rt, map_type::ARRAY, 4, 4, 0, b""), Err(Errno::EINVAL));
    // A short attr (libbpf passes offsetofend of the last field it sets).
    let mut short = attr(16, &[(0, &le32(map_type::ARRAY)), (4, &le32(4)), (8, &le32(4)), (12, &le32(1))]);
    assert_eq!(rt.bpf(cmd::MAP_CREATE, &mut short), Ok(4));
}

#[test]
fn attr_tails_must_be_zero() {
    let mut rt = rt();
    let base = [(0, &le32(map_type::ARRAY)[..]), (4, &le32(4)), (8, &le32(4)), (12, &le32(1))];
    let mut big = attr(ATTR_SIZE + 64, &base);
    assert_eq!(rt.bpf(cmd::MAP_CREATE, &mut big), Ok(3), "a longer zero tail is fine");
    big[ATTR_SIZE + 10] = 1;
    assert_eq!(rt.bpf(cmd::MAP_CREATE, &mut big), Err(Errno::E2BIG));
    let mut past_last = attr(ATTR_SIZE, &base);
    past_last[100] = 1;
    assert_eq!(rt.bpf(cmd::MAP_CREATE, &mut past_last), Err(Errno::EINVAL));
    let mut e = attr(40, &[(0, &le32(3)), (32, &[1])]);
    assert_eq!(rt.bpf(cmd::MAP_LOOKUP_ELEM, &mut e), Err(Errno::EINVAL), "past MAP_*_ELEM's flags");
    assert_eq!(rt.bpf(1000, &mut [0u8; 8]), Err(Errno::EINVAL));
    assert_eq!(rt.bpf(cmd::PROG_ATTACH, &mut [0u8; 32]), Err(Errno::EINVAL));
}

#[test]
fn elem_commands_copy_through_user_memory() {
    let mut rt = rt();
    let fd = map_create(&mut rt, map_type::HASH, 4, 8, 2, b"h\0").unwrap();
    let os = rt.os();
    let (k1, k2, k3) = (os.alloc(&le32(1)), os.alloc(&le32(2)), os.alloc(&le32(3)));
    let v = os.alloc(&le64(0x1122));
    let out = os.alloc_zeroed(8);
    assert_eq!(elem(&mut rt, cmd::MAP_UPDATE_ELEM, fd, k1, v, update::NOEXIST), Ok(0));
    assert_eq!(elem(&mut rt, cmd::MAP_UPDATE_ELEM, fd, k1, v, update::NOEXIST), Err(Errno::EEXIST));
    assert_eq!(elem(&mut rt, cmd::MAP_UPDATE_ELEM, fd, k2, v, update::EXIST), Err(Errno::ENOENT));
    assert_eq!(elem(&mut rt, cmd::MAP_UPDATE_ELEM, fd, k2, v, update::ANY), Ok(0));
    assert_eq!(elem(&mut rt, cmd::MAP_UPDATE_ELEM, fd, k3, v, update::ANY), Err(Errno::E2BIG));
    assert_eq!(elem(&mut rt, cmd::MAP_LOOKUP_ELEM, fd, k1, out, 0), Ok(0));
    assert_eq!(rt.os().read(out, 8), le64(0x1122));
    assert_eq!(elem(&mut rt, cmd::MAP_LOOKUP_ELEM, fd, k3, out, 0), Err(Errno::ENOENT));
    assert_eq!(elem(&mut rt, cmd::MAP_LOOKUP_ELEM, fd, k1, out, update::F_LOCK), Err(Errno::EINVAL));
    assert_eq!(elem(&mut rt, cmd::MAP_LOOKUP_ELEM, fd, BAD, out, 0), Err(Errno::EFAULT));
    assert_eq!(elem(&mut rt, cmd::MAP_LOOKUP_ELEM, fd, k1, BAD, 0), Err(Errno::EFAULT));
    assert_eq!(elem(&mut rt, cmd::MAP_UPDATE_ELEM, fd, k1, BAD, 0), Err(Errno::EFAULT));
    let short = rt.os().alloc(&[1, 2]);
    assert_eq!(elem(&mut rt, cmd::MAP_LOOKUP_ELEM, fd, short, out, 0), Err(Errno::EFAULT), "a key runs past its block");
    assert_eq!(elem(&mut rt, cmd::MAP_LOOKUP_ELEM, 77, k1, out, 0), Err(Errno::EBADF));
    assert_eq!(elem(&mut rt, cmd::MAP_DELETE_ELEM, fd, k1, 0, 0), Ok(0));
    assert_eq!(elem(&mut rt, cmd::MAP_DELETE_ELEM, fd, k1, 0, 0), Err(Errno::ENOENT));
    assert_eq!(elem(&mut rt, cmd::MAP_DELETE_ELEM, fd, BAD, 0, 0), Err(Errno::EFAULT));
}

#[test]
fn get_next_key_iterates_from_a_null_key() {
    let mut rt = rt();
    let fd = map_create(&mut rt, map_type::HASH, 4, 4, 8, b"\0").unwrap();
    for i in [5u32, 1, 3] {
        rt.map_update(fd as u32, &i.to_be_bytes(), &[0; 4], 0).unwrap();
    }
    let next = rt.os().alloc_zeroed(4);
    let mut seen = Vec::new();
    let mut key = 0u64;
    while elem(&mut rt, cmd::MAP_GET_NEXT_KEY, fd, key, next, 0).is_ok() {
        let k = rt.os().read(next, 4);
        seen.push(u32::from_be_bytes(k.clone().try_into().unwrap()));
        key = rt.os().alloc(&k);
    }
    seen.sort();
    assert_eq!(seen, vec![1, 3, 5]);
    assert_eq!(elem(&mut rt, cmd::MAP_GET_NEXT_KEY, fd, 0, BAD, 0), Err(Errno::EFAULT));
    let arr = map_create(&mut rt, map_type::ARRAY, 4, 4, 2, b"\0").unwrap();
    let last = rt.os().alloc(&le32(1));
    assert_eq!(elem(&mut rt, cmd::MAP_GET_NEXT_KEY, arr, last, next, 0), Err(Errno::ENOENT));
}

#[test]
fn per_cpu_values_come_out_for_every_cpu() {
    let mut rt = rt();
    let fd = map_create(&mut rt, map_type::PERCPU_ARRAY, 4, 4, 1, b"\0").unwrap();
    let values: Vec<u8> = (0..32).collect();
    let (k, v, out) = (rt.os().alloc(&le32(0)), rt.os().alloc(&values), rt.os().alloc_zeroed(32));
    elem(&mut rt, cmd::MAP_UPDATE_ELEM, fd, k, v, 0).unwrap();
    elem(&mut rt, cmd::MAP_LOOKUP_ELEM, fd, k, out, 0).unwrap();
    assert_eq!(rt.os().read(out, 32), values);
}

/// PROG_LOAD's attr: insns, license, log and name at Linux's offsets.
fn prog_load_attr(rt: &Runtime<FakeOs>, t: u32, insns: &[u8], log: Option<(u64, u32)>, name: &[u8]) -> Vec<u8> {
    let code = rt.os().alloc(insns);
    let license = rt.os().alloc_str("GPL");
    let (level, buf, size) = log.map_or((0, 0, 0), |(b, s)| (1, b, s));
    attr(
        ATTR_SIZE,
        &[
            (0, &le32(t)),
            (4, &le32(insns.len() as u32 / 8)),
            (8, &le64(code)),
            (16, &le64(license)),
            (24, &le32(level)),
            (28, &le32(size)),
            (32, &le64(buf)),
            (48, name),
        ],
    )
}

#[test]
fn prog_load_reads_insns_and_resolves_map_fds() {
    let mut rt = rt();
    let m = map_create(&mut rt, map_type::ARRAY, 4, 8, 1, b"\0").unwrap();
    let mut a = prog_load_attr(&rt, prog_type::KPROBE, &bytes(&ret_using(m as u32, 5)), None, b"handler\0");
    let fd = rt.bpf(cmd::PROG_LOAD, &mut a).unwrap();
    let p = rt.program(rt.prog_id(fd as u32).unwrap()).unwrap();
    assert_eq!((p.name.as_str(), p.prog_type), ("handler", prog_type::KPROBE));
    assert_eq!(p.insns.len(), 4);
    assert_eq!(p.insns[0].src, 0, "the map reference was resolved");
}

#[test]
fn prog_load_writes_refusals_to_the_log() {
    let mut rt = rt();
    let log = rt.os().alloc_zeroed(256);
    let mut insns = ld_map_fd(1, 55).to_vec();
    insns.extend(ret(0));
    let mut a = prog_load_attr(&rt, prog_type::KPROBE, &bytes(&insns), Some((log, 256)), b"p\0");
    assert_eq!(rt.bpf(cmd::PROG_LOAD, &mut a), Err(Errno::EBADF));
    let text = rt.os().read(log, 256);
    let text = String::from_utf8_lossy(&text[..text.iter().position(|b| *b == 0).unwrap()]).to_string();
    assert!(text.contains("insn 0") && text.contains("fd 55"), "{text}");
    let true_size = u32::from_le_bytes(a[140..144].try_into().unwrap());
    assert_eq!(true_size as usize, text.len() + 1);
    // A log too small for the message: cut and NUL-terminated.
    let small = rt.os().alloc(&[0xff; 128]);
    let mut a = prog_load_attr(&rt, prog_type::KPROBE, &bytes(&insns), Some((small, 128)), b"p\0");
    a[28..32].copy_from_slice(&le32(128));
    rt.bpf(cmd::PROG_LOAD, &mut a).unwrap_err();
    let b = rt.os().read(small, 128);
    assert!(b.contains(&0));
}

#[test]
fn prog_load_checks_its_arguments() {
    let mut rt = rt();
    let code = bytes(&ret(0));
    let mut a = prog_load_attr(&rt, prog_type::KPROBE, &code, Some((rt.os().alloc_zeroed(64), 64)), b"\0");
    assert_eq!(rt.bpf(cmd::PROG_LOAD, &mut a), Err(Errno::EINVAL), "log_size under 128");
    let mut a = prog_load_attr(&rt, prog_type::KPROBE, &code, None, b"\0");
    a[4..8].copy_from_slice(&le32(0));
    assert_eq!(rt.bpf(cmd::PROG_LOAD, &mut a), Err(Errno::EINVAL), "no instructions");
    let mut a = prog_load_attr(&rt, prog_type::KPROBE, &code, None, b"\0");
    a[8..16].copy_from_slice(&le64(BAD));
    assert_eq!(rt.bpf(cmd::PROG_LOAD, &mut a), Err(Errno::EFAULT));
    let mut a = prog_load_attr(&rt, prog_type::KPROBE, &code, None, b"\0");
    a[16..24].copy_from_slice(&le64(0));
    assert_eq!(rt.bpf(cmd::PROG_LOAD, &mut a), Err(Errno::EFAULT), "no license, as Linux");
    let mut a = prog_load_attr(&rt, prog_type::KPROBE, &code, None, b"a b\0");
    assert_eq!(rt.bpf(cmd::PROG_LOAD, &mut a), Err(Errno::EINVAL), "bad name");
    let mut a = prog_load_attr(&rt, prog_type::KPROBE, &code, None, b"\0");
    a[4..8].copy_from_slice(&le32(2_000_000));
    assert_eq!(rt.bpf(cmd::PROG_LOAD, &mut a), Err(Errno::E2BIG));
}

fn load(rt: &mut Runtime<FakeOs>, t: u32, r0: i32) -> u32 {
    let mut a = prog_load_attr(rt, t, &bytes(&ret(r0)), None, b"\0");
    rt.bpf(cmd::PROG_LOAD, &mut a).unwrap() as u32
}

#[test]
fn raw_tracepoint_open_attaches_by_name() {
    let mut rt = rt();
    rt.register_tracepoint("sys_enter").unwrap();
    let p = load(&mut rt, prog_type::RAW_TRACEPOINT, 3);
    let name = rt.os().alloc_str("sys_enter");
    let mut a = attr(24, &[(0, &le64(name)), (8, &le32(p))]);
    let link = rt.bpf(cmd::RAW_TRACEPOINT_OPEN, &mut a).unwrap();
    assert_eq!(rt.run("sys_enter", &mut []).unwrap()[0].result, Ok(3));
    let missing = rt.os().alloc_str("sys_exit");
    let mut a = attr(24, &[(0, &le64(missing)), (8, &le32(p))]);
    assert_eq!(rt.bpf(cmd::RAW_TRACEPOINT_OPEN, &mut a), Err(Errno::ENOENT));
    let mut a = attr(24, &[(0, &le64(BAD)), (8, &le32(p))]);
    assert_eq!(rt.bpf(cmd::RAW_TRACEPOINT_OPEN, &mut a), Err(Errno::EFAULT));
    let mut a = attr(24, &[(0, &le64(name)), (8, &le32(99))]);
    assert_eq!(rt.bpf(cmd::RAW_TRACEPOINT_OPEN, &mut a), Err(Errno::EBADF));
    let mut d = attr(4, &[(0, &le32(link as u32))]);
    assert_eq!(rt.bpf(cmd::LINK_DETACH, &mut d), Ok(0));
    assert!(rt.run("sys_enter", &mut []).unwrap().is_empty());
    rt.close(link as u32).unwrap();
    assert_eq!(rt.bpf(cmd::LINK_DETACH, &mut d), Err(Errno::EBADF));
}

#[test]
fn link_create_kprobe_multi_attaches_by_symbol() {
    let mut rt = rt();
    rt.register_kprobe("vfs_read").unwrap();
    rt.register_kprobe("vfs_write").unwrap();
    let p = load(&mut rt, prog_type::KPROBE, 8);
    let (s1, s2) = (rt.os().alloc_str("vfs_read"), rt.os().alloc_str("vfs_write"));
    let syms = rt.os().alloc(&[le64(s1), le64(s2)].concat());
    let create = |flags: u32, cnt: u32, syms: u64| {
        attr(
            64,
            &[(0, &le32(p)), (8, &le32(TRACE_KPROBE_MULTI)), (16, &le32(flags)), (20, &le32(cnt)), (24, &le64(syms))],
        )
    };
    rt.bpf(cmd::LINK_CREATE, &mut create(0, 2, syms)).unwrap();
    rt.bpf(cmd::LINK_CREATE, &mut create(KPROBE_MULTI_RETURN, 1, syms)).unwrap();
    let regs = proctap_vm::tracepoints::PtRegs::default();
    assert_eq!(rt.run("kprobe/vfs_write", &mut regs.to_bytes()).unwrap().len(), 1);
    assert_eq!(rt.run("kretprobe/vfs_read", &mut regs.to_bytes()).unwrap().len(), 1);
    assert!(rt.run("kretprobe/vfs_write", &mut regs.to_bytes()).unwrap().is_empty());
    assert_eq!(rt.bpf(cmd::LINK_CREATE, &mut create(0, 0, syms)), Err(Errno::EINVAL));
    assert_eq!(rt.bpf(cmd::LINK_CREATE, &mut create(4, 1, syms)), Err(Errno::EINVAL));
    assert_eq!(rt.bpf(cmd::LINK_CREATE, &mut create(0, 3, syms)), Err(Errno::EFAULT), "syms runs past its block");
    let mut other = create(0, 1, syms);
    other[8..12].copy_from_slice(&le32(0));
    assert_eq!(rt.bpf(cmd::LINK_CREATE, &mut other), Err(Errno::EINVAL), "other attach types");
}

#[test]
fn prog_test_run_reports_retval_and_ctx() {
    let mut rt = rt();
    let p = load(&mut rt, prog_type::SYSCALL, 0x1234);
    let ctx_in = rt.os().alloc(&[1, 2, 3, 4]);
    let ctx_out = rt.os().alloc_zeroed(4);
    let mut a = attr(
        80,
        &[(0, &le32(p)), (32, &le32(3)), (40, &le32(4)), (44, &le32(4)), (48, &le64(ctx_in)), (56, &le64(ctx_out))],
    );
    assert_eq!(rt.bpf(cmd::PROG_TEST_RUN, &mut a), Ok(0));
    assert_eq!(u32::from_le_bytes(a[4..8].try_into().unwrap()), 0x1234);
    assert!(u32::from_le_bytes(a[36..40].try_into().unwrap()) > 0, "the fake clock ticks per read");
    assert_eq!(rt.os().read(ctx_out, 4), vec![1, 2, 3, 4]);
    a[44..48].copy_from_slice(&le32(2));
    assert_eq!(rt.bpf(cmd::PROG_TEST_RUN, &mut a), Err(Errno::ENOSPC));
    assert_eq!(u32::from_le_bytes(a[44..48].try_into().unwrap()), 4, "ctx_size_out says what it needs");
}

#[test]
fn map_freeze_stops_syscall_writes() {
    let mut rt = rt();
    let fd = map_create(&mut rt, map_type::ARRAY, 4, 4, 1, b".rodata\0").unwrap();
    let (k, v) = (rt.os().alloc(&le32(0)), rt.os().alloc(&le32(7)));
    elem(&mut rt, cmd::MAP_UPDATE_ELEM, fd, k, v, 0).unwrap();
    let mut f = attr(4, &[(0, &le32(fd as u32))]);
    assert_eq!(rt.bpf(proctap_vm::syscall::MAP_FREEZE, &mut f), Ok(0));
    assert_eq!(rt.bpf(proctap_vm::syscall::MAP_FREEZE, &mut f), Err(Errno::EBUSY));
    assert_eq!(elem(&mut rt, cmd::MAP_UPDATE_ELEM, fd, k, v, 0), Err(Errno::EPERM));
    let out = rt.os().alloc_zeroed(4);
    elem(&mut rt, cmd::MAP_LOOKUP_ELEM, fd, k, out, 0).unwrap();
    assert_eq!(rt.os().read(out, 4), le32(7));
}

#[test]
fn prog_test_run_checks_its_context() {
    let mut rt = rt();
    let p = load(&mut rt, prog_type::SYSCALL, 1);
    let mut a = attr(80, &[(0, &le32(p)), (40, &le32(70_000)), (48, &le64(rt.os().alloc_zeroed(8)))]);
    assert_eq!(rt.bpf(cmd::PROG_TEST_RUN, &mut a), Err(Errno::EINVAL), "over U16_MAX");
    let mut a = attr(80, &[(0, &le32(p)), (40, &le32(8))]);
    assert_eq!(rt.bpf(cmd::PROG_TEST_RUN, &mut a), Err(Errno::EFAULT), "a size without a pointer");
    let mut a = attr(80, &[(0, &le32(p)), (8, &le32(4))]);
    assert_eq!(rt.bpf(cmd::PROG_TEST_RUN, &mut a), Err(Errno::EINVAL), "packet data is not supported");
    let mut a = attr(80, &[(0, &le32(p))]);
    assert_eq!(rt.bpf(cmd::PROG_TEST_RUN, &mut a), Ok(0), "no context at all");
    assert_eq!(u32::from_le_bytes(a[4..8].try_into().unwrap()), 1);
}

#[test]
fn tools_can_list_objects_by_id() {
    let mut rt = rt();
    let m1 = map_create(&mut rt, map_type::HASH, 4, 8, 16, b"first\0").unwrap();
    let m2 = map_create(&mut rt, map_type::ARRAY, 4, 4, 2, b"second\0").unwrap();
    let mut a = prog_load_attr(&rt, prog_type::KPROBE, &bytes(&ret_using(m2 as u32, 5)), None, b"lister\0");
    let p = rt.bpf(cmd::PROG_LOAD, &mut a).unwrap() as u32;
    rt.close(m1 as u32).unwrap();
    // MAP_GET_NEXT_ID from 0: the live maps, ids from 1.
    let mut ids = Vec::new();
    let mut start = 0u32;
    loop {
        let mut a = attr(16, &[(0, &le32(start))]);
        match rt.bpf(12, &mut a) {
            Ok(0) => start = u32::from_le_bytes(a[4..8].try_into().unwrap()),
            Err(e) => {
                assert_eq!(e, Errno::ENOENT);
                break;
            }
            other => panic!("{other:?}"),
        }
        ids.push(start);
    }
    assert_eq!(ids, vec![2], "map id 1 was freed with its fd");
    let mut by_id = attr(16, &[(0, &le32(2))]);
    let fd = rt.bpf(14, &mut by_id).unwrap() as u32;
    let mut gone = attr(16, &[(0, &le32(1))]);
    assert_eq!(rt.bpf(14, &mut gone), Err(Errno::ENOENT));
    // OBJ_GET_INFO_BY_FD on the map: struct bpf_map_info.
    let buf = rt.os().alloc_zeroed(104);
    let mut a = attr(16, &[(0, &le32(fd)), (4, &le32(104)), (8, &le64(buf))]);
    rt.bpf(15, &mut a).unwrap();
    let info = rt.os().read(buf, 104);
    let u = |at: usize| u32::from_le_bytes(info[at..at + 4].try_into().unwrap());
    assert_eq!((u(0), u(4), u(8), u(12), u(16)), (map_type::ARRAY, 2, 4, 4, 2));
    assert_eq!(&info[24..31], b"second\0");
    // ... on the program: struct bpf_prog_info with its map ids.
    let (buf, map_ids) = (rt.os().alloc_zeroed(232), rt.os().alloc_zeroed(8));
    let mut info = vec![0u8; 232];
    info[52..56].copy_from_slice(&le32(2));
    info[56..64].copy_from_slice(&le64(map_ids));
    proctap_vm::osutil::Os::copy_to_user(rt.os(), buf, &info).unwrap();
    let mut a = attr(16, &[(0, &le32(p)), (4, &le32(232)), (8, &le64(buf))]);
    rt.bpf(15, &mut a).unwrap();
    let info = rt.os().read(buf, 232);
    let u = |at: usize| u32::from_le_bytes(info[at..at + 4].try_into().unwrap());
    assert_eq!((u(0), u(4), u(20), u(52)), (prog_type::KPROBE, 1, 4 * 8, 1));
    assert_eq!(&info[64..71], b"lister\0");
    assert_eq!(rt.os().read(map_ids, 4), le32(2), "the program uses map id 2");
    // A caller's struct longer than Linux's with a non-zero tail: E2BIG.
    let long = rt.os().alloc(&[1u8; 300]);
    let mut a = attr(16, &[(0, &le32(p)), (4, &le32(300)), (8, &le64(long))]);
    assert_eq!(rt.bpf(15, &mut a), Err(Errno::E2BIG));
}

#[test]
fn lookup_and_delete_pops_a_hash_element() {
    let mut rt = rt();
    let fd = map_create(&mut rt, map_type::HASH, 4, 4, 4, b"\0").unwrap();
    let (k, v, out) = (rt.os().alloc(&le32(1)), rt.os().alloc(&le32(99)), rt.os().alloc_zeroed(4));
    elem(&mut rt, cmd::MAP_UPDATE_ELEM, fd, k, v, 0).unwrap();
    let c = proctap_vm::syscall::MAP_LOOKUP_AND_DELETE_ELEM;
    assert_eq!(elem(&mut rt, c, fd, k, out, 0), Ok(0));
    assert_eq!(rt.os().read(out, 4), le32(99));
    assert_eq!(elem(&mut rt, c, fd, k, out, 0), Err(Errno::ENOENT), "deleted");
    let arr = map_create(&mut rt, map_type::ARRAY, 4, 4, 4, b"\0").unwrap();
    assert_eq!(elem(&mut rt, c, arr, k, out, 0), Err(Errno::ENOTSUPP));
}

#[test]
fn a_log_that_cannot_be_written_fails_the_load_without_leaking_an_fd() {
    let mut rt = rt();
    let mut a = prog_load_attr(&rt, prog_type::KPROBE, &bytes(&ret(0)), Some((BAD, 256)), b"\0");
    assert_eq!(rt.bpf(cmd::PROG_LOAD, &mut a), Err(Errno::EFAULT));
    assert_eq!(rt.fds().iter().count(), 0);
    assert!(!rt.prog_alive(0));
}
