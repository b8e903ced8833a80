//! The key index of the hash maps: an open-addressing table (linear
//! probing, backward-shift deletion) from key bytes to value slot, with the
//! keys kept in a slot-indexed arena. Everything is allocated when the map
//! is created; inserting and deleting never allocate, as Linux's
//! preallocated maps do not in a tracing context.
//!
//! The table has at least twice as many buckets as the map has slots, so a
//! probe always ends at an empty bucket. The hash is fixed (no random seed,
//! as Linux's BPF_F_ZERO_SEED): iteration order is the buckets' order,
//! which depends only on the keys and the order they were inserted and
//! deleted in.

use crate::retcode::Errno;
use alloc::vec::Vec;

const EMPTY: u32 = u32::MAX;

/// Key bytes -> slot, for at most `slots` keys.
#[derive(Debug, Clone)]
pub struct KeyIndex {
    key_size: usize,
    /// The key stored for each slot (valid while the slot is indexed).
    keys: Vec<u8>,
    /// Each bucket: a slot, or [`EMPTY`].
    buckets: Vec<u32>,
    mask: usize,
    len: usize,
}

/// A 64-bit multiplicative hash over 8-byte words.
fn hash(key: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = key.len() as u64;
    for chunk in key.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}

fn try_filled<T: Clone>(len: usize, v: T) -> Result<Vec<T>, Errno> {
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    out.resize(len, v);
    Ok(out)
}

impl KeyIndex {
    /// An empty index for `slots` keys of `key_size` bytes.
    pub fn new(key_size: u32, slots: u32) -> Result<Self, Errno> {
        let buckets = (slots as usize).checked_mul(2).ok_or(Errno::E2BIG)?.next_power_of_two().max(2);
        let key_bytes = (key_size as usize).checked_mul(slots as usize).ok_or(Errno::E2BIG)?;
        Ok(KeyIndex {
            key_size: key_size as usize,
            keys: try_filled(key_bytes, 0)?,
            buckets: try_filled(buckets, EMPTY)?,
            mask: buckets - 1,
            len: 0,
        })
    }

    /// The key stored in `slot`.
    pub fn key_of(&self, slot: u32) -> &[u8] {
        let at = slot as usize * self.key_size;
        &self.keys[at..at + self.key_size]
    }

    fn home(&self, key: &[u8]) -> usize {
        hash(key) as usize & self.mask
    }

    /// The bucket holding `key`, if it is indexed.
    fn bucket_of(&self, key: &[u8]) -> Option<usize> {
        let mut i = self.home(key);
        loop {
            match self.buckets[i] {
                EMPTY => return None,
                s if self.key_of(s) == key => return Some(i),
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    /// The slot of `key`.
    pub fn get(&self, key: &[u8]) -> Option<u32> {
        self.bucket_of(key).map(|b| self.buckets[b])
    }

    /// Indexes `key` (not indexed yet) in `slot` (not used by another key).
    pub fn insert(&mut self, key: &[u8], slot: u32) {
        let at = slot as usize * self.key_size;
        self.keys[at..at + self.key_size].copy_from_slice(key);
        let mut i = self.home(key);
        while self.buckets[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.buckets[i] = slot;
        self.len += 1;
    }

    /// Removes `key`: its slot.
    pub fn remove(&mut self, key: &[u8]) -> Option<u32> {
        let hole = self.bucket_of(key)?;
        let slot = self.buckets[hole];
        self.close_hole(hole);
        self.len -= 1;
        Some(slot)
    }

    /// Removes the key stored in `slot`, if indexed there.
    pub fn remove_slot(&mut self, slot: u32) -> bool {
        let Some(hole) = self.bucket_of(self.key_of(slot)) else { return false };
        if self.buckets[hole] != slot {
            return false;
        }
        self.close_hole(hole);
        self.len -= 1;
        true
    }

    /// Backward-shift deletion: moves later entries of the probe run into
    /// the hole when the hole lies on their probe path.
    fn close_hole(&mut self, mut hole: usize) {
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let s = self.buckets[j];
            if s == EMPTY {
                break;
            }
            let home = self.home(self.key_of(s));
            // `s` may move back to `hole` unless its home lies in (hole, j].
            let home_after_hole = (home.wrapping_sub(hole) & self.mask) <= (j.wrapping_sub(hole) & self.mask);
            if !home_after_hole || home == hole {
                self.buckets[hole] = s;
                hole = j;
            }
        }
        self.buckets[hole] = EMPTY;
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first key in bucket order after `key` (from the first bucket for
    /// `None` or a key not indexed): its slot.
    pub fn next_after(&self, key: Option<&[u8]>) -> Option<u32> {
        let start = key.and_then(|k| self.bucket_of(k)).map_or(0, |b| b + 1);
        self.buckets[start.min(self.buckets.len())..].iter().copied().find(|s| *s != EMPTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    #[test]
    fn insert_get_remove_and_iterate() {
        let mut ix = KeyIndex::new(4, 8).unwrap();
        for (slot, k) in [7u32, 1, 9, 300].iter().enumerate() {
            ix.insert(&k.to_le_bytes(), slot as u32);
        }
        assert_eq!(ix.get(&9u32.to_le_bytes()), Some(2));
        assert_eq!(ix.remove(&1u32.to_le_bytes()), Some(1));
        assert_eq!(ix.get(&1u32.to_le_bytes()), None);
        assert_eq!(ix.len(), 3);
        let mut seen = alloc::vec::Vec::new();
        let mut cur = ix.next_after(None);
        while let Some(s) = cur {
            seen.push(s);
            cur = ix.next_after(Some(ix.key_of(s)));
        }
        seen.sort();
        assert_eq!(seen, [0, 2, 3]);
    }

    #[test]
    fn colliding_keys_survive_deletes() {
        // Many keys in a small table: long probe runs that wrap around.
        let mut ix = KeyIndex::new(2, 32).unwrap();
        let mut model = BTreeMap::new();
        let mut free: alloc::vec::Vec<u32> = (0..32).collect();
        for round in 0..2000u32 {
            let k = ((round.wrapping_mul(2_654_435_761)) % 97) as u16;
            let key = k.to_le_bytes();
            if let Some(slot) = model.remove(&k) {
                assert_eq!(ix.remove(&key), Some(slot));
                free.push(slot);
            } else if let Some(slot) = free.pop() {
                ix.insert(&key, slot);
                model.insert(k, slot);
            }
            for (mk, ms) in &model {
                assert_eq!(ix.get(&mk.to_le_bytes()), Some(*ms), "round {round}");
            }
        }
    }
}
