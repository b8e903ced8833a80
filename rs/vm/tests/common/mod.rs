//! A fake OS for the runtime's tests: 4 CPUs, a settable CPU id, a fixed
//! task, a clock that ticks on every read, a captured console, and a fake
//! user memory of separate blocks (any byte outside them faults), so the
//! `bpf(2)` surface's pointers can be exercised, EFAULT included. Also the
//! loader's BPF fixtures ([`fixtures`]) and raw kernel `bpf(2)` ([`kbpf`]).
#![allow(dead_code)]

use proctap_vm::osutil::{CopyFault, Os};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

pub const CPUS: u32 = 4;

#[derive(Default)]
pub struct FakeOs {
    pub cpu: AtomicU32,
    clock: AtomicU64,
    /// User memory: block start -> bytes.
    mem: Mutex<BTreeMap<u64, Vec<u8>>>,
    next: AtomicU64,
    pub console: Mutex<Vec<String>>,
}

impl FakeOs {
    pub fn new() -> Self {
        FakeOs { next: AtomicU64::new(0x1000_0000), ..FakeOs::default() }
    }

    pub fn set_cpu(&self, cpu: u32) {
        self.cpu.store(cpu, Ordering::Relaxed);
    }

    /// A new user block holding `bytes` (blocks are 4 KiB apart, so the
    /// byte past a block faults): its address.
    pub fn alloc(&self, bytes: &[u8]) -> u64 {
        let addr = self.next.fetch_add((bytes.len() as u64).div_ceil(4096) * 4096 + 4096, Ordering::Relaxed);
        self.mem.lock().unwrap().insert(addr, bytes.to_vec());
        addr
    }

    /// A zeroed user block of `len` bytes.
    pub fn alloc_zeroed(&self, len: usize) -> u64 {
        self.alloc(&vec![0; len])
    }

    /// A NUL-terminated user string.
    pub fn alloc_str(&self, s: &str) -> u64 {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.alloc(&b)
    }

    /// `len` bytes of user memory at `addr` (panics outside a block).
    pub fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        self.copy_from_user(&mut out, addr).expect("user memory");
        out
    }

    fn with_block<R>(&self, addr: u64, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, CopyFault> {
        let mut mem = self.mem.lock().unwrap();
        let (start, block) = mem.range_mut(..=addr).next_back().ok_or(CopyFault)?;
        let off = (addr - start) as usize;
        let end = off.checked_add(len).ok_or(CopyFault)?;
        if end > block.len() {
            return Err(CopyFault);
        }
        Ok(f(&mut block[off..end]))
    }
}

impl Os for FakeOs {
    fn current_pid_tgid(&self) -> u64 {
        42 << 32 | 43
    }
    fn current_comm(&self) -> [u8; 16] {
        *b"fake\0\0\0\0\0\0\0\0\0\0\0\0"
    }
    fn ktime_ns(&self) -> u64 {
        self.clock.fetch_add(1000, Ordering::Relaxed)
    }
    fn cpu_id(&self) -> u32 {
        self.cpu.load(Ordering::Relaxed)
    }
    fn cpu_count(&self) -> u32 {
        CPUS
    }
    fn random_u32(&self) -> u32 {
        4
    }
    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), CopyFault> {
        if dst.is_empty() {
            return Ok(());
        }
        self.with_block(src, dst.len(), |b| dst.copy_from_slice(b))
    }
    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), CopyFault> {
        if src.is_empty() {
            return Ok(());
        }
        self.with_block(dst, src.len(), |b| b.copy_from_slice(src))
    }
    fn copy_from_kernel(&self, _dst: &mut [u8], _src: u64) -> Result<(), CopyFault> {
        Err(CopyFault)
    }
    fn console(&self, text: &str) {
        self.console.lock().unwrap().push(text.to_string());
    }
}

/// Builds a `union bpf_attr` of `size` bytes from (offset, bytes) fields.
pub fn attr(size: usize, fields: &[(usize, &[u8])]) -> Vec<u8> {
    let mut a = vec![0u8; size];
    for (at, bytes) in fields {
        a[*at..*at + bytes.len()].copy_from_slice(bytes);
    }
    a
}

pub mod insns;

// The loader's tests: clang-built fixtures and the kernel's own bpf(2).
pub mod fixtures;
pub mod kbpf;
#[allow(unused_imports)]
pub use fixtures::{ci, fixture, fixture_bytes, fixture_cpu, fixture_defined, fixture_with};
