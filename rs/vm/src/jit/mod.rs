//! The x86-64 JIT (stub while being written).
pub mod x86_64;
