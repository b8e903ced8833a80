//! Helpers: the functions a program calls by Linux helper id, with Linux's
//! arguments and return conventions (negative errnos as `u64`).
//!
//! Pointers a program passes are virtual addresses and are read and written
//! through [`crate::program::memory`], the same checked access the
//! interpreter uses. The only I/O is through the [`crate::osutil::Os`] of
//! the [`Env`]. bpf_loop and tail calls need the engine and are executed by
//! the interpreter and the JIT themselves; [`known`] lists them too.

mod maps;
mod printk;
mod probe;

use crate::consts::helper;
use crate::program::{memory, Env};
use crate::retcode::{Errno, Fault};
use alloc::format;
use alloc::string::String;

/// bpf_loop's largest `nr_loops` (BPF_MAX_LOOPS).
pub const MAX_LOOPS: u64 = 1 << 23;

/// Whether helper `id` exists in this runtime (the safety pass refuses
/// calls to any other).
pub fn known(id: u32) -> bool {
    arg_count(id).is_some()
}

/// How many argument registers (r1 up) helper `id` reads, or `None` for
/// a helper this runtime does not have. trace_printk reads r1 and r2 and
/// as many of r3-r5 as its format needs; the safety pass checks r1-r2.
pub fn arg_count(id: u32) -> Option<u8> {
    use helper::*;
    Some(match id {
        KTIME_GET_NS | KTIME_GET_BOOT_NS | KTIME_GET_COARSE_NS | GET_PRANDOM_U32 | GET_SMP_PROCESSOR_ID => 0,
        GET_CURRENT_PID_TGID | GET_CURRENT_UID_GID => 0,
        MAP_LOOKUP_ELEM | MAP_DELETE_ELEM | GET_CURRENT_COMM | TRACE_PRINTK => 2,
        RINGBUF_SUBMIT | RINGBUF_DISCARD | RINGBUF_QUERY => 2,
        PROBE_READ | PROBE_READ_STR | PROBE_READ_USER | PROBE_READ_KERNEL => 3,
        PROBE_READ_USER_STR | PROBE_READ_KERNEL_STR | TAIL_CALL | RINGBUF_RESERVE => 3,
        MAP_UPDATE_ELEM | RINGBUF_OUTPUT | LOOP => 4,
        _ => return None,
    })
}

/// Calls helper `id` with r1-r5 = `args` from instruction `pc`; r0.
///
/// A helper that fails in a way Linux reports through its return value
/// returns a negative errno; one whose arguments a Linux verifier would
/// have refused (a map argument that is no map, a bad pointer) faults.
pub fn call(env: &mut Env, pc: usize, id: u32, args: [u64; 5]) -> Result<u64, Fault> {
    use helper::*;
    let [a1, a2, a3, a4, a5] = args;
    Ok(match id {
        MAP_LOOKUP_ELEM => maps::lookup(env, pc, id, a1, a2)?,
        MAP_UPDATE_ELEM => maps::update(env, pc, id, a1, a2, a3, a4)?,
        MAP_DELETE_ELEM => maps::delete(env, pc, id, a1, a2)?,
        KTIME_GET_NS | KTIME_GET_COARSE_NS => env.os.ktime_ns(),
        KTIME_GET_BOOT_NS => env.os.boot_time_ns(),
        GET_PRANDOM_U32 => env.os.random_u32() as u64,
        GET_SMP_PROCESSOR_ID => env.cpu as u64,
        GET_CURRENT_PID_TGID => env.os.current_pid_tgid(),
        GET_CURRENT_UID_GID => env.os.current_uid_gid(),
        GET_CURRENT_COMM => current_comm(env, pc, a1, a2)?,
        TRACE_PRINTK => printk::trace_printk(env, pc, a1, a2, [a3, a4, a5])?,
        PROBE_READ | PROBE_READ_KERNEL => probe::read(env, pc, a1, a2, a3, probe::Source::Kernel)?,
        PROBE_READ_USER => probe::read(env, pc, a1, a2, a3, probe::Source::User)?,
        PROBE_READ_STR | PROBE_READ_KERNEL_STR => probe::read_str(env, pc, a1, a2, a3, probe::Source::Kernel)?,
        PROBE_READ_USER_STR => probe::read_str(env, pc, a1, a2, a3, probe::Source::User)?,
        RINGBUF_OUTPUT => maps::ringbuf_output(env, pc, id, a1, a2, a3, a4)?,
        RINGBUF_RESERVE => maps::ringbuf_reserve(env, pc, id, a1, a2, a3)?,
        RINGBUF_SUBMIT => maps::ringbuf_commit(env, pc, id, a1, false)?,
        RINGBUF_DISCARD => maps::ringbuf_commit(env, pc, id, a1, true)?,
        RINGBUF_QUERY => maps::ringbuf_query(env, pc, id, a1, a2)?,
        TAIL_CALL | LOOP => return Err(fault(pc, id, "is executed by the engine, not called")),
        _ => return Err(fault(pc, id, "is not a helper of this runtime")),
    })
}

/// A helper fault at `pc`.
fn fault(pc: usize, id: u32, reason: &str) -> Fault {
    Fault::Helper { pc, id, reason: String::from(reason) }
}

/// A negative errno as r0.
fn err(e: Errno) -> u64 {
    (-(e.code() as i64)) as u64
}

/// Bytes a helper copies to the native stack instead of the heap: every
/// usual key and value.
const INLINE_COPY: usize = 64;

/// Calls `f` with the environment and a copy of the `len` bytes of
/// program memory at `addr` (keys and values may live in the very map
/// they are passed to); up to [`INLINE_COPY`] bytes without an allocation.
fn with_copy<R>(
    env: &mut Env,
    pc: usize,
    addr: u64,
    len: u32,
    f: impl FnOnce(&mut Env, &[u8]) -> R,
) -> Result<R, Fault> {
    let mut inline = [0u8; INLINE_COPY];
    let heap;
    let bytes = memory::bytes(env, pc, addr, len as usize)?;
    let copy: &[u8] = match inline.get_mut(..bytes.len()) {
        Some(inline) => {
            inline.copy_from_slice(bytes);
            inline
        }
        None => {
            heap = bytes.to_vec();
            &heap
        }
    };
    Ok(f(env, copy))
}

/// bpf_get_current_comm: the task's name into `size` bytes at `buf`,
/// NUL-terminated and NUL-padded (truncated to `size - 1` characters).
fn current_comm(env: &mut Env, pc: usize, buf: u64, size: u64) -> Result<u64, Fault> {
    if size == 0 {
        return Ok(err(Errno::EINVAL));
    }
    let comm = env.os.current_comm();
    let size = usize::try_from(size).map_err(|_| fault(pc, helper::GET_CURRENT_COMM, "size too large"))?;
    let dst = memory::bytes_mut(env, pc, buf, size)?;
    dst.fill(0);
    let name_len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    let n = name_len.min(size - 1);
    dst[..n].copy_from_slice(&comm[..n]);
    Ok(0)
}

/// A helper fault naming a bad argument.
fn bad_arg(pc: usize, id: u32, what: &str, value: u64) -> Fault {
    Fault::Helper { pc, id, reason: format!("{what} {value:#x} is not valid") }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::{with_copy, INLINE_COPY};
    use crate::map::MapTable;
    use crate::mem::{vaddr, REGION_CTX};
    use crate::osutil::HostOs;
    use crate::program::Env;
    use crate::retcode::Fault;

    #[test]
    fn copies_are_the_bytes_inline_or_on_the_heap_and_bad_ones_fault() {
        let os = HostOs::with_seed(1);
        let mut maps = MapTable::new();
        let mut ctx: alloc::vec::Vec<u8> = (0..200u32).map(|i| (i * 7 + 1) as u8).collect();
        let want = ctx.clone();
        let mut env = Env::new(&os, &mut maps, &mut ctx);
        for (at, len) in [(5usize, 3usize), (0, INLINE_COPY), (1, INLINE_COPY + 1), (10, 190)] {
            let got = with_copy(&mut env, 0, vaddr(REGION_CTX, at as u32), len as u32, |_, b| b.to_vec());
            assert_eq!(got, Ok(want[at..at + len].to_vec()), "{len} bytes at {at}");
        }
        let past = with_copy(&mut env, 3, vaddr(REGION_CTX, 150), 51, |_, b| b.len());
        assert_eq!(past, Err(Fault::Memory { pc: 3, addr: vaddr(REGION_CTX, 150), size: 51, write: false }));
    }
}
