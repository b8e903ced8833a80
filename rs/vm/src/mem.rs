//! Virtual addresses: what a program's pointers are.
//!
//! A pointer is `region << 32 | offset`. Region 0 is never valid, so NULL
//! and small integers fault. The stack, the context and each map's values
//! are regions; a map *handle* (what `ld_imm64` with `BPF_PSEUDO_MAP_FD`
//! loads, and what map helpers take as their first argument) is an address
//! in [`REGION_MAP_HANDLES`], which has no memory behind it: a program that
//! dereferences one faults.
//!
//! Every access is checked with [`RegionInfo::allows`]: the bytes must lie
//! inside the region and, in regions cut into value slots (hash maps,
//! per-CPU maps), inside one slot.

/// Bits of an address that are the offset.
pub const REGION_SHIFT: u32 = 32;
/// Never backed: NULL and small integers.
pub const REGION_NULL: u32 = 0;
/// The stack: [`crate::consts::MAX_FRAMES`] frames of 512 bytes; frame `k`'s
/// r10 is `vaddr(REGION_STACK, (k + 1) * 512)`.
pub const REGION_STACK: u32 = 1;
/// The context (r1 at entry).
pub const REGION_CTX: u32 = 2;
/// Map handles: the offset is the map's id. Not memory.
pub const REGION_MAP_HANDLES: u32 = 3;
/// Code addresses: what `ld_imm64` with `BPF_PSEUDO_FUNC` loads (the
/// offset is the callee's instruction index in its program), the callback
/// argument of bpf_loop. Not memory.
pub const REGION_FUNCS: u32 = 4;
/// The values of the map with id `m` are region `REGION_MAPS + m`.
pub const REGION_MAPS: u32 = 16;

/// The address of `offset` in `region`.
pub const fn vaddr(region: u32, offset: u32) -> u64 {
    (region as u64) << REGION_SHIFT | offset as u64
}

/// The region of an address (addresses above 2^64 of regions are simply
/// regions that do not exist).
pub const fn region_of(addr: u64) -> u32 {
    (addr >> REGION_SHIFT) as u32
}

/// The offset of an address within its region.
pub const fn offset_of(addr: u64) -> u32 {
    addr as u32
}

/// The handle of map `id`.
pub const fn map_handle(id: u32) -> u64 {
    vaddr(REGION_MAP_HANDLES, id)
}

/// The map id of a handle, if `addr` is one.
pub const fn handle_map(addr: u64) -> Option<u32> {
    if region_of(addr) == REGION_MAP_HANDLES {
        Some(offset_of(addr))
    } else {
        None
    }
}

/// The shape of a region, for checking an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionInfo {
    /// Bytes in the region.
    pub len: u32,
    /// Accesses must stay within one slot of this many bytes (0: no slots).
    pub slot: u32,
    /// Whether programs may store into it.
    pub writable: bool,
}

impl RegionInfo {
    /// Whether `size` bytes at `offset` may be accessed (and stored, if `write`).
    pub fn allows(&self, offset: u32, size: u32, write: bool) -> bool {
        if write && !self.writable {
            return false;
        }
        let end = offset as u64 + size as u64;
        if size == 0 || end > self.len as u64 {
            return false;
        }
        self.slot == 0 || (offset % self.slot) as u64 + size as u64 <= self.slot as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_region_and_offset() {
        let a = vaddr(REGION_MAPS + 7, 0x1234);
        assert_eq!(region_of(a), REGION_MAPS + 7);
        assert_eq!(offset_of(a), 0x1234);
        assert_eq!(handle_map(map_handle(9)), Some(9));
        assert_eq!(handle_map(a), None);
    }

    #[test]
    fn accesses_stay_inside_the_region_and_one_slot() {
        let r = RegionInfo { len: 64, slot: 16, writable: false };
        assert!(r.allows(0, 16, false));
        assert!(r.allows(48, 8, false));
        assert!(!r.allows(12, 8, false), "crosses a slot");
        assert!(!r.allows(60, 8, false), "crosses the end");
        assert!(!r.allows(0, 1, true), "read-only");
        assert!(!r.allows(0, 0, false));
        let whole = RegionInfo { len: 64, slot: 0, writable: true };
        assert!(whole.allows(12, 8, true));
        assert!(!whole.allows(u32::MAX, 2, false));
    }
}
