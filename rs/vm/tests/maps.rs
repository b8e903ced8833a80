//! Every map type's semantics as Linux has them: creation checks, flags,
//! full maps, iteration, LRU eviction order, per-CPU isolation, the
//! ringbuf's layout, wrap padding, busy records and consume order.

use proctap_vm::consts::{map_type, ringbuf as rb, update};
use proctap_vm::map::{self, flags, Map, MapDef};
use proctap_vm::retcode::Errno;

const CPUS: u32 = 4;

fn def(map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> MapDef {
    MapDef { map_type, key_size, value_size, max_entries, flags: 0, name: "m".into() }
}

fn new_map(map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> Box<dyn Map> {
    map::create(&def(map_type, key_size, value_size, max_entries), CPUS).expect("map")
}

fn k(i: u32) -> [u8; 4] {
    i.to_le_bytes()
}

fn v8(x: u64) -> [u8; 8] {
    x.to_le_bytes()
}

fn read(m: &dyn Map, key: &[u8]) -> Result<Vec<u8>, Errno> {
    let mut out = vec![0u8; m.syscall_value_size()];
    m.lookup_copy(key, &mut out).map(|_| out)
}

fn keys(m: &dyn Map) -> Vec<Vec<u8>> {
    let mut seen = Vec::new();
    let mut next = vec![0u8; m.def().key_size as usize];
    let mut prev: Option<Vec<u8>> = None;
    while m.get_next_key(prev.as_deref(), &mut next).is_ok() {
        seen.push(next.clone());
        prev = Some(next.clone());
        assert!(seen.len() <= 10_000, "iteration does not end");
    }
    seen
}

#[test]
fn creation_checks_follow_linux() {
    let bad = [
        (def(map_type::ARRAY, 8, 4, 1), Errno::EINVAL),
        (def(map_type::ARRAY, 4, 0, 1), Errno::EINVAL),
        (def(map_type::ARRAY, 4, 4, 0), Errno::EINVAL),
        (def(map_type::HASH, 0, 4, 1), Errno::EINVAL),
        (def(map_type::HASH, 4, 4, 0), Errno::EINVAL),
        (def(map_type::HASH, 513, 4, 1), Errno::E2BIG),
        (def(map_type::PERCPU_HASH, 4, 40_000, 1), Errno::E2BIG),
        (def(map_type::RINGBUF, 0, 0, 4096 * 3), Errno::EINVAL),
        (def(map_type::RINGBUF, 0, 0, 2048), Errno::EINVAL),
        (def(map_type::RINGBUF, 4, 0, 4096), Errno::EINVAL),
        (def(map_type::PROG_ARRAY, 4, 8, 4), Errno::EINVAL),
        (def(map_type::PROG_ARRAY, 8, 4, 4), Errno::EINVAL),
        (def(4242, 4, 4, 4), Errno::EINVAL),
        (def(map_type::ARRAY, 4, 1 << 20, 1 << 16), Errno::E2BIG),
    ];
    for (d, want) in bad {
        assert_eq!(map::create(&d, CPUS).err(), Some(want), "{d:?}");
    }
    let mut d = def(map_type::ARRAY, 4, 4, 1);
    d.flags = flags::RDONLY | flags::WRONLY;
    assert_eq!(map::create(&d, CPUS).err(), Some(Errno::EINVAL));
    d.flags = 1 << 20;
    assert_eq!(map::create(&d, CPUS).err(), Some(Errno::EINVAL));
    d.flags = flags::MMAPABLE;
    assert!(map::create(&d, CPUS).is_ok());
    d.map_type = map_type::PERCPU_ARRAY;
    assert_eq!(map::create(&d, CPUS).err(), Some(Errno::EINVAL), "per-CPU arrays are not mmapable");
    let mut h = def(map_type::LRU_HASH, 4, 4, 4);
    h.flags = flags::NO_PREALLOC;
    assert_eq!(map::create(&h, CPUS).err(), Some(Errno::ENOTSUPP));
    h.map_type = map_type::HASH;
    assert!(map::create(&h, CPUS).is_ok(), "NO_PREALLOC is accepted for plain hashes");
    h.flags = flags::NO_COMMON_LRU;
    assert_eq!(map::create(&h, CPUS).err(), Some(Errno::EINVAL));
    assert!(map::create(&def(map_type::RINGBUF, 0, 0, 4096 * 4), CPUS).is_ok());
}

#[test]
fn array_elements_exist_zeroed_and_refuse_noexist_and_delete() {
    let mut m = new_map(map_type::ARRAY, 4, 6, 3);
    assert_eq!(read(&*m, &k(2)), Ok(vec![0; 6]));
    assert_eq!(read(&*m, &k(3)), Err(Errno::ENOENT));
    assert_eq!(m.update_copy(&k(1), &[1, 2, 3, 4, 5, 6], update::NOEXIST), Err(Errno::EEXIST));
    assert_eq!(m.update_copy(&k(3), &[0; 6], update::ANY), Err(Errno::E2BIG));
    assert_eq!(m.update_copy(&k(1), &[0; 6], update::F_LOCK), Err(Errno::EINVAL));
    assert_eq!(m.update_copy(&k(1), &[0; 6], 7), Err(Errno::EINVAL));
    m.update_copy(&k(1), &[1, 2, 3, 4, 5, 6], update::EXIST).unwrap();
    assert_eq!(read(&*m, &k(1)), Ok(vec![1, 2, 3, 4, 5, 6]));
    assert_eq!(m.delete(&k(1)), Err(Errno::EINVAL));
    // The program view: an offset into the arena, 8-byte slots.
    assert_eq!(m.slot_size(), 8);
    let off = m.lookup(&k(1), 0).unwrap() as usize;
    assert_eq!(off, 8);
    assert_eq!(&m.values()[off..off + 6], &[1, 2, 3, 4, 5, 6]);
    assert_eq!(m.lookup(&k(3), 0), None);
    m.update(&k(2), &[9; 6], update::ANY, 0).unwrap();
    assert_eq!(read(&*m, &k(2)), Ok(vec![9; 6]));
}

#[test]
fn array_iteration_covers_every_index_and_restarts_out_of_range() {
    let m = new_map(map_type::ARRAY, 4, 4, 3);
    assert_eq!(keys(&*m), vec![k(0).to_vec(), k(1).to_vec(), k(2).to_vec()]);
    let mut next = [0u8; 4];
    m.get_next_key(Some(&k(77)), &mut next).unwrap();
    assert_eq!(next, k(0));
    assert_eq!(m.get_next_key(Some(&k(2)), &mut next), Err(Errno::ENOENT));
}

#[test]
fn percpu_array_isolates_cpus_and_rounds_syscall_values() {
    let mut m = new_map(map_type::PERCPU_ARRAY, 4, 4, 2);
    assert_eq!(m.syscall_value_size(), CPUS as usize * 8);
    m.update(&k(1), &7u32.to_le_bytes(), update::ANY, 2).unwrap();
    let on2 = m.lookup(&k(1), 2).unwrap() as usize;
    let on0 = m.lookup(&k(1), 0).unwrap() as usize;
    assert_ne!(on0, on2);
    assert_eq!(&m.values()[on2..on2 + 4], &7u32.to_le_bytes());
    assert_eq!(&m.values()[on0..on0 + 4], &[0; 4]);
    let all = read(&*m, &k(1)).unwrap();
    assert_eq!(all.len(), 32);
    assert_eq!(&all[16..20], &7u32.to_le_bytes());
    assert!(all[..16].iter().chain(&all[20..]).all(|b| *b == 0));
    let mut set = vec![0u8; 32];
    for cpu in 0..4u8 {
        set[cpu as usize * 8] = cpu + 10;
    }
    m.update_copy(&k(0), &set, update::ANY).unwrap();
    for cpu in 0..4 {
        let off = m.lookup(&k(0), cpu).unwrap() as usize;
        assert_eq!(m.values()[off], cpu as u8 + 10);
    }
    assert_eq!(m.update_copy(&k(0), &[0; 4], update::ANY), Err(Errno::EINVAL), "one CPU's value is not enough");
    assert_eq!(m.lookup(&k(0), CPUS), None);
}

#[test]
fn hash_honours_flags_and_fills_up() {
    let mut m = new_map(map_type::HASH, 4, 8, 2);
    assert_eq!(m.update_copy(&k(1), &v8(1), update::EXIST), Err(Errno::ENOENT));
    m.update_copy(&k(1), &v8(1), update::NOEXIST).unwrap();
    assert_eq!(m.update_copy(&k(1), &v8(2), update::NOEXIST), Err(Errno::EEXIST));
    m.update_copy(&k(1), &v8(3), update::EXIST).unwrap();
    assert_eq!(read(&*m, &k(1)), Ok(v8(3).to_vec()));
    m.update_copy(&k(2), &v8(4), update::ANY).unwrap();
    assert_eq!(m.update_copy(&k(5), &v8(5), update::ANY), Err(Errno::E2BIG), "full");
    m.update_copy(&k(2), &v8(6), update::ANY).expect("replacing in a full map works");
    assert_eq!(m.update_copy(&k(2), &v8(6), update::F_LOCK), Err(Errno::EINVAL));
    assert_eq!(m.delete(&k(9)), Err(Errno::ENOENT));
    m.delete(&k(1)).unwrap();
    assert_eq!(read(&*m, &k(1)), Err(Errno::ENOENT));
    m.update_copy(&k(5), &v8(5), update::ANY).expect("room again after a delete");
    assert_eq!(m.update_copy(&[1, 2], &v8(5), update::ANY), Err(Errno::EINVAL), "short key");
    assert_eq!(m.update_copy(&k(5), &[1], update::ANY), Err(Errno::EINVAL), "short value");
}

#[test]
fn hash_value_offsets_stay_put_while_the_key_stays() {
    let mut m = new_map(map_type::HASH, 4, 4, 8);
    m.update(&k(1), &[1; 4], update::ANY, 0).unwrap();
    let off = m.lookup(&k(1), 0).unwrap();
    m.update(&k(2), &[2; 4], update::ANY, 0).unwrap();
    m.update(&k(1), &[3; 4], update::ANY, 0).unwrap();
    assert_eq!(m.lookup(&k(1), 0), Some(off));
    assert_eq!(&m.values()[off as usize..off as usize + 4], &[3; 4]);
    assert_eq!(m.lookup(&k(3), 0), None);
}

#[test]
fn hash_iteration_visits_each_key_once() {
    let mut m = new_map(map_type::HASH, 4, 4, 64);
    let ins: Vec<u32> = (0..40).map(|i| i * 7919 % 1000).collect();
    for i in &ins {
        m.update_copy(&i.to_be_bytes(), &[0; 4], update::ANY).unwrap();
    }
    let mut got = keys(&*m);
    got.sort();
    let mut want: Vec<Vec<u8>> = ins.iter().map(|i| i.to_be_bytes().to_vec()).collect();
    want.sort();
    assert_eq!(got, want, "every key once");
    let mut first = [0u8; 4];
    m.get_next_key(None, &mut first).unwrap();
    let mut next = [0u8; 4];
    m.get_next_key(Some(&5000u32.to_be_bytes()), &mut next).unwrap();
    assert_eq!(next, first, "a missing key restarts at the first");
    // Deleting behind the cursor, as a draining loop does, still ends.
    let mut drained = 0;
    let mut cur: Option<[u8; 4]> = None;
    while m.get_next_key(cur.as_ref().map(|c| &c[..]), &mut next).is_ok() {
        m.delete(&next).unwrap();
        cur = Some(next);
        drained += 1;
        assert!(drained <= 40);
    }
    assert_eq!(drained, 40);
    let empty = new_map(map_type::HASH, 4, 4, 4);
    assert_eq!(empty.get_next_key(None, &mut next), Err(Errno::ENOENT));
}

#[test]
fn lru_evicts_the_least_recently_used() {
    let mut m = new_map(map_type::LRU_HASH, 4, 4, 3);
    for i in 1..=3 {
        m.update_copy(&k(i), &[i as u8; 4], update::ANY).unwrap();
    }
    // Use 1 from a program, update 2: 3 is now the oldest.
    assert!(m.lookup(&k(1), 0).is_some());
    m.update_copy(&k(2), &[22; 4], update::EXIST).unwrap();
    // A syscall lookup does not refresh (as Linux's).
    read(&*m, &k(3)).unwrap();
    m.update_copy(&k(4), &[4; 4], update::NOEXIST).expect("LRU evicts instead of E2BIG");
    assert_eq!(read(&*m, &k(3)), Err(Errno::ENOENT));
    // Order now (oldest first): 1, 2, 4.
    m.update(&k(5), &[5; 4], update::ANY, 0).unwrap();
    assert_eq!(read(&*m, &k(1)), Err(Errno::ENOENT));
    m.delete(&k(2)).unwrap();
    m.update_copy(&k(6), &[6; 4], update::ANY).unwrap();
    assert_eq!(read(&*m, &k(4)), Ok(vec![4; 4]), "a free slot is used before evicting");
    assert_eq!(keys(&*m).len(), 3);
}

#[test]
fn percpu_hash_program_update_touches_one_cpu() {
    for t in [map_type::PERCPU_HASH, map_type::LRU_PERCPU_HASH] {
        let mut m = new_map(t, 4, 2, 4);
        assert_eq!(m.syscall_value_size(), 32);
        m.update_copy(&k(1), &[0xff; 32], update::ANY).unwrap();
        m.update(&k(1), &[1, 1], update::ANY, 3).unwrap();
        let all = read(&*m, &k(1)).unwrap();
        assert_eq!(&all[24..26], &[1, 1]);
        assert_eq!(&all[..2], &[0xff, 0xff], "other CPUs keep theirs");
        // A new element created by a program: other CPUs read zero.
        m.update(&k(2), &[5, 5], update::NOEXIST, 1).unwrap();
        let all = read(&*m, &k(2)).unwrap();
        assert_eq!(&all[8..10], &[5, 5]);
        assert!(all[..8].iter().chain(&all[10..]).all(|b| *b == 0));
        let (a, b) = (m.lookup(&k(2), 0).unwrap(), m.lookup(&k(2), 1).unwrap());
        assert_eq!(b - a, 8);
    }
}

#[test]
fn prog_array_holds_ids_and_hides_them_from_programs() {
    let mut m = new_map(map_type::PROG_ARRAY, 4, 4, 4);
    m.update_copy(&k(2), &7u32.to_le_bytes(), update::ANY).unwrap();
    assert_eq!(m.prog_at(2), Some(7));
    assert_eq!(m.prog_at(1), None);
    assert_eq!(m.prog_at(100), None);
    assert_eq!(read(&*m, &k(2)), Ok(7u32.to_le_bytes().to_vec()));
    assert_eq!(read(&*m, &k(1)), Err(Errno::ENOENT));
    assert_eq!(m.lookup(&k(2), 0), None, "programs cannot look up");
    assert_eq!(m.update_copy(&k(4), &[0; 4], update::ANY), Err(Errno::E2BIG));
    assert_eq!(m.update_copy(&k(1), &[0; 4], update::NOEXIST), Err(Errno::EINVAL));
    assert_eq!(m.delete(&k(2)), Err(Errno::EINVAL), "programs do not delete here");
    let pa = m.as_prog_array_mut().unwrap();
    assert_eq!(pa.clear(&k(2)), Ok(7));
    assert_eq!(pa.clear(&k(2)), Err(Errno::ENOENT));
    assert_eq!(pa.clear(&k(9)), Err(Errno::E2BIG));
    assert_eq!(m.prog_at(2), None);
}

fn ring(size: u32) -> Box<dyn Map> {
    new_map(map_type::RINGBUF, 0, 0, size)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn ringbuf_lays_records_out_as_linux() {
    let mut m = ring(4096);
    let off = m.ringbuf_reserve(5).unwrap();
    assert_eq!(off, 8, "the sample follows its 8-byte header");
    m.values_mut()[8..13].copy_from_slice(b"hello");
    let r = m.as_ringbuf_mut().unwrap();
    let pages = r.pages();
    assert_eq!(pages.len(), 2 * 4096 + 4096);
    assert_eq!(u64_at(pages, 4096), 16, "producer_pos counts the header and rounds to 8");
    assert_eq!(u64_at(pages, 0), 0);
    assert_eq!(u32_at(pages, 8192), 5 | rb::BUSY_BIT);
    assert_eq!(u32_at(pages, 8196), 2, "pg_off counts pages from the consumer page");
    m.ringbuf_commit(off, false).unwrap();
    assert_eq!(u32_at(m.as_ringbuf_mut().unwrap().pages(), 8192), 5);
    assert_eq!(m.ringbuf_commit(off, false), Err(Errno::EINVAL), "committed twice");
    let off2 = m.ringbuf_reserve(1).unwrap();
    m.ringbuf_commit(off2, true).unwrap();
    assert_eq!(u32_at(m.values(), off2 as usize - 8), 1 | rb::DISCARD_BIT);
    let mut got = Vec::new();
    let n = m.as_ringbuf_mut().unwrap().consume(|s| got.push(s.to_vec()));
    assert_eq!((n, got), (1, vec![b"hello".to_vec()]));
    assert_eq!(u64_at(m.as_ringbuf_mut().unwrap().pages(), 0), 32, "consumer_pos passed both records");
    assert_eq!(m.ringbuf_query(proctap_vm::map::ringbuf::query::AVAIL_DATA), 0);
    assert_eq!(m.update_copy(&[], &[], 0), Err(Errno::ENOTSUPP));
}

#[test]
fn ringbuf_refuses_what_does_not_fit() {
    let mut m = ring(4096);
    assert_eq!(m.ringbuf_reserve(4096), None, "bigger than the ring with its header");
    let a = m.ringbuf_reserve(4096 - 16).unwrap();
    // 4080 used; Linux keeps the producer less than the size ahead.
    assert_eq!(m.ringbuf_reserve(0), None);
    m.ringbuf_commit(a, false).unwrap();
    assert_eq!(m.ringbuf_reserve(1), None, "committed but not consumed still takes room");
    assert_eq!(m.ringbuf_output(b"x"), Err(Errno::EAGAIN));
    assert_eq!(m.as_ringbuf_mut().unwrap().consume(|_| {}), 1);
    assert!(m.ringbuf_reserve(1).is_some());
}

#[test]
fn ringbuf_wraps_with_a_discarded_padding_record() {
    let mut m = ring(4096);
    m.ringbuf_output(&[1; 4000]).unwrap();
    assert_eq!(m.as_ringbuf_mut().unwrap().consume(|_| {}), 1);
    // 4008 bytes used so far; a 100-byte sample does not fit in the 88 left.
    let off = m.ringbuf_reserve(100).unwrap();
    assert_eq!(off, 8, "the record starts over at data offset 0");
    let pad = u32_at(m.values(), 4008);
    assert_eq!(pad, (88 - 8) | rb::DISCARD_BIT, "padding up to the end");
    m.values_mut()[8..108].copy_from_slice(&[7; 100]);
    m.ringbuf_commit(off, false).unwrap();
    let r = m.as_ringbuf_mut().unwrap();
    assert_eq!(r.producer_pos(), 4008 + 88 + 112);
    let mut got = Vec::new();
    assert_eq!(r.consume(|s| got.push(s.to_vec())), 1);
    assert_eq!(got, vec![vec![7; 100]]);
    assert_eq!(r.consumer_pos(), r.producer_pos());
}

#[test]
fn ringbuf_busy_records_block_later_ones() {
    let mut m = ring(4096);
    let a = m.ringbuf_reserve(8).unwrap();
    m.ringbuf_output(b"second").unwrap();
    let c = m.ringbuf_reserve(8).unwrap();
    m.values_mut()[c as usize..c as usize + 8].copy_from_slice(b"third...");
    m.ringbuf_commit(c, false).unwrap();
    let mut got: Vec<Vec<u8>> = Vec::new();
    assert_eq!(m.as_ringbuf_mut().unwrap().consume(|s| got.push(s.to_vec())), 0, "the first is busy");
    assert_eq!(m.as_ringbuf_mut().unwrap().consumer_pos(), 0);
    m.values_mut()[a as usize..a as usize + 8].copy_from_slice(b"first...");
    m.ringbuf_commit(a, false).unwrap();
    assert_eq!(m.as_ringbuf_mut().unwrap().consume(|s| got.push(s.to_vec())), 3);
    assert_eq!(got, vec![b"first...".to_vec(), b"second".to_vec(), b"third...".to_vec()]);
}

#[test]
fn ringbuf_follows_a_consumer_that_writes_the_consumer_page() {
    let mut m = ring(4096);
    m.ringbuf_output(&[1; 2000]).unwrap();
    m.ringbuf_output(&[2; 2000]).unwrap();
    assert_eq!(m.ringbuf_reserve(100), None);
    let r = m.as_ringbuf_mut().unwrap();
    let first_end = 2008u64;
    r.consumer_page_mut()[..8].copy_from_slice(&first_end.to_le_bytes());
    assert!(m.ringbuf_reserve(100).is_some(), "the room the mmap consumer released");
    let mut got = Vec::new();
    m.as_ringbuf_mut().unwrap().consume(|s| got.push(s[0]));
    assert_eq!(got, vec![2], "the first record was already consumed through the page");
}

#[test]
fn program_access_flags_limit_the_program_side() {
    for t in [map_type::ARRAY, map_type::HASH] {
        let mut d = def(t, 4, 4, 2);
        d.flags = flags::RDONLY_PROG;
        let mut ro = map::create(&d, CPUS).unwrap();
        assert_eq!(ro.update(&k(0), &[1; 4], update::ANY, 0), Err(Errno::EPERM));
        ro.update_copy(&k(0), &[1; 4], update::ANY).expect("bpf(2) still writes");
        assert!(ro.lookup(&k(0), 0).is_some());
        d.flags = map::flags::WRONLY_PROG;
        let mut wo = map::create(&d, CPUS).unwrap();
        wo.update(&k(0), &[1; 4], update::ANY, 0).unwrap();
        assert_eq!(wo.lookup(&k(0), 0), None, "programs cannot read it");
        assert_eq!(read(&*wo, &k(0)), Ok(vec![1; 4]));
    }
}
