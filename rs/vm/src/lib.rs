//! proctap-vm: a portable eBPF runtime for kernels that have none.
//!
//! It speaks Linux's eBPF: the `bpf(2)` commands with Linux's numbers and
//! `union bpf_attr` layouts ([`syscall`]), its map types ([`map`]), objects
//! as clang and libbpf write them ([`elf`]), and the instruction set as the
//! kernel implements it, run by an interpreter on every architecture and by
//! an x86-64 JIT ([`program`], [`jit`]). Everything OS-specific (the current
//! task, time, CPUs, user memory, executable memory, the console) sits
//! behind one trait, [`osutil::Os`]; the `std` feature brings a host
//! implementation for tests and tools.
//!
//! # Memory model
//! A program never sees a host address. Pointers are virtual addresses: the
//! region in the upper 32 bits ([`mem`]: the stack, the context, one region
//! per map's values), the offset in the lower 32. Every load and store is
//! translated and bounds-checked (by the interpreter, and by code the JIT
//! emits), so a program that passed the safety pass and still computes a bad
//! pointer stops with a fault: its loads and stores reach only its regions.
//! Other memory is reached only through the OS trait, as Linux's helpers
//! reach it: `bpf_probe_read_*` copies through [`osutil::Os`]'s
//! `copy_from_kernel`/`copy_from_user`, which decide what is readable (the
//! host implementation reads the process's own memory and reports unmapped
//! addresses as faults), and `bpf(2)`'s pointers are copied in and out
//! through `copy_from_user`/`copy_to_user`.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod consts;
pub mod mem;
pub mod osutil;
pub mod retcode;

pub mod elf;
pub mod helpers;
pub mod jit;
pub mod map;
pub mod program;
pub mod runtime;
pub mod syscall;
pub mod tracepoints;
