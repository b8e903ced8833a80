//! An [`Os`] with fixed answers, for tests: pid, comm, time, CPU and
//! random numbers are fields; "user" and "kernel" memory are byte
//! buffers at chosen addresses; console lines are captured.

use proctap_vm::osutil::{CopyFault, Os};
use std::sync::Mutex;

/// Foreign memory: `bytes` at address `base`.
#[derive(Debug, Clone, Default)]
pub struct Area {
    pub base: u64,
    pub bytes: Vec<u8>,
}

impl Area {
    fn slice(&self, addr: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let start = addr.checked_sub(self.base)? as usize;
        let end = start.checked_add(len)?;
        (end <= self.bytes.len()).then_some(start..end)
    }
}

/// The fake OS.
#[derive(Debug)]
pub struct FakeOs {
    pub pid_tgid: u64,
    pub uid_gid: u64,
    pub comm: [u8; 16],
    pub time_ns: u64,
    pub boot_ns: u64,
    pub cpu: u32,
    pub cpus: u32,
    pub random: u32,
    pub user: Mutex<Area>,
    pub kernel: Area,
    pub lines: Mutex<Vec<String>>,
}

impl Default for FakeOs {
    fn default() -> Self {
        let mut comm = [0u8; 16];
        comm[..7].copy_from_slice(b"fake-os");
        FakeOs {
            pid_tgid: 0x0000_1234_0000_1235,
            uid_gid: 0x0000_03e8_0000_03e9,
            comm,
            time_ns: 1_000_000_007,
            boot_ns: 2_000_000_011,
            cpu: 1,
            cpus: 4,
            random: 0xdead_beef,
            user: Mutex::new(Area { base: 0x7000_0000, bytes: Vec::new() }),
            kernel: Area { base: 0xffff_8000_0000_0000, bytes: Vec::new() },
            lines: Mutex::new(Vec::new()),
        }
    }
}

impl FakeOs {
    /// The console lines written so far.
    pub fn console_lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Os for FakeOs {
    fn current_pid_tgid(&self) -> u64 {
        self.pid_tgid
    }
    fn current_uid_gid(&self) -> u64 {
        self.uid_gid
    }
    fn current_comm(&self) -> [u8; 16] {
        self.comm
    }
    fn ktime_ns(&self) -> u64 {
        self.time_ns
    }
    fn boot_time_ns(&self) -> u64 {
        self.boot_ns
    }
    fn cpu_id(&self) -> u32 {
        self.cpu
    }
    fn cpu_count(&self) -> u32 {
        self.cpus
    }
    fn random_u32(&self) -> u32 {
        self.random
    }
    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), CopyFault> {
        let user = self.user.lock().unwrap();
        let r = user.slice(src, dst.len()).ok_or(CopyFault)?;
        dst.copy_from_slice(&user.bytes[r]);
        Ok(())
    }
    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), CopyFault> {
        let mut user = self.user.lock().unwrap();
        let r = user.slice(dst, src.len()).ok_or(CopyFault)?;
        user.bytes[r].copy_from_slice(src);
        Ok(())
    }
    fn copy_from_kernel(&self, dst: &mut [u8], src: u64) -> Result<(), CopyFault> {
        let r = self.kernel.slice(src, dst.len()).ok_or(CopyFault)?;
        dst.copy_from_slice(&self.kernel.bytes[r]);
        Ok(())
    }
    fn console(&self, text: &str) {
        self.lines.lock().unwrap().push(text.to_string());
    }
}
