//! The run block: the memory the JIT's code reads through r12 (the run's
//! header words, then the region table), the status codes its entry
//! returns, and how an access is described to the slow path.
//!
//! The region table has one 128-byte entry per region id: the host address
//! of the region's first byte, then for each access size (1, 2, 4, 8) and
//! kind (load, store) the number of offsets such an access may start at
//! (0 when the fast path must not take it: no such access is allowed),
//! then the region's slot size (0: none), its reciprocal, and the region's
//! first virtual address. The emitted check is: region below
//! [`NREGIONS`], the zero-extended offset below the count (unsigned), and,
//! in a slotted region, `offset % slot + size <= slot`; or, for a region
//! known at compile time, the address minus the region's first virtual
//! address below the count (one unsigned compare: an address in another
//! region is far outside).

use crate::mem::{vaddr, RegionInfo};
use alloc::vec;
use alloc::vec::Vec;

/// Header word: the number of entries in the region table.
pub const NREGIONS: i32 = 0;
/// Header word: added to the host frame pointer (rbp) gives r10's value.
pub const STACK_DELTA: i32 = 8;
/// Header word: rsp of the innermost entry, where every exit returns to.
pub const ENTRY_RSP: i32 = 16;
/// Header word: instructions left (the code keeps it in r9 and stores it
/// here around calls out and at exits).
pub const BUDGET: i32 = 24;
/// Header word: the address of the Rust run state.
pub const STATE: i32 = 32;
/// Header word: the host frame pointer of the last frame; a call from it
/// is past [`crate::consts::MAX_FRAMES`].
pub const LAST_FRAME: i32 = 40;
/// Header word: r0 at a normal exit.
pub const R0: i32 = 48;
/// Header word: the host frame pointer at a bpf_loop or tail call.
pub const FRAME: i32 = 56;
/// Header word: the instruction of a budget or call-depth fault.
pub const FAULT_PC: i32 = 64;
/// Bytes of header before the region table.
pub const HEADER: i32 = 128;
/// Byte offset, within an entry, of the slot size.
pub const SLOT: i32 = 72;
/// Byte offset, within an entry, of the slot size's reciprocal
/// ([`reciprocal`]), with which the code computes `offset % slot` by two
/// multiplications instead of a division.
pub const SLOT_RECIPROCAL: i32 = 80;
/// Byte offset, within an entry, of the region's first virtual address.
pub const VBASE: i32 = 88;

/// `2^64 / d` rounded up (0 for 0 and 1): for 32-bit `n` and `d`, `n % d`
/// is the high half of `(reciprocal(d) * n mod 2^64) * d` (Lemire, Kaser
/// and Kurz, "Faster remainder by direct computation", 2019).
pub fn reciprocal(d: u32) -> u64 {
    if d == 0 {
        0
    } else {
        (u64::MAX / d as u64).wrapping_add(1)
    }
}

/// `n % d` as the code computes it, by multiplications.
#[cfg(test)]
pub fn remainder(n: u32, d: u32) -> u32 {
    let low = reciprocal(d).wrapping_mul(n as u64);
    ((low as u128 * d as u128) >> 64) as u32
}
/// log2 of a region entry's size.
pub const ENTRY_SHIFT: u8 = 7;
/// Words per region entry.
const ENTRY_WORDS: usize = 1 << (ENTRY_SHIFT - 3);

/// The exit went through `exit` of the entry function: r0 is in [`R0`].
pub const STATUS_OK: u64 = 0;
/// A fault was recorded in the run state.
pub const STATUS_FAULT: u64 = 1;
/// The budget ran out at [`FAULT_PC`].
pub const STATUS_BUDGET: u64 = 2;
/// A call at [`FAULT_PC`] went past the last frame.
pub const STATUS_CALL_DEPTH: u64 = 3;
/// A tail call ran its target to its exit: the frame returns its r0.
pub const STATUS_TAIL_DONE: u64 = 4;
/// Execution ran past the last instruction (at [`FAULT_PC`]).
pub const STATUS_RAN_OFF: u64 = 5;

/// Byte offset, within an entry, of the count of offsets where `size`
/// bytes may be accessed (a store if `write`).
pub fn count_offset(size: usize, write: bool) -> i32 {
    let size_index = size.trailing_zeros() as i32;
    8 + (size_index * 2 + write as i32) * 8
}

/// How an access reaches the slow path (the kind of check it needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Load = 0,
    /// A store.
    Store = 1,
    /// A read-modify-write (checked as a load, then as a store).
    Atomic = 2,
    /// cmpxchg: a store only when the comparison with r0 succeeds.
    CmpXchg = 3,
}

/// The slow path's description of an access: pc, kind and size in one word.
pub fn pack(pc: usize, kind: Access, size: usize) -> u32 {
    (pc as u32) << 6 | (kind as u32) << 4 | size as u32
}

/// The pc, kind and size of a packed access.
pub fn unpack(packed: u64) -> (usize, Access, usize) {
    let kind = match (packed >> 4) & 3 {
        0 => Access::Load,
        1 => Access::Store,
        2 => Access::Atomic,
        _ => Access::CmpXchg,
    };
    ((packed >> 6) as usize, kind, (packed & 15) as usize)
}

/// Words of a block with `regions` table entries.
pub fn words_for(regions: usize) -> usize {
    HEADER as usize / 8 + regions * ENTRY_WORDS
}

/// Sets header word `word` of a block.
pub fn set(words: &mut [u64], word: i32, v: u64) {
    words[word as usize / 8] = v;
}

/// Header word `word` of a block.
pub fn get(words: &[u64], word: i32) -> u64 {
    words[word as usize / 8]
}

/// The header and region table of a run, as the code reads them.
pub struct Block {
    /// Header words, then entries.
    pub words: Vec<u64>,
}

impl Block {
    /// A block for `regions` entries, every one refusing every access.
    pub fn new(regions: usize) -> Block {
        let header = HEADER as usize / 8;
        let mut words = vec![0u64; words_for(regions)];
        words[NREGIONS as usize / 8] = regions as u64;
        for r in 0..regions {
            words[header + r * ENTRY_WORDS + VBASE as usize / 8] = vaddr(r as u32, 0);
        }
        Block { words }
    }

    /// Sets a header word.
    pub fn set(&mut self, word: i32, v: u64) {
        set(&mut self.words, word, v);
    }

    /// A header word.
    pub fn get(&self, word: i32) -> u64 {
        get(&self.words, word)
    }

    /// Fills region `id`'s entry: accesses the fast path may take inline.
    pub fn set_region(&mut self, id: usize, host: u64, info: RegionInfo) {
        let e = HEADER as usize / 8 + id * ENTRY_WORDS;
        self.words[e] = host;
        for size in [1usize, 2, 4, 8] {
            for write in [false, true] {
                let ok = (!write || info.writable) && info.len as usize >= size;
                let count = if ok { info.len as u64 - size as u64 + 1 } else { 0 };
                self.words[e + count_offset(size, write) as usize / 8] = count;
            }
        }
        self.words[e + SLOT as usize / 8] = info.slot as u64;
        self.words[e + SLOT_RECIPROCAL as usize / 8] = reciprocal(info.slot);
    }

    /// Whether the emitted check lets `size` bytes at `offset` of region `id` through.
    #[cfg(test)]
    pub fn fast_allows(&self, id: usize, offset: u32, size: usize, write: bool) -> bool {
        if id as u64 >= self.get(NREGIONS) {
            return false;
        }
        let e = HEADER as usize / 8 + id * ENTRY_WORDS;
        let slot = self.words[e + SLOT as usize / 8];
        let in_slot = slot == 0 || remainder(offset, slot as u32) as u64 + size as u64 <= slot;
        (offset as u64) < self.words[e + count_offset(size, write) as usize / 8] && in_slot
    }

    /// Whether the check for a region known at compile time lets `size`
    /// bytes at virtual address `addr` through, for region `id`'s entry.
    #[cfg(test)]
    pub fn known_allows(&self, id: usize, addr: u64, size: usize, write: bool) -> bool {
        let e = HEADER as usize / 8 + id * ENTRY_WORDS;
        let offset = addr.wrapping_sub(self.words[e + VBASE as usize / 8]);
        offset < self.words[e + count_offset(size, write) as usize / 8]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packing_round_trips() {
        assert_eq!(unpack(pack(999_999, Access::CmpXchg, 8) as u64), (999_999, Access::CmpXchg, 8));
        assert_eq!(unpack(pack(0, Access::Load, 1) as u64), (0, Access::Load, 1));
    }

    proptest! {
        #[test]
        fn remainders_by_multiplication_are_exact(n: u32, d in 1u32..) {
            prop_assert_eq!(remainder(n, d), n % d);
        }

        #[test]
        fn remainders_by_small_slots_are_exact(n: u32, d in 1u32..4096) {
            prop_assert_eq!(remainder(n, d), n % d);
        }

        /// The emitted check admits exactly what the full check allows.
        #[test]
        fn fast_check_agrees_with_region_info(len in 0u32..64, slot in prop_oneof![Just(0u32), 1u32..16],
                writable: bool, offset in 0u32..80, size_log in 0u32..4, write: bool) {
            let info = RegionInfo { len, slot, writable };
            let mut b = Block::new(3);
            b.set_region(2, 0x1000, info);
            let size = 1usize << size_log;
            let fast = b.fast_allows(2, offset, size, write);
            let full = info.allows(offset, size as u32, write);
            prop_assert_eq!(fast, full);
            prop_assert!(!b.fast_allows(0, offset, size, write));
            prop_assert!(!b.fast_allows(3, offset, size, write));
        }

        /// The check for a known region admits exactly the accesses to that
        /// region the full check allows, and nothing of any other region.
        #[test]
        fn known_region_check_agrees_with_region_info(len in 0u32..64, writable: bool,
                region in 0u32..5, offset: u32, size_log in 0u32..4, write: bool) {
            let info = RegionInfo { len, slot: 0, writable };
            let mut b = Block::new(3);
            b.set_region(2, 0x1000, info);
            let size = 1usize << size_log;
            let known = b.known_allows(2, vaddr(region, offset), size, write);
            prop_assert_eq!(known, region == 2 && info.allows(offset, size as u32, write));
        }
    }
}
