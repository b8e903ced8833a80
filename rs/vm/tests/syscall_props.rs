//! Property tests of the `bpf(2)` surface: whatever bytes a caller passes
//! as `union bpf_attr`, the runtime answers with a result or an errno and
//! never panics, and what it created stays consistent (every fd it hands
//! out names a live object until closed).

mod common;

use common::insns::{bytes, ret, ret_using};
use common::FakeOs;
use proctap_vm::consts::{cmd, map_type, prog_type};
use proctap_vm::runtime::Runtime;
use proctap_vm::syscall::ATTR_SIZE;
use proptest::prelude::*;

/// A runtime with a hash map (fd 3), an array (fd 4), a program (fd 5)
/// and a tracepoint hook, and user memory with valid keys, values and a
/// program image at known addresses.
fn setup() -> (Runtime<FakeOs>, Vec<u64>) {
    let mut rt = Runtime::new(FakeOs::new());
    let d = |t, k, v, n| proctap_vm::map::MapDef {
        map_type: t,
        key_size: k,
        value_size: v,
        max_entries: n,
        ..Default::default()
    };
    rt.create_map(&d(map_type::HASH, 4, 8, 4)).unwrap();
    rt.create_map(&d(map_type::ARRAY, 4, 8, 4)).unwrap();
    rt.prog_load("p", prog_type::RAW_TRACEPOINT, ret(0)).unwrap();
    rt.register_tracepoint("tp").unwrap();
    let os = rt.os();
    let addrs = vec![
        os.alloc(&[1, 0, 0, 0]),
        os.alloc_zeroed(64),
        os.alloc(&bytes(&ret_using(3, 1))),
        os.alloc_str("GPL"),
        os.alloc_str("tp"),
        0,
        0xdead_0000,
    ];
    (rt, addrs)
}

/// An attr: random bytes, with some u64 slots set to known user addresses
/// and some u32 slots to small numbers (fds, sizes), so the commands get
/// past their first checks.
/// (command, attr bytes, (u64 slot, address index), (u32 slot, value)).
type RandomAttr = (u32, Vec<u8>, Vec<(usize, usize)>, Vec<(usize, u32)>);

fn attr_strategy() -> impl Strategy<Value = RandomAttr> {
    (
        prop_oneof![0u32..40, Just(cmd::MAP_UPDATE_ELEM), Just(cmd::PROG_LOAD), Just(cmd::PROG_TEST_RUN)],
        prop::collection::vec(any::<u8>(), 0..ATTR_SIZE + 16),
        prop::collection::vec((0usize..21, 0usize..7), 0..6),
        prop::collection::vec((0usize..42, 0u32..8), 0..8),
    )
}

proptest! {
    #[test]
    fn random_attrs_never_panic((c, mut raw, ptrs, small) in attr_strategy()) {
        let (mut rt, addrs) = setup();
        for (slot, which) in ptrs {
            if slot * 8 + 8 <= raw.len() {
                raw[slot * 8..slot * 8 + 8].copy_from_slice(&addrs[which].to_le_bytes());
            }
        }
        for (slot, v) in small {
            if slot * 4 + 4 <= raw.len() {
                raw[slot * 4..slot * 4 + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        if c == cmd::MAP_CREATE && raw.len() >= 16 {
            // Keep the sizes small: a huge map is a real allocation.
            for at in [4, 8, 12] {
                raw[at + 2] = 0;
                raw[at + 3] = 0;
            }
        }
        let _ = rt.bpf(c, &mut raw);
        // Every open fd still names a live object.
        let open: Vec<_> = rt.fds().iter().collect();
        for (fd, obj) in open {
            match obj {
                proctap_vm::runtime::Object::Map(id) => prop_assert!(rt.map_alive(id), "fd {fd}"),
                proctap_vm::runtime::Object::Prog(id) => prop_assert!(rt.prog_alive(id), "fd {fd}"),
                proctap_vm::runtime::Object::Link(id) => prop_assert!(rt.link_info(id).is_some(), "fd {fd}"),
            }
        }
        let _ = rt.run("tp", &mut [0u8; 16]);
    }

    #[test]
    fn closing_in_any_order_frees_everything(order in Just((3u32..9).collect::<Vec<_>>()).prop_shuffle()) {
        let mut rt = Runtime::new(FakeOs::new());
        rt.register_tracepoint("tp").unwrap();
        let d = |t, k, v| proctap_vm::map::MapDef { map_type: t, key_size: k, value_size: v, max_entries: 2, ..Default::default() };
        let m = rt.create_map(&d(map_type::ARRAY, 4, 4)).unwrap();
        let pa = rt.create_map(&d(map_type::PROG_ARRAY, 4, 4)).unwrap();
        let p1 = rt.prog_load("a", prog_type::RAW_TRACEPOINT, ret_using(m, 0)).unwrap();
        let p2 = rt.prog_load("b", prog_type::RAW_TRACEPOINT, ret_using(pa, 0)).unwrap();
        rt.map_update(pa, &0u32.to_le_bytes(), &p1.to_le_bytes(), 0).unwrap();
        rt.map_update(pa, &1u32.to_le_bytes(), &p2.to_le_bytes(), 0).unwrap();
        let l1 = rt.attach_tracepoint(p1, "tp").unwrap();
        let l2 = rt.attach_tracepoint(p2, "tp").unwrap();
        prop_assert_eq!(vec![m, pa, p1, p2, l1, l2], (3u32..9).collect::<Vec<_>>());
        for fd in order {
            rt.close(fd).unwrap();
            prop_assert_eq!(rt.run("tp", &mut [0u8; 8]).unwrap().iter().filter(|r| r.result.is_err()).count(), 0);
        }
        prop_assert!(rt.maps().len() == 2 && !rt.map_alive(0) && !rt.map_alive(1));
        prop_assert!(!rt.prog_alive(0) && !rt.prog_alive(1));
        prop_assert!(rt.run("tp", &mut []).unwrap().is_empty());
    }
}
