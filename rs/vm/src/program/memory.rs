//! Checked access to a program's memory, shared by the interpreter, the
//! helpers and (through the helpers) the JIT.
//!
//! An address is translated to a slice of the region it names (see
//! [`crate::mem`]): the run's stack, the context, or one map's value arena.
//! Every access is checked with [`RegionInfo::allows`] first; a bad one is a
//! [`Fault`] naming the instruction, never a host access.

use super::Env;
use crate::consts::{map_flags, STACK_PER_FRAME};
use crate::mem::{offset_of, region_of, RegionInfo, REGION_CTX, REGION_MAPS, REGION_STACK};
use crate::retcode::Fault;
use alloc::format;

/// The shape of `region` in `env`, or `None` when it is not memory (NULL,
/// map handles, code addresses, maps that do not exist).
pub fn region_info(env: &Env, region: u32) -> Option<RegionInfo> {
    let (whole, slot, writable) = region_slice(env, region)?;
    Some(RegionInfo { len: whole.len().min(u32::MAX as usize) as u32, slot, writable })
}

/// The whole slice of `region`, its slot size and whether programs may
/// store into it; `None` when it is not memory.
#[inline]
fn region_slice<'e>(env: &'e Env, region: u32) -> Option<(&'e [u8], u32, bool)> {
    match region {
        REGION_STACK => Some((&env.stack, 0, true)),
        REGION_CTX => Some((env.ctx, 0, env.ctx_writable)),
        r if r >= REGION_MAPS => {
            let map = env.maps.get(r - REGION_MAPS)?;
            Some((map.values(), map.slot_size(), map.def().flags & map_flags::RDONLY_PROG == 0))
        }
        _ => None,
    }
}

/// Checks a `len`-byte access at `addr` (a store if `write`) against a
/// region of that shape: the offset, or the fault the access is.
#[inline]
fn check_in(info: Option<RegionInfo>, pc: usize, addr: u64, len: usize, write: bool) -> Result<usize, Fault> {
    let memory = || Fault::Memory { pc, addr, size: len as u32, write };
    let info = info.ok_or_else(memory)?;
    let len32 = u32::try_from(len).map_err(|_| memory())?;
    if !info.allows(offset_of(addr), len32, false) {
        return Err(memory());
    }
    if write && !info.writable {
        return Err(Fault::ReadOnly { pc, addr });
    }
    Ok(offset_of(addr) as usize)
}

/// The `len` bytes at `addr`, for reading.
#[inline]
pub fn bytes<'e>(env: &'e Env, pc: usize, addr: u64, len: usize) -> Result<&'e [u8], Fault> {
    let region = region_slice(env, region_of(addr));
    let info =
        region.map(|(s, slot, writable)| RegionInfo { len: s.len().min(u32::MAX as usize) as u32, slot, writable });
    let off = check_in(info, pc, addr, len, false)?;
    let whole = region.map_or(&[][..], |r| r.0);
    Ok(&whole[off..off + len])
}

/// The `len` bytes at `addr`, for writing.
#[inline]
pub fn bytes_mut<'e>(env: &'e mut Env, pc: usize, addr: u64, len: usize) -> Result<&'e mut [u8], Fault> {
    let off = check_in(region_info(env, region_of(addr)), pc, addr, len, true)?;
    let whole: &mut [u8] = match region_of(addr) {
        REGION_STACK => &mut env.stack,
        REGION_CTX => env.ctx,
        r => match env.maps.get_mut(r - REGION_MAPS) {
            Some(m) => m.values_mut(),
            None => &mut [],
        },
    };
    Ok(&mut whole[off..off + len])
}

/// The `len` bytes at `addr`, checked as a load but borrowed mutably: for
/// the JIT's cmpxchg, whose locked instruction writes back the bytes it
/// read when the comparison fails, in read-only memory too.
pub fn bytes_read_mut<'e>(env: &'e mut Env, pc: usize, addr: u64, len: usize) -> Result<&'e mut [u8], Fault> {
    let off = check_in(region_info(env, region_of(addr)), pc, addr, len, false)?;
    let whole: &mut [u8] = match region_of(addr) {
        REGION_STACK => &mut env.stack,
        REGION_CTX => env.ctx,
        r => match env.maps.get_mut(r - REGION_MAPS) {
            Some(m) => m.values_mut(),
            None => &mut [],
        },
    };
    Ok(&mut whole[off..off + len])
}

/// Refuses an atomic access whose address is not a multiple of its size,
/// as Linux does: a locked instruction across a cache line is a split
/// lock, which a host may punish (a bus lock, or SIGBUS with
/// `split_lock_detect=fatal`). Both engines check this before the bounds.
pub fn check_atomic_alignment(pc: usize, addr: u64, size: usize) -> Result<(), Fault> {
    if addr.is_multiple_of(size as u64) {
        return Ok(());
    }
    Err(Fault::Other { pc, reason: format!("atomic access of {size} bytes at {addr:#x} is not aligned to its size") })
}

/// Prepares the stack for a run: [`crate::program::STACK_SIZE`] bytes, the
/// first frame zeroed. Every other frame is zeroed when a call enters it
/// ([`zero_frame`]); a frame a run never enters keeps what an earlier run
/// left there (only pointer arithmetic past a program's own frames reaches
/// it, and it is the stack region still). Zeroing 4 KiB for every run was
/// most of a short run's cost.
pub fn fresh_stack(env: &mut Env) {
    if env.stack.len() == super::STACK_SIZE {
        env.stack[..STACK_PER_FRAME].fill(0);
    } else {
        env.stack.clear();
        env.stack.resize(super::STACK_SIZE, 0);
    }
}

/// Zeroes frame `k` (its r10 is `vaddr(REGION_STACK, (k + 1) * 512)`), as
/// a call into it does.
pub fn zero_frame(env: &mut Env, k: usize) {
    if let Some(frame) = env.stack.get_mut(k * STACK_PER_FRAME..(k + 1) * STACK_PER_FRAME) {
        frame.fill(0);
    }
}

/// Loads a `size`-byte (1, 2, 4 or 8) little-endian value, zero-extended.
#[inline]
pub fn load(env: &Env, pc: usize, addr: u64, size: usize) -> Result<u64, Fault> {
    let b = bytes(env, pc, addr, size)?;
    Ok(match *b {
        [a] => a as u64,
        [a, b] => u16::from_le_bytes([a, b]) as u64,
        [a, b, c, d] => u32::from_le_bytes([a, b, c, d]) as u64,
        [a, b, c, d, e, f, g, h] => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => {
            let mut v = [0u8; 8];
            v[..size.min(8)].copy_from_slice(&b[..size.min(8)]);
            u64::from_le_bytes(v)
        }
    })
}

/// Stores the low `size` bytes of `value`, little-endian.
#[inline]
pub fn store(env: &mut Env, pc: usize, addr: u64, size: usize, value: u64) -> Result<(), Fault> {
    let b = bytes_mut(env, pc, addr, size)?;
    // Fixed-size writes for the four access sizes (no memcpy call).
    if let Ok(a) = <&mut [u8; 8]>::try_from(&mut *b) {
        *a = value.to_le_bytes();
    } else if let Ok(a) = <&mut [u8; 4]>::try_from(&mut *b) {
        *a = (value as u32).to_le_bytes();
    } else if let Ok(a) = <&mut [u8; 2]>::try_from(&mut *b) {
        *a = (value as u16).to_le_bytes();
    } else {
        b.copy_from_slice(&value.to_le_bytes()[..size.min(8)]);
    }
    Ok(())
}

/// Whether `addr` lies in one of the program's memory regions (whatever
/// its offset): the probe-read helpers read such addresses from program
/// memory instead of asking the OS.
pub fn is_program_address(env: &Env, addr: u64) -> bool {
    region_info(env, region_of(addr)).is_some()
}
