//! Code the map types share: key and value checks, update-flag checks,
//! per-CPU value rounding, fallible arena allocation and the slot allocator
//! of the preallocated hash maps.

use crate::consts::update;
use crate::retcode::Errno;
use alloc::vec::Vec;

/// Rounds `n` up to a multiple of 8, as Linux lays out per-CPU values and
/// value slots.
pub fn round8(n: u32) -> u32 {
    n.div_ceil(8) * 8
}

/// Checks that `key` has the map's key size.
pub fn check_key(key: &[u8], key_size: u32) -> Result<(), Errno> {
    if key.len() == key_size as usize {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

/// Checks that `value` is `want` bytes long.
pub fn check_value(value: &[u8], want: usize) -> Result<(), Errno> {
    if value.len() == want {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

/// Checks MAP_UPDATE_ELEM flags as Linux does for maps without spin
/// locks: ANY, NOEXIST or EXIST; BPF_F_LOCK (no value has a spin lock
/// here) and unknown bits are EINVAL.
pub fn check_update_flags(flags: u64) -> Result<(), Errno> {
    if flags & update::F_LOCK != 0 || flags > update::EXIST {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

/// Checks an update of a key that does (`exists`) or does not exist
/// against NOEXIST (EEXIST) and EXIST (ENOENT).
pub fn check_exists(flags: u64, exists: bool) -> Result<(), Errno> {
    match (flags, exists) {
        (update::NOEXIST, true) => Err(Errno::EEXIST),
        (update::EXIST, false) => Err(Errno::ENOENT),
        _ => Ok(()),
    }
}

/// Whether programs may read values of a map with `flags` (not
/// BPF_F_WRONLY_PROG).
pub fn prog_may_read(flags: u32) -> bool {
    flags & super::flags::WRONLY_PROG == 0
}

/// EPERM for a program's update or delete of a BPF_F_RDONLY_PROG map
/// (which Linux's verifier refuses at load).
pub fn check_prog_write(flags: u32) -> Result<(), Errno> {
    if flags & super::flags::RDONLY_PROG != 0 {
        Err(Errno::EPERM)
    } else {
        Ok(())
    }
}

/// The first 4 bytes of `key` as a little-endian u32 (array indices).
pub fn index_of(key: &[u8]) -> Result<u32, Errno> {
    match key {
        [a, b, c, d] => Ok(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => Err(Errno::EINVAL),
    }
}

/// MAP_GET_NEXT_KEY of an index-keyed map (arrays, prog arrays): index 0
/// for no key or one past the end, ENOENT after the last index.
pub fn next_index(key: Option<&[u8]>, max_entries: u32, next: &mut [u8]) -> Result<(), Errno> {
    check_key(next, 4)?;
    let index = match key {
        Some(k) => {
            check_key(k, 4)?;
            index_of(k)?
        }
        None => u32::MAX,
    };
    let after = if index >= max_entries {
        0
    } else if index == max_entries - 1 {
        return Err(Errno::ENOENT);
    } else {
        index + 1
    };
    next.copy_from_slice(&after.to_le_bytes());
    Ok(())
}

/// `a * b * c` bytes, or E2BIG when the product does not fit a region
/// offset (regions are addressed with 32-bit offsets).
pub fn arena_len(a: u32, b: u32, c: u32) -> Result<usize, Errno> {
    let n = (a as u64).checked_mul(b as u64).and_then(|n| n.checked_mul(c as u64)).ok_or(Errno::E2BIG)?;
    if n > u32::MAX as u64 {
        return Err(Errno::E2BIG);
    }
    Ok(n as usize)
}

/// A zeroed buffer of `len` bytes, or ENOMEM when the allocator has none
/// (instead of aborting, as `vec!` would).
pub fn zeroed(len: usize) -> Result<Vec<u8>, Errno> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    v.resize(len, 0);
    Ok(v)
}

/// Per-CPU value layout: CPU `cpu`'s value of element `slot` starts at
/// `(slot * cpus + cpu) * stride`; the syscall view packs the CPUs' values
/// back to back, each `stride` (the value size rounded up to 8) long.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// The value size the map was created with.
    pub value_size: u32,
    /// Bytes between two values in the arena (`round8(value_size)`).
    pub stride: u32,
    /// Values per element: the CPU count for per-CPU maps, else 1.
    pub copies: u32,
    /// Whether the map is per-CPU (its syscall values are rounded even
    /// with one CPU).
    pub percpu: bool,
}

impl Layout {
    /// The layout of a map with one `value_size` value per element.
    pub fn plain(value_size: u32) -> Self {
        Layout { value_size, stride: round8(value_size), copies: 1, percpu: false }
    }

    /// The layout of a per-CPU map with `cpus` values per element.
    pub fn percpu(value_size: u32, cpus: u32) -> Self {
        Layout { value_size, stride: round8(value_size), copies: cpus, percpu: true }
    }

    /// The copy a program on `cpu` works on (`None` for a CPU the map has
    /// no value for).
    pub fn copy_of(&self, cpu: u32) -> Option<u32> {
        if !self.percpu {
            Some(0)
        } else if cpu < self.copies {
            Some(cpu)
        } else {
            None
        }
    }

    /// The arena offset of copy `cpu` of element `slot`.
    pub fn offset(&self, slot: u32, cpu: u32) -> usize {
        (slot as usize * self.copies as usize + cpu as usize) * self.stride as usize
    }

    /// Bytes MAP_LOOKUP_ELEM copies: one value, or every CPU's rounded.
    pub fn syscall_size(&self) -> usize {
        if !self.percpu {
            self.value_size as usize
        } else {
            self.copies as usize * self.stride as usize
        }
    }

    /// Copies element `slot`'s value(s) out in the syscall layout.
    pub fn read(&self, arena: &[u8], slot: u32, out: &mut [u8]) -> Result<(), Errno> {
        check_value(out, self.syscall_size())?;
        let at = self.offset(slot, 0);
        out.copy_from_slice(&arena[at..at + out.len()]);
        Ok(())
    }

    /// Sets element `slot`'s value(s) from the syscall layout.
    pub fn write(&self, arena: &mut [u8], slot: u32, value: &[u8]) -> Result<(), Errno> {
        check_value(value, self.syscall_size())?;
        let at = self.offset(slot, 0);
        arena[at..at + value.len()].copy_from_slice(value);
        Ok(())
    }

    /// Sets copy `cpu` of element `slot` from a program's value; with
    /// `zero_others`, the other CPUs' copies become zero (a new per-CPU
    /// element created by a program, as Linux does).
    pub fn write_one(&self, arena: &mut [u8], slot: u32, cpu: u32, value: &[u8], zero_others: bool) {
        if zero_others {
            let at = self.offset(slot, 0);
            arena[at..at + self.copies as usize * self.stride as usize].fill(0);
        }
        let at = self.offset(slot, cpu);
        arena[at..at + value.len()].copy_from_slice(value);
    }
}

/// The free slots of a preallocated map, as a free list: `take` gives the
/// most recently freed slot (slots never used go out from 0 up). Which slot
/// an element gets is not observable through `bpf(2)`.
#[derive(Debug, Clone)]
pub struct Slots {
    free: Vec<u32>,
}

impl Slots {
    /// `n` free slots, handed out from slot 0 up.
    pub fn new(n: u32) -> Result<Self, Errno> {
        let mut free = Vec::new();
        free.try_reserve_exact(n as usize).map_err(|_| Errno::ENOMEM)?;
        free.extend((0..n).rev());
        Ok(Slots { free })
    }

    /// A free slot, if any.
    pub fn take(&mut self) -> Option<u32> {
        self.free.pop()
    }

    /// Returns `slot` to the free list.
    pub fn put(&mut self, slot: u32) {
        self.free.push(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_linux() {
        assert_eq!(check_update_flags(update::ANY), Ok(()));
        assert_eq!(check_update_flags(update::EXIST), Ok(()));
        assert_eq!(check_update_flags(update::F_LOCK), Err(Errno::EINVAL));
        assert_eq!(check_update_flags(3), Err(Errno::EINVAL));
        assert_eq!(check_exists(update::NOEXIST, true), Err(Errno::EEXIST));
        assert_eq!(check_exists(update::EXIST, false), Err(Errno::ENOENT));
        assert_eq!(check_exists(update::ANY, false), Ok(()));
    }

    #[test]
    fn arena_sizes_are_guarded() {
        assert_eq!(arena_len(4, 8, 2), Ok(64));
        assert_eq!(arena_len(u32::MAX, u32::MAX, u32::MAX), Err(Errno::E2BIG));
        assert_eq!(arena_len(1 << 16, 1 << 16, 1), Err(Errno::E2BIG));
        assert_eq!(round8(1), 8);
        assert_eq!(round8(16), 16);
    }

    #[test]
    fn percpu_layout_packs_rounded_values() {
        let l = Layout::percpu(4, 3);
        assert_eq!(l.syscall_size(), 24);
        let mut arena = vec![0u8; 2 * 24];
        l.write_one(&mut arena, 1, 2, &[1, 2, 3, 4], true);
        assert_eq!(l.offset(1, 2), 40);
        let mut out = vec![0u8; 24];
        l.read(&arena, 1, &mut out).unwrap();
        assert_eq!(&out[16..20], &[1, 2, 3, 4]);
        assert!(out[..16].iter().all(|b| *b == 0));
    }

    #[test]
    fn slots_are_handed_out_and_returned() {
        let mut s = Slots::new(2).unwrap();
        assert_eq!(s.take(), Some(0));
        assert_eq!(s.take(), Some(1));
        assert_eq!(s.take(), None);
        s.put(0);
        assert_eq!(s.take(), Some(0));
    }
}
