//! Everything OS-specific, behind one trait: the current task, time, CPUs,
//! copies from and to user (and kernel) memory with faults reported, the
//! JIT's executable memory, and the console.
//!
//! An OS embedding the runtime implements [`Os`]; [`HostOs`] (feature
//! `std`) implements it for a Linux process, for tests and tools.

use crate::retcode::Errno;
use alloc::boxed::Box;

/// A copy from or to foreign memory hit an unmapped or protected address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyFault;

/// What the runtime needs from the OS it runs in.
pub trait Os: Send + Sync {
    /// The current task's `tgid << 32 | pid` (Linux's pid is the thread id).
    fn current_pid_tgid(&self) -> u64;
    /// The current task's `gid << 32 | uid`.
    fn current_uid_gid(&self) -> u64 {
        0
    }
    /// The current task's name, NUL-padded.
    fn current_comm(&self) -> [u8; 16];
    /// Monotonic time in nanoseconds.
    fn ktime_ns(&self) -> u64;
    /// Time since boot, suspend included, in nanoseconds.
    fn boot_time_ns(&self) -> u64 {
        self.ktime_ns()
    }
    /// The CPU this code runs on, below [`Os::cpu_count`].
    fn cpu_id(&self) -> u32;
    /// The number of possible CPUs (per-CPU maps hold one value each).
    fn cpu_count(&self) -> u32;
    /// A pseudo-random number (bpf_get_prandom_u32).
    fn random_u32(&self) -> u32;
    /// Copies `dst.len()` bytes of user memory at `src`.
    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), CopyFault>;
    /// Copies `src` to user memory at `dst`.
    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), CopyFault>;
    /// Copies `dst.len()` bytes of kernel memory at `src`.
    fn copy_from_kernel(&self, dst: &mut [u8], src: u64) -> Result<(), CopyFault>;
    /// Writes a line of trace output (bpf_trace_printk).
    fn console(&self, text: &str);
    /// Executable memory for `len` bytes of JIT code; `None` when the OS
    /// gives none (programs then run in the interpreter).
    fn alloc_exec(&self, len: usize) -> Option<Box<dyn ExecMemory>> {
        let _ = len;
        None
    }
}

/// Executable memory the JIT fills once.
pub trait ExecMemory: Send + Sync {
    /// Copies `code` in and makes the memory executable and read-only.
    /// Called once; the JIT calls [`ExecMemory::entry`] only after it.
    fn install(&mut self, code: &[u8]) -> Result<(), Errno>;
    /// The address of the first installed byte.
    fn entry(&self) -> *const u8;
}

#[cfg(feature = "std")]
mod host;
#[cfg(feature = "std")]
pub use host::HostOs;
