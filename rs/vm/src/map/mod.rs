//! Maps: Linux's map types with Linux's semantics for flags, full maps and
//! iteration.
//!
//! Every map keeps its values in one arena that never moves for the map's
//! life: that arena is the map's memory region (see [`crate::mem`]), so a
//! value pointer a program got from a lookup stays valid memory (as with
//! Linux's preallocated maps: after a delete it may hold another element's
//! value, never freed memory).
//!
//! Two views: the *program* side works on one CPU's value of a per-CPU map
//! and returns value offsets into the arena; the *syscall* side copies
//! values in and out, all CPUs' values at once for per-CPU maps (each
//! rounded up to 8 bytes, as `bpf(2)` lays them out).
//!
//! One file per type: [`array`](mod@array) (ARRAY, PERCPU_ARRAY), [`hash`] (HASH,
//! PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH), [`ringbuf`] (RINGBUF),
//! [`prog_array`] (PROG_ARRAY); [`create`] checks a definition as Linux's
//! `map_alloc_check`s do and builds the map.

pub mod array;
pub mod hash;
mod index;
mod internal;
pub mod prog_array;
pub mod ringbuf;

use crate::consts::map_type;
use crate::retcode::Errno;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

/// What MAP_CREATE (or a BTF-defined map) asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapDef {
    /// `enum bpf_map_type` ([`crate::consts::map_type`]).
    pub map_type: u32,
    /// Key size in bytes (0 for ringbufs).
    pub key_size: u32,
    /// Value size in bytes (0 for ringbufs).
    pub value_size: u32,
    /// Entries; the data size in bytes for ringbufs.
    pub max_entries: u32,
    /// `map_flags` ([`crate::consts::map_flags`]).
    pub flags: u32,
    /// The map's name (up to 15 bytes through `bpf(2)`).
    pub name: String,
}

/// One map. Implemented by each map type.
pub trait Map: Send {
    /// What the map was created with.
    fn def(&self) -> &MapDef;

    /// Program side: the offset in [`Map::values`] of `key`'s value (the
    /// value of CPU `cpu` for per-CPU maps), or `None`.
    fn lookup(&mut self, key: &[u8], cpu: u32) -> Option<u32>;
    /// Program side: creates or replaces `key`'s value under `flags`
    /// ([`crate::consts::update`]); per-CPU maps set only CPU `cpu`'s value.
    fn update(&mut self, key: &[u8], value: &[u8], flags: u64, cpu: u32) -> Result<(), Errno>;
    /// Deletes `key` (EINVAL for arrays, as in Linux).
    fn delete(&mut self, key: &[u8]) -> Result<(), Errno>;

    /// Syscall side: the bytes MAP_LOOKUP_ELEM copies out for one key.
    fn syscall_value_size(&self) -> usize;
    /// Syscall side: copies `key`'s value (every CPU's, for per-CPU maps) into `out`.
    fn lookup_copy(&self, key: &[u8], out: &mut [u8]) -> Result<(), Errno>;
    /// Syscall side: sets `key`'s value (every CPU's, for per-CPU maps).
    fn update_copy(&mut self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno>;
    /// The key after `key` (the first key for `None`, or when `key` is not
    /// in the map, as Linux does for hash maps); ENOENT after the last.
    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno>;

    /// The value arena: the map's memory region. Its address and length
    /// never change.
    fn values(&self) -> &[u8];
    /// The value arena, writable.
    fn values_mut(&mut self) -> &mut [u8];
    /// Accesses must stay within one slot of this many bytes (0: none).
    fn slot_size(&self) -> u32;

    /// Ringbuf: reserves `size` bytes; the offset of the sample in
    /// [`Map::values`], or `None` when there is no room.
    fn ringbuf_reserve(&mut self, size: u64) -> Option<u32> {
        let _ = size;
        None
    }
    /// Ringbuf: commits (or discards) the sample at `offset`.
    fn ringbuf_commit(&mut self, offset: u32, discard: bool) -> Result<(), Errno> {
        let _ = (offset, discard);
        Err(Errno::EINVAL)
    }
    /// Ringbuf: reserves, copies `data` and commits.
    fn ringbuf_output(&mut self, data: &[u8]) -> Result<(), Errno> {
        let _ = data;
        Err(Errno::EINVAL)
    }
    /// Ringbuf: bpf_ringbuf_query's answer for `what` (0: the bytes not yet
    /// consumed, 1: the ring's size, 2: the consumer position, 3: the
    /// producer position); 0 for what the map does not know.
    fn ringbuf_query(&self, what: u64) -> u64 {
        let _ = what;
        0
    }
    /// Prog array: the program id at `index`.
    fn prog_at(&self, index: u32) -> Option<u32> {
        let _ = index;
        None
    }
    /// The ring buffer, for the OS's consumer side ([`ringbuf::RingBuf::consume`],
    /// its pages); `None` for other maps.
    fn as_ringbuf_mut(&mut self) -> Option<&mut ringbuf::RingBuf> {
        None
    }
    /// The prog array, for the runtime's reference keeping; `None` for
    /// other maps.
    fn as_prog_array_mut(&mut self) -> Option<&mut prog_array::ProgArray> {
        None
    }
}

/// Map flags of MAP_CREATE (`BPF_F_*`) that [`create`] checks.
pub mod flags {
    pub use crate::consts::map_flags::{MMAPABLE, NO_PREALLOC, RDONLY_PROG};
    /// LRU maps: one LRU list per CPU.
    pub const NO_COMMON_LRU: u32 = 1 << 1;
    /// `numa_node` is valid.
    pub const NUMA_NODE: u32 = 1 << 2;
    /// Read-only through `bpf(2)`.
    pub const RDONLY: u32 = 1 << 3;
    /// Write-only through `bpf(2)`.
    pub const WRONLY: u32 = 1 << 4;
    /// Hash maps: a zero hash seed.
    pub const ZERO_SEED: u32 = 1 << 6;
    /// Write-only for programs.
    pub const WRONLY_PROG: u32 = 1 << 8;
    /// Perf event arrays only.
    pub const PRESERVE_ELEMS: u32 = 1 << 11;
    /// Array maps used as inner maps.
    pub const INNER_MAP: u32 = 1 << 12;
    /// The access flags every type accepts.
    pub const ACCESS: u32 = RDONLY | WRONLY | RDONLY_PROG | WRONLY_PROG;
}

/// Linux's KMALLOC_MAX_SIZE on x86-64 (4 MiB): the hash element limit.
const KMALLOC_MAX_SIZE: u64 = 4 << 20;
/// Linux's PCPU_MIN_UNIT_SIZE: the largest per-CPU value.
const PCPU_MIN_UNIT_SIZE: u32 = 32 << 10;
/// Linux's MAX_BPF_STACK: keys live on the stack, so no larger.
const MAX_KEY_SIZE: u32 = 512;

/// Checks `def` as Linux's `map_alloc_check` of its type does and builds
/// the map, with one value per CPU of `cpus` for per-CPU types.
///
/// EINVAL for an unknown type, unsupported flags or a zero (or, where the
/// type fixes it, wrong) key size, value size or entry count; E2BIG for a
/// key or value larger than Linux allows or an arena past 4 GiB (regions
/// have 32-bit offsets); ENOMEM when the allocator has no memory.
pub fn create(def: &MapDef, cpus: u32) -> Result<Box<dyn Map>, Errno> {
    check_access(def.flags)?;
    if cpus == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(match def.map_type {
        map_type::ARRAY | map_type::PERCPU_ARRAY => {
            check_array(def)?;
            Box::new(array::ArrayMap::new(def, cpus)?)
        }
        map_type::HASH | map_type::PERCPU_HASH | map_type::LRU_HASH | map_type::LRU_PERCPU_HASH => {
            check_hash(def)?;
            Box::new(hash::HashMap::new(def, cpus)?)
        }
        map_type::RINGBUF => {
            check_ringbuf(def)?;
            Box::new(ringbuf::RingBuf::new(def)?)
        }
        map_type::PROG_ARRAY => {
            check_prog_array(def)?;
            Box::new(prog_array::ProgArray::new(def)?)
        }
        _ => return Err(Errno::EINVAL),
    })
}

/// Read-only and write-only together are EINVAL, for `bpf(2)` and programs.
fn check_access(f: u32) -> Result<(), Errno> {
    let both = |a: u32, b: u32| f & a != 0 && f & b != 0;
    if both(flags::RDONLY, flags::WRONLY) || both(flags::RDONLY_PROG, flags::WRONLY_PROG) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn check_array(def: &MapDef) -> Result<(), Errno> {
    let percpu = def.map_type == map_type::PERCPU_ARRAY;
    let mut allowed = flags::NUMA_NODE | flags::ACCESS;
    if !percpu {
        allowed |= flags::MMAPABLE | flags::INNER_MAP;
    }
    if def.max_entries == 0 || def.key_size != 4 || def.value_size == 0 || def.flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    if def.value_size > i32::MAX as u32 || (percpu && internal::round8(def.value_size) > PCPU_MIN_UNIT_SIZE) {
        return Err(Errno::E2BIG);
    }
    Ok(())
}

fn check_hash(def: &MapDef) -> Result<(), Errno> {
    let lru = matches!(def.map_type, map_type::LRU_HASH | map_type::LRU_PERCPU_HASH);
    let percpu = matches!(def.map_type, map_type::PERCPU_HASH | map_type::LRU_PERCPU_HASH);
    let allowed = flags::NO_PREALLOC | flags::NO_COMMON_LRU | flags::NUMA_NODE | flags::ACCESS | flags::ZERO_SEED;
    if def.flags & !allowed != 0 || (!lru && def.flags & flags::NO_COMMON_LRU != 0) {
        return Err(Errno::EINVAL);
    }
    if lru && def.flags & flags::NO_PREALLOC != 0 {
        return Err(Errno::ENOTSUPP);
    }
    if def.max_entries == 0 || def.key_size == 0 || def.value_size == 0 {
        return Err(Errno::EINVAL);
    }
    let elem = def.key_size as u64 + def.value_size as u64;
    if def.key_size > MAX_KEY_SIZE || elem >= KMALLOC_MAX_SIZE - MAX_KEY_SIZE as u64 {
        return Err(Errno::E2BIG);
    }
    if percpu && internal::round8(def.value_size) > PCPU_MIN_UNIT_SIZE {
        return Err(Errno::E2BIG);
    }
    Ok(())
}

fn check_ringbuf(def: &MapDef) -> Result<(), Errno> {
    let size = def.max_entries;
    if def.flags & !flags::NUMA_NODE != 0 || def.key_size != 0 || def.value_size != 0 {
        return Err(Errno::EINVAL);
    }
    if !size.is_power_of_two() || !(size as usize).is_multiple_of(ringbuf::PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn check_prog_array(def: &MapDef) -> Result<(), Errno> {
    let allowed = flags::NUMA_NODE | flags::RDONLY | flags::WRONLY;
    if def.max_entries == 0 || def.key_size != 4 || def.value_size != 4 || def.flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// The last epoch handed out, by any table: epochs are unique in the
/// process, so two tables never share one.
static LAST_EPOCH: AtomicUsize = AtomicUsize::new(0);

/// A fresh epoch.
fn next_epoch() -> usize {
    LAST_EPOCH.fetch_add(1, Ordering::Relaxed) + 1
}

/// The runtime's maps, by id (ids are never reused while the table lives).
pub struct MapTable {
    maps: Vec<Option<Box<dyn Map>>>,
    epoch: usize,
}

impl Default for MapTable {
    fn default() -> Self {
        MapTable { maps: Vec::new(), epoch: next_epoch() }
    }
}

impl MapTable {
    /// An empty table.
    pub fn new() -> Self {
        MapTable::default()
    }
    /// Adds a map; its id.
    pub fn insert(&mut self, map: Box<dyn Map>) -> u32 {
        self.maps.push(Some(map));
        self.epoch = next_epoch();
        (self.maps.len() - 1) as u32
    }
    /// Removes map `id`.
    pub fn remove(&mut self, id: u32) -> Option<Box<dyn Map>> {
        let removed = self.maps.get_mut(id as usize).and_then(Option::take);
        if removed.is_some() {
            self.epoch = next_epoch();
        }
        removed
    }
    /// Which set of maps this table holds: a number unique in the process,
    /// changed by every insert and removal. Since a map's arena never moves
    /// ([`Map::values`]), the arenas of two equal epochs are the same memory.
    pub fn epoch(&self) -> usize {
        self.epoch
    }
    /// Map `id`.
    pub fn get(&self, id: u32) -> Option<&dyn Map> {
        self.maps.get(id as usize).and_then(|m| m.as_deref())
    }
    /// Map `id`, mutable.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut (dyn Map + 'static)> {
        self.maps.get_mut(id as usize).and_then(|m| m.as_deref_mut())
    }
    /// The number of ids handed out.
    pub fn len(&self) -> usize {
        self.maps.len()
    }
    /// Whether no map was ever added.
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }
}
