//! [`Os`] for a Linux process: the process is the "user", its own memory is
//! both user and kernel memory, read through `process_vm_readv` so that a
//! bad address is a [`CopyFault`] and never a crash.
#![allow(unsafe_code)]

use super::{CopyFault, ExecMemory, Os};
use crate::retcode::Errno;
use std::boxed::Box;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The host process as the OS: its pid and comm, its clocks and CPUs.
///
/// Copies *to* user memory (what `bpf(2)` writes through the pointers of
/// its attr: looked-up values, next keys, the verifier log, a test run's
/// context out) are refused with [`CopyFault`] unless enabled with the
/// unsafe [`HostOs::with_user_writes`]: in one process, "user memory" is
/// this process's memory, which safe code must not let a pointer in a byte
/// buffer overwrite.
pub struct HostOs {
    seed: AtomicU64,
    user_writes: bool,
}

impl HostOs {
    /// A host OS whose random numbers start from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        HostOs { seed: AtomicU64::new(seed | 1), user_writes: false }
    }

    /// The same OS, copying to user memory as `bpf(2)` asks.
    ///
    /// # Safety
    /// Every user pointer the runtime is then given to write through (in
    /// `Runtime::bpf`'s attrs) must point to memory of this process that
    /// is writable for that many bytes and not borrowed by live Rust
    /// references: the copy writes there as the kernel would.
    pub unsafe fn with_user_writes(mut self) -> Self {
        self.user_writes = true;
        self
    }
}

impl Default for HostOs {
    fn default() -> Self {
        HostOs::with_seed(now(libc::CLOCK_MONOTONIC))
    }
}

fn now(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid `ts`.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Copies between this process's memory and `local` with the kernel
/// checking the remote side: `write` copies local into remote.
fn vm_copy(local: *mut u8, remote: u64, len: usize, write: bool) -> Result<(), CopyFault> {
    if len == 0 {
        return Ok(());
    }
    let liov = libc::iovec { iov_base: local.cast(), iov_len: len };
    let riov = libc::iovec { iov_base: remote as usize as *mut libc::c_void, iov_len: len };
    // SAFETY: `local` is valid for `len` bytes (a slice the caller holds);
    // the remote side is checked by the kernel, which returns EFAULT for an
    // unmapped address instead of faulting this process. A write to the
    // remote side happens only for `copy_to_user`, which needs the unsafe
    // `with_user_writes`, whose caller vouches for the destination.
    let n = unsafe {
        if write {
            libc::process_vm_writev(libc::getpid(), &liov, 1, &riov, 1, 0)
        } else {
            libc::process_vm_readv(libc::getpid(), &liov, 1, &riov, 1, 0)
        }
    };
    if n == len as isize {
        Ok(())
    } else {
        Err(CopyFault)
    }
}

impl Os for HostOs {
    fn current_pid_tgid(&self) -> u64 {
        // SAFETY: getpid and gettid have no preconditions.
        let (pid, tid) = unsafe { (libc::getpid() as u64, libc::gettid() as u64) };
        pid << 32 | tid
    }
    fn current_uid_gid(&self) -> u64 {
        // SAFETY: getuid and getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid() as u64, libc::getgid() as u64) };
        gid << 32 | uid
    }
    fn current_comm(&self) -> [u8; 16] {
        let mut comm = [0u8; 16];
        // SAFETY: PR_GET_NAME writes at most 16 bytes into `comm`.
        unsafe { libc::prctl(libc::PR_GET_NAME, comm.as_mut_ptr()) };
        comm
    }
    fn ktime_ns(&self) -> u64 {
        now(libc::CLOCK_MONOTONIC)
    }
    fn boot_time_ns(&self) -> u64 {
        now(libc::CLOCK_BOOTTIME)
    }
    fn cpu_id(&self) -> u32 {
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        (cpu.max(0) as u32).min(self.cpu_count() - 1)
    }
    fn cpu_count(&self) -> u32 {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
        n.max(1) as u32
    }
    fn random_u32(&self) -> u32 {
        // xorshift64*, shared by all threads: good enough for sampling.
        let mut x = self.seed.load(Ordering::Relaxed);
        loop {
            let mut y = x;
            y ^= y >> 12;
            y ^= y << 25;
            y ^= y >> 27;
            match self.seed.compare_exchange_weak(x, y, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return (y.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32,
                Err(seen) => x = seen,
            }
        }
    }
    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), CopyFault> {
        vm_copy(dst.as_mut_ptr(), src, dst.len(), false)
    }
    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), CopyFault> {
        if !self.user_writes {
            return Err(CopyFault);
        }
        vm_copy(src.as_ptr() as *mut u8, dst, src.len(), true)
    }
    fn copy_from_kernel(&self, dst: &mut [u8], src: u64) -> Result<(), CopyFault> {
        vm_copy(dst.as_mut_ptr(), src, dst.len(), false)
    }
    fn console(&self, text: &str) {
        let _ = writeln!(std::io::stderr(), "{text}");
    }
    fn alloc_exec(&self, len: usize) -> Option<Box<dyn ExecMemory>> {
        HostExec::new(len).map(|m| Box::new(m) as Box<dyn ExecMemory>)
    }
}

/// Anonymous pages written once, then made read-only and executable.
struct HostExec {
    ptr: *mut u8,
    len: usize,
    installed: bool,
}

// SAFETY: the pages are owned by this value alone; after `install` they are
// read-only, so sharing the pointer between threads is sound.
unsafe impl Send for HostExec {}
// SAFETY: as above; `&HostExec` gives only the entry address.
unsafe impl Sync for HostExec {}

impl HostExec {
    fn new(len: usize) -> Option<Self> {
        let len = len.max(1).div_ceil(4096) * 4096;
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        Some(HostExec { ptr: ptr.cast(), len, installed: false })
    }
}

impl ExecMemory for HostExec {
    fn install(&mut self, code: &[u8]) -> Result<(), Errno> {
        if self.installed || code.len() > self.len {
            return Err(Errno::EINVAL);
        }
        // SAFETY: the mapping is writable and `len >= code.len()` bytes long,
        // and nothing executes it yet.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), self.ptr, code.len()) };
        // SAFETY: the mapping is ours; it becomes read-only and executable.
        let rc = unsafe { libc::mprotect(self.ptr.cast(), self.len, libc::PROT_READ | libc::PROT_EXEC) };
        if rc != 0 {
            return Err(Errno::ENOMEM);
        }
        self.installed = true;
        Ok(())
    }
    fn entry(&self) -> *const u8 {
        self.ptr
    }
}

impl Drop for HostExec {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `new` with this length and is no
        // longer used: the JIT drops its memory only with its program.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_to_user_memory_need_the_unsafe_opt_in() {
        let mut target = [0u8; 4];
        let addr = target.as_mut_ptr() as u64;
        assert_eq!(HostOs::with_seed(1).copy_to_user(addr, b"abcd"), Err(CopyFault));
        assert_eq!(target, [0; 4]);
        // SAFETY: `target` is this test's own writable array, not borrowed
        // while the copy writes it.
        let os = unsafe { HostOs::with_seed(1).with_user_writes() };
        assert_eq!(os.copy_to_user(addr, b"abcd"), Ok(()));
        assert_eq!(&target, b"abcd");
        assert_eq!(os.copy_to_user(8, b"x"), Err(CopyFault), "an unmapped address is a fault");
    }
}
