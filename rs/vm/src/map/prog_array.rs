//! PROG_ARRAY: `max_entries` slots, each empty or holding a program id, for
//! tail calls. The syscall side sets and reads program ids (the runtime
//! translates a program fd to its id before `update_copy`, as Linux takes a
//! program fd and returns an id); programs cannot look slots up, only tail
//! call through them ([`Map::prog_at`]).

use super::internal::{check_key, check_value, index_of, next_index};
use super::{Map, MapDef};
use crate::consts::update;
use crate::retcode::Errno;
use alloc::vec::Vec;

/// A program array.
pub struct ProgArray {
    def: MapDef,
    slots: Vec<Option<u32>>,
}

impl ProgArray {
    /// An empty program array (`def` checked by [`super::create`]).
    pub fn new(def: &MapDef) -> Result<Self, Errno> {
        let mut slots = Vec::new();
        slots.try_reserve_exact(def.max_entries as usize).map_err(|_| Errno::ENOMEM)?;
        slots.resize(def.max_entries as usize, None);
        Ok(ProgArray { def: def.clone(), slots })
    }

    /// The index `key` names, E2BIG past the end (Linux's errno for fd
    /// arrays' updates and deletes).
    fn index(&self, key: &[u8]) -> Result<usize, Errno> {
        check_key(key, 4)?;
        let i = index_of(key)?;
        if i >= self.def.max_entries {
            return Err(Errno::E2BIG);
        }
        Ok(i as usize)
    }

    /// Empties the slot `key` names: the program id it held; ENOENT when
    /// empty, E2BIG past the end.
    pub fn clear(&mut self, key: &[u8]) -> Result<u32, Errno> {
        let i = self.index(key)?;
        self.slots[i].take().ok_or(Errno::ENOENT)
    }

    /// Every program id the array holds (the runtime's references).
    pub fn programs(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().flatten().copied()
    }
}

impl Map for ProgArray {
    fn def(&self) -> &MapDef {
        &self.def
    }
    /// Programs cannot look slots up (the verifier refuses it in Linux).
    fn lookup(&mut self, _key: &[u8], _cpu: u32) -> Option<u32> {
        None
    }
    fn update(&mut self, _key: &[u8], _value: &[u8], _flags: u64, _cpu: u32) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    /// EINVAL: programs only tail call through a prog array (Linux's
    /// verifier refuses the others); MAP_DELETE_ELEM goes through the
    /// runtime, which also drops the program's reference
    /// ([`ProgArray::clear`]).
    fn delete(&mut self, _key: &[u8]) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    fn syscall_value_size(&self) -> usize {
        4
    }
    fn lookup_copy(&self, key: &[u8], out: &mut [u8]) -> Result<(), Errno> {
        check_key(key, 4)?;
        check_value(out, 4)?;
        let i = index_of(key)? as usize;
        let id = self.slots.get(i).copied().flatten().ok_or(Errno::ENOENT)?;
        out.copy_from_slice(&id.to_le_bytes());
        Ok(())
    }
    /// Sets a slot to the program id in `value` (only BPF_ANY, as Linux).
    fn update_copy(&mut self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
        if flags != update::ANY {
            return Err(Errno::EINVAL);
        }
        let i = self.index(key)?;
        let id = index_of(value)?;
        self.slots[i] = Some(id);
        Ok(())
    }
    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        next_index(key, self.def.max_entries, next)
    }

    fn values(&self) -> &[u8] {
        &[]
    }
    fn values_mut(&mut self) -> &mut [u8] {
        &mut []
    }
    fn slot_size(&self) -> u32 {
        0
    }
    fn prog_at(&self, index: u32) -> Option<u32> {
        self.slots.get(index as usize).copied().flatten()
    }
    fn as_prog_array_mut(&mut self) -> Option<&mut ProgArray> {
        Some(self)
    }
}
