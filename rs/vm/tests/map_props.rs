//! Property tests: the hash maps against a `BTreeMap` model (with an
//! explicit recency list for LRU) under random operation sequences, and
//! the ringbuf against a model of positions and records under random
//! reserve/commit/discard/consume sequences.

use proctap_vm::consts::{map_type, update};
use proctap_vm::map::{self, MapDef};
use proctap_vm::retcode::Errno;
use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Clone)]
enum HashOp {
    Update { key: u8, value: u8, flags: u64, program: bool },
    Delete(u8),
    Lookup { key: u8, program: bool },
    Iterate,
}

/// Keys are one byte below this.
const KEYS: u8 = 40;

fn hash_op() -> impl Strategy<Value = HashOp> {
    prop_oneof![
        4 => (0u8..KEYS, any::<u8>(), 0u64..3, any::<bool>())
            .prop_map(|(key, value, flags, program)| HashOp::Update { key, value, flags, program }),
        2 => (0u8..KEYS).prop_map(HashOp::Delete),
        2 => (0u8..KEYS, any::<bool>()).prop_map(|(key, program)| HashOp::Lookup { key, program }),
        1 => Just(HashOp::Iterate),
    ]
}

/// The model: contents, and use order (oldest first) for LRU.
#[derive(Default)]
struct Model {
    items: BTreeMap<u8, u8>,
    order: Vec<u8>,
    max: usize,
}

impl Model {
    fn touch(&mut self, key: u8) {
        self.order.retain(|k| *k != key);
        self.order.push(key);
    }

    fn update(&mut self, key: u8, value: u8, flags: u64, lru: bool) -> Result<(), Errno> {
        let exists = self.items.contains_key(&key);
        if flags == update::NOEXIST && exists {
            return Err(Errno::EEXIST);
        }
        if flags == update::EXIST && !exists {
            return Err(Errno::ENOENT);
        }
        if !exists && self.items.len() == self.max {
            if !lru {
                return Err(Errno::E2BIG);
            }
            let oldest = self.order.remove(0);
            self.items.remove(&oldest);
        }
        self.items.insert(key, value);
        self.touch(key);
        Ok(())
    }
}

fn run_hash(t: u32, max: usize, ops: &[HashOp]) -> Result<(), TestCaseError> {
    let lru = t == map_type::LRU_HASH;
    let def = MapDef { map_type: t, key_size: 1, value_size: 1, max_entries: max as u32, flags: 0, name: "h".into() };
    let mut m = map::create(&def, 2).unwrap();
    let mut model = Model { max, ..Model::default() };
    for op in ops {
        match *op {
            HashOp::Update { key, value, flags, program } => {
                let got =
                    if program { m.update(&[key], &[value], flags, 0) } else { m.update_copy(&[key], &[value], flags) };
                prop_assert_eq!(got, model.update(key, value, flags, lru), "{:?}", op);
            }
            HashOp::Delete(key) => {
                let want = model.items.remove(&key).map(|_| ()).ok_or(Errno::ENOENT);
                model.order.retain(|k| *k != key);
                prop_assert_eq!(m.delete(&[key]), want);
            }
            HashOp::Lookup { key, program } => {
                let want = model.items.get(&key).copied();
                let got = if program {
                    let off = m.lookup(&[key], 0);
                    if want.is_some() {
                        model.touch(key);
                    }
                    off.map(|o| m.values()[o as usize])
                } else {
                    let mut out = [0u8];
                    m.lookup_copy(&[key], &mut out).ok().map(|_| out[0])
                };
                prop_assert_eq!(got, want);
            }
            HashOp::Iterate => {
                let mut seen: Vec<u8> = Vec::new();
                let mut next = [0u8];
                let mut prev: Option<[u8; 1]> = None;
                while m.get_next_key(prev.as_ref().map(|p| &p[..]), &mut next).is_ok() {
                    seen.push(next[0]);
                    prev = Some(next);
                    prop_assert!(seen.len() <= max);
                }
                seen.sort();
                prop_assert_eq!(seen, model.items.keys().copied().collect::<Vec<_>>(), "each key once");
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn hash_matches_model(max in prop_oneof![Just(6usize), Just(24)], ops in prop::collection::vec(hash_op(), 1..150)) {
        run_hash(map_type::HASH, max, &ops)?;
    }

    #[test]
    fn lru_hash_matches_model(max in prop_oneof![Just(6usize), Just(24)], ops in prop::collection::vec(hash_op(), 1..150)) {
        run_hash(map_type::LRU_HASH, max, &ops)?;
    }
}

#[derive(Debug, Clone)]
enum RingOp {
    Reserve(u16),
    /// Commits the n-th outstanding reservation (mod their count).
    Commit {
        which: u8,
        discard: bool,
    },
    Consume,
}

fn ring_op() -> impl Strategy<Value = RingOp> {
    prop_oneof![
        3 => (0u16..1500).prop_map(RingOp::Reserve),
        3 => (any::<u8>(), any::<bool>()).prop_map(|(which, discard)| RingOp::Commit { which, discard }),
        1 => Just(RingOp::Consume),
    ]
}

const RING: u64 = 4096;

/// The ring's model: positions, and records in order as (start, total,
/// tag, state) with state 0 busy, 1 submitted, 2 discarded. A sample of
/// `size` bytes is filled with its tag; the consumer sees (size, tag), with
/// tag 0 for an empty sample.
#[derive(Default)]
struct RingModel {
    prod: u64,
    cons: u64,
    records: VecDeque<(u64, u64, u8, u8)>,
}

fn seen(size: u64, tag: u8) -> (usize, u8) {
    (size as usize, if size == 0 { 0 } else { tag })
}

impl RingModel {
    /// Linux's room rule with the padding record of a wrap; the record's start.
    fn reserve(&mut self, size: u64, tag: u8) -> Option<u64> {
        let total = (size + 8).div_ceil(8) * 8;
        let at = self.prod % RING;
        let pad = if at + total > RING { RING - at } else { 0 };
        if total > RING || self.prod + pad + total - self.cons > RING - 1 {
            return None;
        }
        if pad > 0 {
            self.records.push_back((self.prod, pad, 0, 2));
            self.prod += pad;
        }
        self.records.push_back((self.prod, total, tag, 0));
        self.prod += total;
        Some(self.prod - total)
    }

    /// Samples a consumer gets, advancing `cons`.
    fn consume(&mut self, sizes: &BTreeMap<u8, u64>) -> Vec<(usize, u8)> {
        let mut out = Vec::new();
        while let Some(&(start, total, tag, state)) = self.records.front() {
            if state == 0 {
                break;
            }
            if state == 1 {
                out.push(seen(sizes[&tag], tag));
            }
            self.cons = start + total;
            self.records.pop_front();
        }
        out
    }
}

proptest! {
    #[test]
    fn ringbuf_matches_model(ops in prop::collection::vec(ring_op(), 1..120)) {
        let def = MapDef { map_type: map_type::RINGBUF, max_entries: RING as u32, name: "rb".into(), ..MapDef::default() };
        let mut m = map::create(&def, 1).unwrap();
        let mut model = RingModel::default();
        // Outstanding reservations: (sample offset, size, tag).
        let mut busy: Vec<(u32, u16, u8)> = Vec::new();
        let mut sizes = BTreeMap::new();
        let mut tag = 0u8;
        for op in &ops {
            match *op {
                RingOp::Reserve(size) => {
                    tag = tag.wrapping_add(1).max(1);
                    sizes.insert(tag, size as u64);
                    let got = m.ringbuf_reserve(size as u64);
                    let want = model.reserve(size as u64, tag);
                    prop_assert_eq!(got.map(|o| o as u64 - 8), want.map(|p| p % RING));
                    if let Some(off) = got {
                        let at = off as usize;
                        prop_assert!(at + size as usize <= m.values().len(), "records are contiguous");
                        m.values_mut()[at..at + size as usize].fill(tag);
                        busy.push((off, size, tag));
                    }
                }
                RingOp::Commit { which, discard } => {
                    if busy.is_empty() {
                        prop_assert_eq!(m.ringbuf_commit(8, discard), Err(Errno::EINVAL));
                        continue;
                    }
                    let (off, _, t) = busy.remove(which as usize % busy.len());
                    m.ringbuf_commit(off, discard).unwrap();
                    let rec = model.records.iter_mut().find(|r| r.2 == t && r.3 == 0).unwrap();
                    rec.3 = if discard { 2 } else { 1 };
                }
                RingOp::Consume => {
                    let mut got = Vec::new();
                    let mut ok = true;
                    m.as_ringbuf_mut().unwrap().consume(|s| {
                        let t = s.first().copied().unwrap_or(0);
                        ok &= s.iter().all(|b| *b == t);
                        got.push((s.len(), t));
                    });
                    prop_assert!(ok, "a sample holds what its producer wrote");
                    prop_assert_eq!(got, model.consume(&sizes));
                }
            }
            let r = m.as_ringbuf_mut().unwrap();
            prop_assert_eq!(r.producer_pos(), model.prod);
            prop_assert!(r.producer_pos() - r.consumer_pos() < RING);
        }
    }
}
