//! ARRAY and PERCPU_ARRAY: `max_entries` zero-initialised values indexed by
//! a u32 key. Elements always exist: NOEXIST is EEXIST, delete is EINVAL.
//! Per-CPU arrays keep one value per CPU; programs see their CPU's.

use super::internal::{
    arena_len, check_key, check_prog_write, check_update_flags, check_value, index_of, next_index, prog_may_read,
    zeroed, Layout,
};
use super::{Map, MapDef};
use crate::consts::update;
use crate::retcode::Errno;
use alloc::vec::Vec;

/// An array map, plain or per-CPU.
pub struct ArrayMap {
    def: MapDef,
    layout: Layout,
    arena: Vec<u8>,
}

impl ArrayMap {
    /// A zeroed array; `cpus` matters for PERCPU_ARRAY only. `def` was
    /// checked by [`super::create`].
    pub fn new(def: &MapDef, cpus: u32) -> Result<Self, Errno> {
        let layout = if def.map_type == crate::consts::map_type::PERCPU_ARRAY {
            Layout::percpu(def.value_size, cpus)
        } else {
            Layout::plain(def.value_size)
        };
        let len = arena_len(def.max_entries, layout.copies, layout.stride)?;
        Ok(ArrayMap { def: def.clone(), layout, arena: zeroed(len)? })
    }

    /// The index `key` names for an update: Linux's checks in its order.
    fn index_for_update(&self, key: &[u8], flags: u64) -> Result<u32, Errno> {
        if flags & !update::F_LOCK > update::EXIST {
            return Err(Errno::EINVAL);
        }
        check_key(key, 4)?;
        let index = index_of(key)?;
        if index >= self.def.max_entries {
            return Err(Errno::E2BIG);
        }
        if flags & update::NOEXIST != 0 {
            return Err(Errno::EEXIST);
        }
        check_update_flags(flags)?;
        Ok(index)
    }
}

impl Map for ArrayMap {
    fn def(&self) -> &MapDef {
        &self.def
    }

    fn lookup(&mut self, key: &[u8], cpu: u32) -> Option<u32> {
        if !prog_may_read(self.def.flags) {
            return None;
        }
        let index = index_of(key).ok().filter(|i| *i < self.def.max_entries)?;
        Some(self.layout.offset(index, self.layout.copy_of(cpu)?) as u32)
    }

    fn update(&mut self, key: &[u8], value: &[u8], flags: u64, cpu: u32) -> Result<(), Errno> {
        check_prog_write(self.def.flags)?;
        let index = self.index_for_update(key, flags)?;
        check_value(value, self.def.value_size as usize)?;
        let copy = self.layout.copy_of(cpu).ok_or(Errno::EINVAL)?;
        self.layout.write_one(&mut self.arena, index, copy, value, false);
        Ok(())
    }

    fn delete(&mut self, _key: &[u8]) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }

    fn syscall_value_size(&self) -> usize {
        self.layout.syscall_size()
    }

    fn lookup_copy(&self, key: &[u8], out: &mut [u8]) -> Result<(), Errno> {
        check_key(key, 4)?;
        let index = index_of(key)?;
        if index >= self.def.max_entries {
            return Err(Errno::ENOENT);
        }
        self.layout.read(&self.arena, index, out)
    }

    fn update_copy(&mut self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
        let index = self.index_for_update(key, flags)?;
        self.layout.write(&mut self.arena, index, value)
    }

    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        next_index(key, self.def.max_entries, next)
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
