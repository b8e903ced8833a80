//! HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH.
//!
//! Every map is preallocated, as Linux's default: an arena of
//! `max_entries` value slots (each `cpus` values long for per-CPU maps),
//! a free list of slots, and an index from key bytes to slot (a
//! `BTreeMap`). A value's arena offset does not change while its key
//! stays; a deleted element's slot is reused by a later insert.
//!
//! Iteration (MAP_GET_NEXT_KEY) visits keys in ascending byte order of the
//! key, each once when the map does not change; a key that is not in the
//! map restarts at the first key, as Linux does.
//!
//! A full map refuses a new key with E2BIG; an LRU map instead evicts the
//! least recently used element. Program lookups and every update refresh
//! an element's recency; syscall lookups do not (as in Linux). Unlike
//! Linux's approximate LRU (per-CPU lists, reference bits), the order here
//! is exact, and replacing an existing key never evicts another.

use super::internal::{check_exists, check_key, check_update_flags, check_value, zeroed, Layout, Slots};
use super::{Map, MapDef};
use crate::consts::map_type;
use crate::retcode::Errno;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Bound;

/// A preallocated hash map, plain, per-CPU, LRU or both.
pub struct HashMap {
    def: MapDef,
    layout: Layout,
    arena: Vec<u8>,
    index: BTreeMap<Vec<u8>, u32>,
    slots: Slots,
    lru: Option<Recency>,
}

/// Exact least-recently-used order of the occupied slots.
struct Recency {
    clock: u64,
    /// Last use of each slot.
    used_at: Vec<u64>,
    /// Occupied slots by last use, oldest first.
    by_age: BTreeMap<u64, u32>,
    /// The key in each occupied slot (for eviction).
    keys: Vec<Vec<u8>>,
}

impl Recency {
    fn new(slots: u32) -> Result<Self, Errno> {
        let mut used_at = Vec::new();
        used_at.try_reserve_exact(slots as usize).map_err(|_| Errno::ENOMEM)?;
        used_at.resize(slots as usize, 0);
        let mut keys = Vec::new();
        keys.try_reserve_exact(slots as usize).map_err(|_| Errno::ENOMEM)?;
        keys.resize(slots as usize, Vec::new());
        Ok(Recency { clock: 0, used_at, by_age: BTreeMap::new(), keys })
    }

    /// Marks `slot` (holding `key`, when newly filled) as just used.
    fn touch(&mut self, slot: u32, key: Option<&[u8]>) {
        let s = slot as usize;
        self.by_age.remove(&self.used_at[s]);
        self.clock += 1;
        self.used_at[s] = self.clock;
        self.by_age.insert(self.clock, slot);
        if let Some(k) = key {
            self.keys[s] = k.to_vec();
        }
    }

    fn forget(&mut self, slot: u32) {
        self.by_age.remove(&self.used_at[slot as usize]);
        self.keys[slot as usize].clear();
    }

    /// The least recently used slot and its key, removed from the order.
    fn oldest(&mut self) -> Option<(u32, Vec<u8>)> {
        let (_, slot) = self.by_age.pop_first()?;
        Some((slot, core::mem::take(&mut self.keys[slot as usize])))
    }
}

impl HashMap {
    /// An empty map of `def`'s type (`cpus` matters for per-CPU types).
    /// `def` was checked by [`super::create`].
    pub fn new(def: &MapDef, cpus: u32) -> Result<Self, Errno> {
        let percpu = matches!(def.map_type, map_type::PERCPU_HASH | map_type::LRU_PERCPU_HASH);
        let lru = matches!(def.map_type, map_type::LRU_HASH | map_type::LRU_PERCPU_HASH);
        let layout = if percpu { Layout::percpu(def.value_size, cpus) } else { Layout::plain(def.value_size) };
        let len = super::internal::arena_len(def.max_entries, layout.copies, layout.stride)?;
        Ok(HashMap {
            def: def.clone(),
            layout,
            arena: zeroed(len)?,
            index: BTreeMap::new(),
            slots: Slots::new(def.max_entries)?,
            lru: if lru { Some(Recency::new(def.max_entries)?) } else { None },
        })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the map has no element.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// A slot for a new key: a free one, or (LRU) the least recently used
    /// element's, which is evicted; E2BIG when the map is full.
    fn alloc(&mut self) -> Result<u32, Errno> {
        if let Some(slot) = self.slots.take() {
            return Ok(slot);
        }
        let (slot, key) = self.lru.as_mut().and_then(Recency::oldest).ok_or(Errno::E2BIG)?;
        self.index.remove(&key);
        Ok(slot)
    }

    /// Checks an update and finds (or makes) the key's slot: whether it is
    /// new, and the slot.
    fn slot_for_update(&mut self, key: &[u8], flags: u64) -> Result<(bool, u32), Errno> {
        check_update_flags(flags)?;
        check_key(key, self.def.key_size)?;
        let existing = self.index.get(key).copied();
        check_exists(flags, existing.is_some())?;
        match existing {
            Some(slot) => Ok((false, slot)),
            None => Ok((true, self.alloc()?)),
        }
    }

    /// Records `key` in `slot` (when new) and refreshes its recency.
    fn commit(&mut self, key: &[u8], slot: u32, new: bool) {
        if new {
            self.index.insert(key.to_vec(), slot);
        }
        if let Some(lru) = self.lru.as_mut() {
            lru.touch(slot, new.then_some(key));
        }
    }
}

impl Map for HashMap {
    fn def(&self) -> &MapDef {
        &self.def
    }

    fn lookup(&mut self, key: &[u8], cpu: u32) -> Option<u32> {
        let copy = self.layout.copy_of(cpu)?;
        let slot = *self.index.get(key)?;
        if let Some(lru) = self.lru.as_mut() {
            lru.touch(slot, None);
        }
        Some(self.layout.offset(slot, copy) as u32)
    }

    fn update(&mut self, key: &[u8], value: &[u8], flags: u64, cpu: u32) -> Result<(), Errno> {
        check_value(value, self.def.value_size as usize)?;
        let copy = self.layout.copy_of(cpu).ok_or(Errno::EINVAL)?;
        let (new, slot) = self.slot_for_update(key, flags)?;
        self.layout.write_one(&mut self.arena, slot, copy, value, new);
        self.commit(key, slot, new);
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), Errno> {
        check_key(key, self.def.key_size)?;
        let slot = self.index.remove(key).ok_or(Errno::ENOENT)?;
        if let Some(lru) = self.lru.as_mut() {
            lru.forget(slot);
        }
        self.slots.put(slot);
        Ok(())
    }

    fn syscall_value_size(&self) -> usize {
        self.layout.syscall_size()
    }

    fn lookup_copy(&self, key: &[u8], out: &mut [u8]) -> Result<(), Errno> {
        check_key(key, self.def.key_size)?;
        let slot = *self.index.get(key).ok_or(Errno::ENOENT)?;
        self.layout.read(&self.arena, slot, out)
    }

    fn update_copy(&mut self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
        check_value(value, self.layout.syscall_size())?;
        let (new, slot) = self.slot_for_update(key, flags)?;
        self.layout.write(&mut self.arena, slot, value)?;
        self.commit(key, slot, new);
        Ok(())
    }

    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        check_key(next, self.def.key_size)?;
        let after = match key {
            Some(k) if self.index.contains_key(k) => {
                self.index.range::<[u8], _>((Bound::Excluded(k), Bound::Unbounded)).next()
            }
            _ => self.index.iter().next(),
        };
        let (found, _) = after.ok_or(Errno::ENOENT)?;
        next.copy_from_slice(found);
        Ok(())
    }

    fn values(&self) -> &[u8] {
        &self.arena
    }

    fn values_mut(&mut self) -> &mut [u8] {
        &mut self.arena
    }

    fn slot_size(&self) -> u32 {
        self.layout.stride
    }
}
