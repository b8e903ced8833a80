//! Linux's eBPF numbers: instruction encoding, helper ids, map and program
//! types, `bpf(2)` commands and flags (include/uapi/linux/bpf.h).

/// Instruction classes (the low 3 bits of the opcode).
pub mod class {
    /// Loads of immediates (ld_imm64) and legacy packet loads.
    pub const LD: u8 = 0x00;
    /// Loads from memory into a register.
    pub const LDX: u8 = 0x01;
    /// Stores of an immediate.
    pub const ST: u8 = 0x02;
    /// Stores of a register, and atomics.
    pub const STX: u8 = 0x03;
    /// 32-bit arithmetic.
    pub const ALU: u8 = 0x04;
    /// 64-bit jumps, calls and exit.
    pub const JMP: u8 = 0x05;
    /// 32-bit jumps (and `gotol` under JA).
    pub const JMP32: u8 = 0x06;
    /// 64-bit arithmetic.
    pub const ALU64: u8 = 0x07;
}

/// Operand source (bit 3 of the opcode for ALU and JMP classes).
pub mod src {
    /// The immediate.
    pub const K: u8 = 0x00;
    /// The source register.
    pub const X: u8 = 0x08;
}

/// Access sizes (bits 3-4 of load and store opcodes).
pub mod size {
    /// 4 bytes.
    pub const W: u8 = 0x00;
    /// 2 bytes.
    pub const H: u8 = 0x08;
    /// 1 byte.
    pub const B: u8 = 0x10;
    /// 8 bytes.
    pub const DW: u8 = 0x18;
}

/// Load and store modes (bits 5-7).
pub mod mode {
    /// Immediate (ld_imm64).
    pub const IMM: u8 = 0x00;
    /// Legacy packet access, absolute.
    pub const ABS: u8 = 0x20;
    /// Legacy packet access, indirect.
    pub const IND: u8 = 0x40;
    /// Register plus offset.
    pub const MEM: u8 = 0x60;
    /// Sign-extending load (cpu v4).
    pub const MEMSX: u8 = 0x80;
    /// Atomic operation (STX only).
    pub const ATOMIC: u8 = 0xc0;
}

/// ALU operations (bits 4-7).
pub mod alu {
    #![allow(missing_docs)]
    pub const ADD: u8 = 0x00;
    pub const SUB: u8 = 0x10;
    pub const MUL: u8 = 0x20;
    /// Unsigned division, or signed when `off` is 1.
    pub const DIV: u8 = 0x30;
    pub const OR: u8 = 0x40;
    pub const AND: u8 = 0x50;
    pub const LSH: u8 = 0x60;
    pub const RSH: u8 = 0x70;
    pub const NEG: u8 = 0x80;
    /// Unsigned modulo, or signed when `off` is 1.
    pub const MOD: u8 = 0x90;
    pub const XOR: u8 = 0xa0;
    /// Move; with `off` 8, 16 or 32: move with sign extension (movsx).
    pub const MOV: u8 = 0xb0;
    pub const ARSH: u8 = 0xc0;
    /// Byte swap: to little endian (src K), to big endian (src X), or
    /// unconditional in ALU64 (bswap).
    pub const END: u8 = 0xd0;
}

/// Jump operations (bits 4-7).
pub mod jmp {
    #![allow(missing_docs)]
    pub const JA: u8 = 0x00;
    pub const JEQ: u8 = 0x10;
    pub const JGT: u8 = 0x20;
    pub const JGE: u8 = 0x30;
    pub const JSET: u8 = 0x40;
    pub const JNE: u8 = 0x50;
    pub const JSGT: u8 = 0x60;
    pub const JSGE: u8 = 0x70;
    pub const CALL: u8 = 0x80;
    pub const EXIT: u8 = 0x90;
    pub const JLT: u8 = 0xa0;
    pub const JLE: u8 = 0xb0;
    pub const JSLT: u8 = 0xc0;
    pub const JSLE: u8 = 0xd0;
}

/// Atomic operations (the `imm` of an STX | ATOMIC instruction).
pub mod atomic {
    #![allow(missing_docs)]
    pub const ADD: i32 = 0x00;
    pub const OR: i32 = 0x40;
    pub const AND: i32 = 0x50;
    pub const XOR: i32 = 0xa0;
    /// Or-ed into the op: the old value goes to `src`.
    pub const FETCH: i32 = 0x01;
    /// Exchange (always fetches).
    pub const XCHG: i32 = 0xe0 | FETCH;
    /// Compare with r0 and exchange; the old value goes to r0.
    pub const CMPXCHG: i32 = 0xf0 | FETCH;
}

/// `src_reg` values of special instructions.
pub mod pseudo {
    /// ld_imm64: `imm` is a map fd; the register gets the map.
    pub const MAP_FD: u8 = 1;
    /// ld_imm64: `imm` is a map fd, the next `imm` an offset into its value.
    pub const MAP_VALUE: u8 = 2;
    /// call: `imm` is the pc-relative offset of a BPF-to-BPF call.
    pub const CALL: u8 = 1;
}

/// The interpreter's and the JIT's register count (r0-r10).
pub const REGS: usize = 11;
/// The frame pointer register.
pub const FP: u8 = 10;
/// Bytes of stack per frame, as in Linux.
pub const STACK_PER_FRAME: usize = 512;
/// Call depth (frames) of BPF-to-BPF calls, as in Linux.
pub const MAX_FRAMES: usize = 8;
/// Tail calls per run, as in Linux (MAX_TAIL_CALL_CNT).
pub const MAX_TAIL_CALLS: u32 = 33;
/// Instructions a program may have (BPF_COMPLEXITY_LIMIT_INSNS's load cap).
pub const MAX_INSNS: usize = 1_000_000;

/// Helper function ids (enum bpf_func_id).
pub mod helper {
    #![allow(missing_docs)]
    pub const MAP_LOOKUP_ELEM: u32 = 1;
    pub const MAP_UPDATE_ELEM: u32 = 2;
    pub const MAP_DELETE_ELEM: u32 = 3;
    pub const PROBE_READ: u32 = 4;
    pub const KTIME_GET_NS: u32 = 5;
    pub const TRACE_PRINTK: u32 = 6;
    pub const GET_PRANDOM_U32: u32 = 7;
    pub const GET_SMP_PROCESSOR_ID: u32 = 8;
    pub const TAIL_CALL: u32 = 12;
    pub const GET_CURRENT_PID_TGID: u32 = 14;
    pub const GET_CURRENT_UID_GID: u32 = 15;
    pub const GET_CURRENT_COMM: u32 = 16;
    pub const PROBE_READ_STR: u32 = 45;
    pub const PROBE_READ_USER: u32 = 112;
    pub const PROBE_READ_KERNEL: u32 = 113;
    pub const PROBE_READ_USER_STR: u32 = 114;
    pub const PROBE_READ_KERNEL_STR: u32 = 115;
    pub const RINGBUF_OUTPUT: u32 = 130;
    pub const RINGBUF_RESERVE: u32 = 131;
    pub const RINGBUF_SUBMIT: u32 = 132;
    pub const RINGBUF_DISCARD: u32 = 133;
    pub const RINGBUF_QUERY: u32 = 134;
    pub const KTIME_GET_BOOT_NS: u32 = 125;
    pub const LOOP: u32 = 181;
    pub const KTIME_GET_COARSE_NS: u32 = 160;
}

/// Map types (enum bpf_map_type).
pub mod map_type {
    #![allow(missing_docs)]
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PROG_ARRAY: u32 = 3;
    pub const PERCPU_HASH: u32 = 5;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const LRU_HASH: u32 = 9;
    pub const LRU_PERCPU_HASH: u32 = 10;
    pub const RINGBUF: u32 = 27;
}

/// Program types (enum bpf_prog_type) the runtime knows.
pub mod prog_type {
    #![allow(missing_docs)]
    pub const UNSPEC: u32 = 0;
    pub const SOCKET_FILTER: u32 = 1;
    pub const KPROBE: u32 = 2;
    pub const TRACEPOINT: u32 = 5;
    pub const RAW_TRACEPOINT: u32 = 17;
    pub const TRACING: u32 = 26;
    pub const SYSCALL: u32 = 31;
}

/// `bpf(2)` commands (enum bpf_cmd).
pub mod cmd {
    #![allow(missing_docs)]
    pub const MAP_CREATE: u32 = 0;
    pub const MAP_LOOKUP_ELEM: u32 = 1;
    pub const MAP_UPDATE_ELEM: u32 = 2;
    pub const MAP_DELETE_ELEM: u32 = 3;
    pub const MAP_GET_NEXT_KEY: u32 = 4;
    pub const PROG_LOAD: u32 = 5;
    pub const PROG_ATTACH: u32 = 8;
    pub const PROG_DETACH: u32 = 9;
    pub const PROG_TEST_RUN: u32 = 10;
    pub const RAW_TRACEPOINT_OPEN: u32 = 17;
    pub const LINK_CREATE: u32 = 28;
    pub const LINK_DETACH: u32 = 34;
}

/// Flags of MAP_UPDATE_ELEM and bpf_map_update_elem.
pub mod update {
    /// Create or replace.
    pub const ANY: u64 = 0;
    /// Create only: EEXIST if the key is there.
    pub const NOEXIST: u64 = 1;
    /// Replace only: ENOENT if the key is not there.
    pub const EXIST: u64 = 2;
    /// Take the element's spin lock (refused: no spin locks here).
    pub const F_LOCK: u64 = 4;
}

/// Map flags of MAP_CREATE the runtime honours.
pub mod map_flags {
    /// Hash maps: allocate elements on demand (the runtime always
    /// preallocates; the flag is accepted).
    pub const NO_PREALLOC: u32 = 1 << 0;
    /// Read-only for programs.
    pub const RDONLY_PROG: u32 = 1 << 7;
    /// Array maps: mmap-able.
    pub const MMAPABLE: u32 = 1 << 10;
}

/// Ringbuf record header bits and helper flags (kernel/bpf/ringbuf.c).
pub mod ringbuf {
    /// The record is reserved and not yet committed.
    pub const BUSY_BIT: u32 = 1 << 31;
    /// The record was discarded: consumers skip it.
    pub const DISCARD_BIT: u32 = 1 << 30;
    /// Record header size.
    pub const HDR_SZ: u32 = 8;
    /// Submit flag: do not wake the consumer.
    pub const NO_WAKEUP: u64 = 1;
    /// Submit flag: wake the consumer.
    pub const FORCE_WAKEUP: u64 = 2;
}
