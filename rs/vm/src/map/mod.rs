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

use crate::retcode::Errno;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

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
}

/// The runtime's maps, by id (ids are never reused while the table lives).
#[derive(Default)]
pub struct MapTable {
    maps: Vec<Option<Box<dyn Map>>>,
}

impl MapTable {
    /// An empty table.
    pub fn new() -> Self {
        MapTable::default()
    }
    /// Adds a map; its id.
    pub fn insert(&mut self, map: Box<dyn Map>) -> u32 {
        self.maps.push(Some(map));
        (self.maps.len() - 1) as u32
    }
    /// Removes map `id`.
    pub fn remove(&mut self, id: u32) -> Option<Box<dyn Map>> {
        self.maps.get_mut(id as usize).and_then(Option::take)
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
