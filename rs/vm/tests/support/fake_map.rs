//! Maps for tests that need one before (or without) the real map types:
//! an array, a prog array and a ringbuf with the simplest behaviour that
//! lets the helpers and the engines be checked.

use proctap_vm::consts::{map_type, update};
use proctap_vm::map::{Map, MapDef};
use proctap_vm::retcode::Errno;

/// An array of `max_entries` values; keys are u32 indexes.
pub struct FakeArray {
    pub def: MapDef,
    pub values: Vec<u8>,
}

impl FakeArray {
    pub fn new(value_size: u32, max_entries: u32, flags: u32) -> Self {
        let def = MapDef { map_type: map_type::ARRAY, key_size: 4, value_size, max_entries, flags, name: "arr".into() };
        FakeArray { def, values: vec![0; (value_size * max_entries) as usize] }
    }
    fn index(&self, key: &[u8]) -> Option<u32> {
        let i = u32::from_le_bytes(key.try_into().ok()?);
        (i < self.def.max_entries).then_some(i)
    }
}

impl Map for FakeArray {
    fn def(&self) -> &MapDef {
        &self.def
    }
    fn lookup(&mut self, key: &[u8], _cpu: u32) -> Option<u32> {
        self.index(key).map(|i| i * self.def.value_size)
    }
    fn update(&mut self, key: &[u8], value: &[u8], flags: u64, _cpu: u32) -> Result<(), Errno> {
        let i = self.index(key).ok_or(Errno::E2BIG)?;
        if flags == update::NOEXIST {
            return Err(Errno::EEXIST);
        }
        let vs = self.def.value_size as usize;
        self.values[i as usize * vs..][..vs].copy_from_slice(value);
        Ok(())
    }
    fn delete(&mut self, _key: &[u8]) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    fn syscall_value_size(&self) -> usize {
        self.def.value_size as usize
    }
    fn lookup_copy(&self, key: &[u8], out: &mut [u8]) -> Result<(), Errno> {
        let i = self.index(key).ok_or(Errno::ENOENT)? as usize;
        let vs = self.def.value_size as usize;
        out.copy_from_slice(&self.values[i * vs..][..vs]);
        Ok(())
    }
    fn update_copy(&mut self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
        self.update(key, value, flags, 0)
    }
    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        let n = key.and_then(|k| self.index(k)).map_or(0, |i| i + 1);
        if n >= self.def.max_entries {
            return Err(Errno::ENOENT);
        }
        next.copy_from_slice(&n.to_le_bytes());
        Ok(())
    }
    fn values(&self) -> &[u8] {
        &self.values
    }
    fn values_mut(&mut self) -> &mut [u8] {
        &mut self.values
    }
    fn slot_size(&self) -> u32 {
        self.def.value_size
    }
}

/// A prog array: slot `i` holds program id `slots[i]`.
pub struct FakeProgArray {
    pub def: MapDef,
    pub slots: Vec<Option<u32>>,
}

impl FakeProgArray {
    pub fn new(slots: Vec<Option<u32>>) -> Self {
        let def = MapDef {
            map_type: map_type::PROG_ARRAY,
            key_size: 4,
            value_size: 4,
            max_entries: slots.len() as u32,
            flags: 0,
            name: "progs".into(),
        };
        FakeProgArray { def, slots }
    }
}

impl Map for FakeProgArray {
    fn def(&self) -> &MapDef {
        &self.def
    }
    fn lookup(&mut self, _key: &[u8], _cpu: u32) -> Option<u32> {
        None
    }
    fn update(&mut self, _key: &[u8], _value: &[u8], _flags: u64, _cpu: u32) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    fn delete(&mut self, _key: &[u8]) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    fn syscall_value_size(&self) -> usize {
        4
    }
    fn lookup_copy(&self, _key: &[u8], _out: &mut [u8]) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    fn update_copy(&mut self, _key: &[u8], _value: &[u8], _flags: u64) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    fn get_next_key(&self, _key: Option<&[u8]>, _next: &mut [u8]) -> Result<(), Errno> {
        Err(Errno::ENOENT)
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
}

/// A ringbuf that hands out space front to back (8-byte header, 8-byte
/// aligned records) and remembers what was committed.
pub struct FakeRingbuf {
    pub def: MapDef,
    pub data: Vec<u8>,
    pub head: usize,
    /// (sample offset, discarded) per commit, and output copies.
    pub commits: Vec<(u32, bool)>,
    pub outputs: Vec<Vec<u8>>,
}

impl FakeRingbuf {
    pub fn new(size: u32) -> Self {
        let def = MapDef { map_type: map_type::RINGBUF, max_entries: size, name: "rb".into(), ..MapDef::default() };
        FakeRingbuf { def, data: vec![0; size as usize], head: 0, commits: Vec::new(), outputs: Vec::new() }
    }
}

impl Map for FakeRingbuf {
    fn def(&self) -> &MapDef {
        &self.def
    }
    fn lookup(&mut self, _key: &[u8], _cpu: u32) -> Option<u32> {
        None
    }
    fn update(&mut self, _key: &[u8], _value: &[u8], _flags: u64, _cpu: u32) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    fn delete(&mut self, _key: &[u8]) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    fn syscall_value_size(&self) -> usize {
        0
    }
    fn lookup_copy(&self, _key: &[u8], _out: &mut [u8]) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    fn update_copy(&mut self, _key: &[u8], _value: &[u8], _flags: u64) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    fn get_next_key(&self, _key: Option<&[u8]>, _next: &mut [u8]) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }
    fn values(&self) -> &[u8] {
        &self.data
    }
    fn values_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
    fn slot_size(&self) -> u32 {
        0
    }
    fn ringbuf_reserve(&mut self, size: u64) -> Option<u32> {
        let need = (8 + size as usize).div_ceil(8) * 8;
        if self.head + need > self.data.len() {
            return None;
        }
        let sample = self.head + 8;
        self.head += need;
        Some(sample as u32)
    }
    fn ringbuf_commit(&mut self, offset: u32, discard: bool) -> Result<(), Errno> {
        self.commits.push((offset, discard));
        Ok(())
    }
    fn ringbuf_output(&mut self, data: &[u8]) -> Result<(), Errno> {
        self.outputs.push(data.to_vec());
        Ok(())
    }
    fn ringbuf_query(&self, what: u64) -> u64 {
        if what == 1 {
            self.def.max_entries as u64
        } else {
            self.head as u64
        }
    }
}
