//! HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH.
//!
//! Every map is preallocated, as Linux's default: an arena of
//! `max_entries` value slots (each `cpus` values long for per-CPU maps),
//! a free list of slots, and an index from key bytes to slot
//! (`KeyIndex` in `map/index.rs`, an open-addressing table). Updates and
//! deletes never allocate. A value's arena offset does not change while
//! its key stays; a deleted element's slot is reused by a later insert.
//!
//! Iteration (MAP_GET_NEXT_KEY) visits keys in the index's bucket order
//! (by key hash, like Linux's bucket walk), each once when the map does
//! not change; a key that is not in the map restarts at the first key, as
//! Linux does.
//!
//! A full map refuses a new key with E2BIG; an LRU map instead evicts the
//! least recently used element. Program lookups and every update refresh
//! an element's recency; syscall lookups do not (as in Linux). Unlike
//! Linux's approximate LRU (per-CPU lists, reference bits), the order here
//! is exact, and replacing an existing key never evicts another.

use super::index::KeyIndex;
use super::internal::{
    check_exists, check_key, check_prog_write, check_update_flags, check_value, prog_may_read, zeroed, Layout, Slots,
};
use super::{Map, MapDef};
use crate::consts::map_type;
use crate::retcode::Errno;
use alloc::vec::Vec;

/// A preallocated hash map, plain, per-CPU, LRU or both.
pub struct HashMap {
    def: MapDef,
    layout: Layout,
    arena: Vec<u8>,
    index: KeyIndex,
    slots: Slots,
    lru: Option<Recency>,
}

const NONE: u32 = u32::MAX;

/// Exact least-recently-used order of the occupied slots: a doubly linked
/// list through the slots, oldest first (no allocation after creation).
struct Recency {
    prev: Vec<u32>,
    next: Vec<u32>,
    linked: Vec<bool>,
    oldest: u32,
    newest: u32,
}

impl Recency {
    fn new(slots: u32) -> Result<Self, Errno> {
        let filled = |v| {
            let mut out = Vec::new();
            out.try_reserve_exact(slots as usize).map_err(|_| Errno::ENOMEM)?;
            out.resize(slots as usize, v);
            Ok::<_, Errno>(out)
        };
        let mut linked = Vec::new();
        linked.try_reserve_exact(slots as usize).map_err(|_| Errno::ENOMEM)?;
        linked.resize(slots as usize, false);
        Ok(Recency { prev: filled(NONE)?, next: filled(NONE)?, linked, oldest: NONE, newest: NONE })
    }

    fn unlink(&mut self, slot: u32) {
        let s = slot as usize;
        if !self.linked[s] {
            return;
        }
        let (p, n) = (self.prev[s], self.next[s]);
        match p {
            NONE => self.oldest = n,
            p => self.next[p as usize] = n,
        }
        match n {
            NONE => self.newest = p,
            n => self.prev[n as usize] = p,
        }
        self.linked[s] = false;
    }

    /// Marks `slot` as just used.
    fn touch(&mut self, slot: u32) {
        self.unlink(slot);
        let s = slot as usize;
        self.prev[s] = self.newest;
        self.next[s] = NONE;
        match self.newest {
            NONE => self.oldest = slot,
            t => self.next[t as usize] = slot,
        }
        self.newest = slot;
        self.linked[s] = true;
    }

    /// The least recently used slot, removed from the order.
    fn pop_oldest(&mut self) -> Option<u32> {
        let slot = self.oldest;
        if slot == NONE {
            return None;
        }
        self.unlink(slot);
        Some(slot)
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
            index: KeyIndex::new(def.key_size, def.max_entries)?,
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
        let slot = self.lru.as_mut().and_then(Recency::pop_oldest).ok_or(Errno::E2BIG)?;
        self.index.remove_slot(slot);
        Ok(slot)
    }

    /// Checks an update and finds (or makes) the key's slot: whether it is
    /// new, and the slot.
    fn slot_for_update(&mut self, key: &[u8], flags: u64) -> Result<(bool, u32), Errno> {
        check_update_flags(flags)?;
        check_key(key, self.def.key_size)?;
        let existing = self.index.get(key);
        check_exists(flags, existing.is_some())?;
        match existing {
            Some(slot) => Ok((false, slot)),
            None => Ok((true, self.alloc()?)),
        }
    }

    /// Records `key` in `slot` (when new) and refreshes its recency.
    fn commit(&mut self, key: &[u8], slot: u32, new: bool) {
        if new {
            self.index.insert(key, slot);
        }
        if let Some(lru) = self.lru.as_mut() {
            lru.touch(slot);
        }
    }
}

impl Map for HashMap {
    fn def(&self) -> &MapDef {
        &self.def
    }

    fn lookup(&mut self, key: &[u8], cpu: u32) -> Option<u32> {
        if !prog_may_read(self.def.flags) {
            return None;
        }
        let copy = self.layout.copy_of(cpu)?;
        let slot = self.index.get(key)?;
        if let Some(lru) = self.lru.as_mut() {
            lru.touch(slot);
        }
        Some(self.layout.offset(slot, copy) as u32)
    }

    fn update(&mut self, key: &[u8], value: &[u8], flags: u64, cpu: u32) -> Result<(), Errno> {
        check_prog_write(self.def.flags)?;
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
            lru.unlink(slot);
        }
        self.slots.put(slot);
        Ok(())
    }

    fn syscall_value_size(&self) -> usize {
        self.layout.syscall_size()
    }

    fn lookup_copy(&self, key: &[u8], out: &mut [u8]) -> Result<(), Errno> {
        check_key(key, self.def.key_size)?;
        let slot = self.index.get(key).ok_or(Errno::ENOENT)?;
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
        let slot = self.index.next_after(key).ok_or(Errno::ENOENT)?;
        let found = self.index.key_of(slot);
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
