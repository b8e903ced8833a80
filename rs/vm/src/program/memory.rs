//! Checked access to a program's memory, shared by the interpreter, the
//! helpers and (through the helpers) the JIT.
//!
//! An address is translated to a slice of the region it names (see
//! [`crate::mem`]): the run's stack, the context, or one map's value arena.
//! Every access is checked with [`RegionInfo::allows`] first; a bad one is a
//! [`Fault`] naming the instruction, never a host access.

use super::Env;
use crate::consts::map_flags;
use crate::mem::{offset_of, region_of, RegionInfo, REGION_CTX, REGION_MAPS, REGION_STACK};
use crate::retcode::Fault;

/// The shape of `region` in `env`, or `None` when it is not memory (NULL,
/// map handles, code addresses, maps that do not exist).
pub fn region_info(env: &Env, region: u32) -> Option<RegionInfo> {
    match region {
        REGION_STACK => Some(RegionInfo { len: env.stack.len() as u32, slot: 0, writable: true }),
        REGION_CTX => Some(RegionInfo { len: env.ctx.len() as u32, slot: 0, writable: env.ctx_writable }),
        r if r >= REGION_MAPS => {
            let map = env.maps.get(r - REGION_MAPS)?;
            let writable = map.def().flags & map_flags::RDONLY_PROG == 0;
            Some(RegionInfo { len: map.values().len() as u32, slot: map.slot_size(), writable })
        }
        _ => None,
    }
}

/// Checks a `len`-byte access at `addr` (a store if `write`): the offset in
/// its region, or the fault the access is.
fn check(env: &Env, pc: usize, addr: u64, len: usize, write: bool) -> Result<u32, Fault> {
    let memory = Fault::Memory { pc, addr, size: len as u32, write };
    let Some(info) = region_info(env, region_of(addr)) else {
        return Err(memory);
    };
    let len = u32::try_from(len).map_err(|_| memory.clone())?;
    if !info.allows(offset_of(addr), len, false) {
        return Err(memory);
    }
    if write && !info.writable {
        return Err(Fault::ReadOnly { pc, addr });
    }
    Ok(offset_of(addr))
}

/// The `len` bytes at `addr`, for reading.
pub fn bytes<'e>(env: &'e Env, pc: usize, addr: u64, len: usize) -> Result<&'e [u8], Fault> {
    let off = check(env, pc, addr, len, false)? as usize;
    let whole: &[u8] = match region_of(addr) {
        REGION_STACK => &env.stack,
        REGION_CTX => env.ctx,
        r => env.maps.get(r - REGION_MAPS).map(|m| m.values()).unwrap_or(&[]),
    };
    Ok(&whole[off..off + len])
}

/// The `len` bytes at `addr`, for writing.
pub fn bytes_mut<'e>(env: &'e mut Env, pc: usize, addr: u64, len: usize) -> Result<&'e mut [u8], Fault> {
    let off = check(env, pc, addr, len, true)? as usize;
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

/// Loads a `size`-byte (1, 2, 4 or 8) little-endian value, zero-extended.
pub fn load(env: &Env, pc: usize, addr: u64, size: usize) -> Result<u64, Fault> {
    let b = bytes(env, pc, addr, size)?;
    let mut v = [0u8; 8];
    v[..size].copy_from_slice(b);
    Ok(u64::from_le_bytes(v))
}

/// Stores the low `size` bytes of `value`, little-endian.
pub fn store(env: &mut Env, pc: usize, addr: u64, size: usize, value: u64) -> Result<(), Fault> {
    bytes_mut(env, pc, addr, size)?.copy_from_slice(&value.to_le_bytes()[..size]);
    Ok(())
}

/// Whether `addr` lies in one of the program's memory regions (whatever
/// its offset): the probe-read helpers read such addresses from program
/// memory instead of asking the OS.
pub fn is_program_address(env: &Env, addr: u64) -> bool {
    region_info(env, region_of(addr)).is_some()
}
