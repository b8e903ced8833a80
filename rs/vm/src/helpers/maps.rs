//! The map helpers: lookup, update and delete, and the ringbuf helpers.

use super::{bad_arg, err, with_copy};
use crate::consts::ringbuf;
use crate::map::Map;
use crate::mem::{handle_map, offset_of, region_of, vaddr, REGION_MAPS};
use crate::program::Env;
use crate::retcode::{Errno, Fault};

/// The id of the map a handle names, or the fault it is.
fn map_id(env: &Env, pc: usize, id: u32, handle: u64) -> Result<u32, Fault> {
    handle_map(handle).filter(|&m| env.maps.get(m).is_some()).ok_or_else(|| bad_arg(pc, id, "map handle", handle))
}

fn map_mut<'e>(env: &'e mut Env, map: u32) -> &'e mut dyn Map {
    env.maps.get_mut(map).expect("map_id checked the map exists")
}

/// bpf_map_lookup_elem: the address of the key's value, or 0.
pub fn lookup(env: &mut Env, pc: usize, id: u32, handle: u64, key: u64) -> Result<u64, Fault> {
    let m = map_id(env, pc, id, handle)?;
    let key_size = env.maps.get(m).map_or(0, |x| x.def().key_size);
    with_copy(env, pc, key, key_size, |env, key| {
        let cpu = env.cpu;
        map_mut(env, m).lookup(key, cpu).map_or(0, |off| vaddr(REGION_MAPS + m, off))
    })
}

/// bpf_map_update_elem: 0 or a negative errno.
pub fn update(env: &mut Env, pc: usize, id: u32, handle: u64, key: u64, value: u64, flags: u64) -> Result<u64, Fault> {
    let m = map_id(env, pc, id, handle)?;
    let (key_size, value_size) = env.maps.get(m).map_or((0, 0), |x| (x.def().key_size, x.def().value_size));
    with_copy(env, pc, key, key_size, |env, key| {
        with_copy(env, pc, value, value_size, |env, value| {
            let cpu = env.cpu;
            match map_mut(env, m).update(key, value, flags, cpu) {
                Ok(()) => 0,
                Err(e) => err(e),
            }
        })
    })?
}

/// bpf_map_delete_elem: 0 or a negative errno.
pub fn delete(env: &mut Env, pc: usize, id: u32, handle: u64, key: u64) -> Result<u64, Fault> {
    let m = map_id(env, pc, id, handle)?;
    let key_size = env.maps.get(m).map_or(0, |x| x.def().key_size);
    with_copy(env, pc, key, key_size, |env, key| match map_mut(env, m).delete(key) {
        Ok(()) => 0,
        Err(e) => err(e),
    })
}

/// bpf_ringbuf_output: copies `size` bytes at `data` as one record.
pub fn ringbuf_output(
    env: &mut Env,
    pc: usize,
    id: u32,
    handle: u64,
    data: u64,
    size: u64,
    flags: u64,
) -> Result<u64, Fault> {
    let m = map_id(env, pc, id, handle)?;
    if flags & !(ringbuf::NO_WAKEUP | ringbuf::FORCE_WAKEUP) != 0 {
        return Ok(err(Errno::EINVAL));
    }
    let len = u32::try_from(size).map_err(|_| bad_arg(pc, id, "size", size))?;
    with_copy(env, pc, data, len, |env, data| match map_mut(env, m).ringbuf_output(data) {
        Ok(()) => 0,
        Err(e) => err(e),
    })
}

/// bpf_ringbuf_reserve: the address of `size` reserved bytes, or 0.
pub fn ringbuf_reserve(env: &mut Env, pc: usize, id: u32, handle: u64, size: u64, flags: u64) -> Result<u64, Fault> {
    let m = map_id(env, pc, id, handle)?;
    if flags != 0 {
        return Ok(0);
    }
    Ok(map_mut(env, m).ringbuf_reserve(size).map_or(0, |off| vaddr(REGION_MAPS + m, off)))
}

/// bpf_ringbuf_submit and bpf_ringbuf_discard of the sample at `sample`.
pub fn ringbuf_commit(env: &mut Env, pc: usize, id: u32, sample: u64, discard: bool) -> Result<u64, Fault> {
    let region = region_of(sample);
    let m = region.checked_sub(REGION_MAPS).filter(|&m| env.maps.get(m).is_some());
    let m = m.ok_or_else(|| bad_arg(pc, id, "ringbuf sample", sample))?;
    map_mut(env, m)
        .ringbuf_commit(offset_of(sample), discard)
        .map_err(|_| bad_arg(pc, id, "ringbuf sample", sample))?;
    Ok(0)
}

/// bpf_ringbuf_query: what the map reports for `flags` (BPF_RB_AVAIL_DATA,
/// BPF_RB_RING_SIZE, BPF_RB_CONS_POS, BPF_RB_PROD_POS).
pub fn ringbuf_query(env: &mut Env, pc: usize, id: u32, handle: u64, flags: u64) -> Result<u64, Fault> {
    let m = map_id(env, pc, id, handle)?;
    Ok(env.maps.get(m).map_or(0, |map| map.ringbuf_query(flags)))
}
