//! The probe-read helpers: copies from kernel or user memory into program
//! memory, with Linux's conventions (on a fault the destination is zeroed
//! and the helper returns -EFAULT; the `_str` variants return the length
//! copied including the NUL).
//!
//! An address inside one of the program's own regions (its stack, context
//! or map values) is read from there: a program may probe-read its own
//! memory as it can in Linux, where those are kernel addresses. Any other
//! kernel address is read through [`crate::osutil::Os::copy_from_kernel`],
//! a user address through [`crate::osutil::Os::copy_from_user`].

use super::err;
use crate::program::{memory, Env};
use crate::retcode::{Errno, Fault};
use alloc::vec;
use alloc::vec::Vec;

/// Where the source pointer points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Kernel memory (or the program's own memory).
    Kernel,
    /// The current task's user memory.
    User,
}

/// Reads `len` bytes at `src` from `source`, or `None` on a fault.
fn fetch(env: &Env, src: u64, len: usize, source: Source) -> Option<Vec<u8>> {
    if source == Source::Kernel && memory::is_program_address(env, src) {
        return memory::bytes(env, 0, src, len).ok().map(<[u8]>::to_vec);
    }
    let mut buf = vec![0u8; len];
    let copied = match source {
        Source::Kernel => env.os.copy_from_kernel(&mut buf, src),
        Source::User => env.os.copy_from_user(&mut buf, src),
    };
    copied.ok().map(|()| buf)
}

/// bpf_probe_read{,_kernel,_user}: `size` bytes at `src` into `dst`.
pub fn read(env: &mut Env, pc: usize, dst: u64, size: u64, src: u64, source: Source) -> Result<u64, Fault> {
    if size == 0 {
        return Ok(0);
    }
    let len = size as usize;
    memory::bytes_mut(env, pc, dst, len)?;
    let data = fetch(env, src, len, source);
    let out = memory::bytes_mut(env, pc, dst, len)?;
    Ok(match data {
        Some(d) => {
            out.copy_from_slice(&d);
            0
        }
        None => {
            out.fill(0);
            err(Errno::EFAULT)
        }
    })
}

/// Reads a NUL-terminated string of at most `max` bytes (the NUL
/// included) at `src`, page by page so that a string ending before an
/// unmapped page reads fine; `None` on a fault before the NUL.
pub fn fetch_str(env: &Env, src: u64, max: usize, source: Source) -> Option<Vec<u8>> {
    const PAGE: u64 = 4096;
    let mut out = Vec::new();
    let mut at = src;
    while out.len() < max {
        let to_page_end = (PAGE - at % PAGE) as usize;
        let chunk = to_page_end.min(max - out.len());
        let bytes = fetch(env, at, chunk, source).or_else(|| fetch_bytewise(env, at, chunk, source))?;
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            out.extend_from_slice(&bytes[..nul]);
            return Some(out);
        }
        out.extend_from_slice(&bytes);
        at = at.wrapping_add(chunk as u64);
    }
    out.truncate(max.saturating_sub(1));
    Some(out)
}

/// A chunk that faulted as a whole (program memory ends mid-page) read a
/// byte at a time: the bytes up to the NUL, or `None` if a byte before it
/// faults.
fn fetch_bytewise(env: &Env, at: u64, chunk: usize, source: Source) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    for i in 0..chunk as u64 {
        let b = fetch(env, at.wrapping_add(i), 1, source)?[0];
        bytes.push(b);
        if b == 0 {
            break;
        }
    }
    Some(bytes)
}

/// bpf_probe_read{,_kernel,_user}_str: the string at `src` into `size`
/// bytes at `dst`, always NUL-terminated; its length with the NUL, or
/// -EFAULT (with `dst` zeroed).
pub fn read_str(env: &mut Env, pc: usize, dst: u64, size: u64, src: u64, source: Source) -> Result<u64, Fault> {
    if size == 0 {
        return Ok(0);
    }
    let len = size as usize;
    memory::bytes_mut(env, pc, dst, len)?;
    let s = fetch_str(env, src, len, source);
    let out = memory::bytes_mut(env, pc, dst, len)?;
    Ok(match s {
        Some(s) => {
            out[..s.len()].copy_from_slice(&s);
            out[s.len()] = 0;
            s.len() as u64 + 1
        }
        None => {
            out.fill(0);
            err(Errno::EFAULT)
        }
    })
}
