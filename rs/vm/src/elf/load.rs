//! Loading a parsed object: its maps are created in a [`MapTable`], and
//! its programs' map indexes become the ids (or, for a kernel, the file
//! descriptors) the maps got.

use super::{ObjProgram, Object};
use crate::consts::{map_type, pseudo, update};
use crate::map::{self, MapTable};
use crate::program::Insn;
use crate::retcode::{Errno, LoadError};
use alloc::format;
use alloc::vec::Vec;

impl ObjProgram {
    /// The instructions with each map index `i` of a `BPF_PSEUDO_MAP_FD` or
    /// `BPF_PSEUDO_MAP_VALUE` replaced by `ids[i]`: a runtime's map ids, or
    /// a kernel's map file descriptors.
    pub fn insns_with_maps(&self, ids: &[u32]) -> Result<Vec<Insn>, LoadError> {
        let mut insns = self.insns.clone();
        let mut i = 0;
        while i < insns.len() {
            let insn = insns[i];
            if insn.op == super::reloc::LD_IMM64 {
                if matches!(insn.src, pseudo::MAP_FD | pseudo::MAP_VALUE) {
                    let id = usize::try_from(insn.imm).ok().and_then(|m| ids.get(m));
                    let id = id.ok_or_else(|| {
                        let why = format!("map index {} of {} out of range", insn.imm, self.name);
                        LoadError::at(i, Errno::EINVAL, why).in_section(&self.section)
                    })?;
                    insns[i].imm = *id as i32;
                }
                i += 2;
            } else {
                i += 1;
            }
        }
        Ok(insns)
    }
}

/// The map types the runtime creates.
const MAP_TYPES: &[u32] = &[
    map_type::HASH,
    map_type::ARRAY,
    map_type::PROG_ARRAY,
    map_type::PERCPU_HASH,
    map_type::PERCPU_ARRAY,
    map_type::LRU_HASH,
    map_type::LRU_PERCPU_HASH,
    map_type::RINGBUF,
];

impl Object {
    /// Creates the object's maps in `table` (with `cpus` values per
    /// per-CPU entry) and fills the global data maps; their ids, by map
    /// index. A map that cannot be created is refused naming it.
    pub fn create_maps(&self, table: &mut MapTable, cpus: u32) -> Result<Vec<u32>, LoadError> {
        self.create_maps_where(table, cpus, |_| true)
    }

    /// [`Object::create_maps`] for the maps whose index `wanted` accepts;
    /// the others get the id `u32::MAX` (which names no map).
    pub fn create_maps_where(
        &self,
        table: &mut MapTable,
        cpus: u32,
        wanted: impl Fn(usize) -> bool,
    ) -> Result<Vec<u32>, LoadError> {
        let mut ids = Vec::with_capacity(self.maps.len());
        for (i, m) in self.maps.iter().enumerate() {
            if !wanted(i) {
                ids.push(u32::MAX);
                continue;
            }
            let refuse = |e: Errno, what: &str| {
                let why = format!("map {}: {what}", m.name);
                LoadError::new(e, why).in_section(if m.init.is_some() { m.name.as_str() } else { ".maps" })
            };
            if !MAP_TYPES.contains(&m.def.map_type) {
                let what = format!("map type {} is not supported by the runtime", m.def.map_type);
                return Err(refuse(Errno::EINVAL, &what));
            }
            let mut created = map::create(&m.def, cpus).map_err(|e| refuse(e, "cannot be created"))?;
            if let Some(init) = &m.init {
                created
                    .update_copy(&0u32.to_le_bytes(), init, update::ANY)
                    .map_err(|e| refuse(e, "cannot be filled"))?;
            }
            ids.push(table.insert(created));
        }
        Ok(ids)
    }
}

impl ObjProgram {
    /// The indexes of the maps the program references.
    pub fn map_indexes(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .insns
            .iter()
            .filter(|i| i.op == super::reloc::LD_IMM64 && matches!(i.src, pseudo::MAP_FD | pseudo::MAP_VALUE))
            .filter_map(|i| usize::try_from(i.imm).ok())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Every (key, value) of `map` in MAP_GET_NEXT_KEY order, values as
/// MAP_LOOKUP_ELEM copies them out (every CPU's, for per-CPU maps). Maps
/// without keys (ringbufs) have none.
pub fn entries(map: &dyn map::Map) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let key_size = map.def().key_size as usize;
    if key_size == 0 {
        return out;
    }
    let mut key: Option<Vec<u8>> = None;
    // A map yields each key once: no more than max_entries of them.
    for _ in 0..map.def().max_entries {
        let mut next = alloc::vec![0u8; key_size];
        if map.get_next_key(key.as_deref(), &mut next).is_err() {
            return out;
        }
        let mut value = alloc::vec![0u8; map.syscall_value_size()];
        if map.lookup_copy(&next, &mut value).is_ok() {
            out.push((next.clone(), value));
        }
        key = Some(next);
    }
    out
}
