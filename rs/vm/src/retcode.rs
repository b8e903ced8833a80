//! Errors: Linux errno values for the `bpf(2)` surface, and typed errors for
//! loading and running programs.

use alloc::string::String;
use core::fmt;

/// A Linux errno, as `bpf(2)` returns it (negated in the syscall's return).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
#[allow(missing_docs)]
pub enum Errno {
    EPERM = 1,
    ENOENT = 2,
    E2BIG = 7,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    EINVAL = 22,
    ENOSPC = 28,
    ERANGE = 34,
    ENOSYS = 38,
    ELOOP = 40,
    EOPNOTSUPP = 95,
    /// Linux's internal ENOTSUPP, which bpf(2) does return.
    ENOTSUPP = 524,
}

impl Errno {
    /// The positive errno number.
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}

/// Why a running program stopped before its `exit`. The host is never
/// touched: the run ends and the caller gets this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A load or store outside the program's regions (or across a region's
    /// or value slot's end), at instruction `pc`.
    Memory {
        /// The instruction index.
        pc: usize,
        /// The virtual address accessed.
        addr: u64,
        /// The access size in bytes.
        size: u32,
        /// Whether it was a store.
        write: bool,
    },
    /// A store into a read-only region (the context of some hooks, .rodata).
    ReadOnly {
        /// The instruction index.
        pc: usize,
        /// The virtual address stored to.
        addr: u64,
    },
    /// The instruction budget ran out.
    Budget {
        /// The instruction index where it ran out.
        pc: usize,
        /// The budget.
        budget: u64,
    },
    /// A helper the runtime does not have, or one called with bad arguments
    /// it cannot report through its return value.
    Helper {
        /// The instruction index.
        pc: usize,
        /// The helper id.
        id: u32,
        /// What went wrong.
        reason: String,
    },
    /// Call depth over [`crate::consts::MAX_FRAMES`].
    CallDepth {
        /// The instruction index.
        pc: usize,
    },
    /// Anything else the safety pass could not rule out statically.
    Other {
        /// The instruction index.
        pc: usize,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Memory { pc, addr, size, write } => {
                let what = if *write { "store" } else { "load" };
                write!(f, "insn {pc}: {what} of {size} bytes at {addr:#x} is outside the program's memory")
            }
            Fault::ReadOnly { pc, addr } => write!(f, "insn {pc}: store to read-only memory at {addr:#x}"),
            Fault::Budget { pc, budget } => write!(f, "insn {pc}: instruction budget of {budget} exhausted"),
            Fault::Helper { pc, id, reason } => write!(f, "insn {pc}: helper {id}: {reason}"),
            Fault::CallDepth { pc } => write!(f, "insn {pc}: call depth over {}", crate::consts::MAX_FRAMES),
            Fault::Other { pc, reason } => write!(f, "insn {pc}: {reason}"),
        }
    }
}

/// Why an object or a program was refused at load, naming where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The ELF section (or program name) refused; empty for a raw program.
    pub section: String,
    /// The instruction index within the section's program, when one is at fault.
    pub insn: Option<usize>,
    /// What is wrong, in words.
    pub reason: String,
    /// The errno a `bpf(2)` caller gets.
    pub errno: Errno,
}

impl LoadError {
    /// An error at instruction `insn` of a program (section filled in later).
    pub fn at(insn: usize, errno: Errno, reason: impl Into<String>) -> Self {
        LoadError { section: String::new(), insn: Some(insn), reason: reason.into(), errno }
    }

    /// An error not tied to an instruction.
    pub fn new(errno: Errno, reason: impl Into<String>) -> Self {
        LoadError { section: String::new(), insn: None, reason: reason.into(), errno }
    }

    /// The same error, naming its section.
    pub fn in_section(mut self, section: impl Into<String>) -> Self {
        self.section = section.into();
        self
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.section.is_empty() {
            write!(f, "section {}: ", self.section)?;
        }
        if let Some(i) = self.insn {
            write!(f, "insn {i}: ")?;
        }
        write!(f, "{} ({})", self.reason, self.errno)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LoadError {}
#[cfg(feature = "std")]
impl std::error::Error for Fault {}
#[cfg(feature = "std")]
impl std::error::Error for Errno {}
