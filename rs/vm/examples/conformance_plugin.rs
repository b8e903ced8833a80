//! The plugin interface of the bpf_conformance suite.
//!
//! ```text
//! conformance_plugin [MEMORY_HEX] [--jit] < PROGRAM_HEX
//! ```
//!
//! The program's bytecode comes in hex on stdin (whitespace ignored); the
//! first argument, when present, is the initial memory in hex. The program
//! runs with r1 pointing to that memory (the context region, writable) and
//! r2 holding its length. r0 is printed as `%llx` and the exit status is 0;
//! a program the safety pass refuses, or a run that faults, prints the
//! error to stderr and exits 1.

use proctap_vm::jit::JitProgram;
use proctap_vm::map::MapTable;
use proctap_vm::mem::{vaddr, REGION_CTX};
use proctap_vm::osutil::HostOs;
use proctap_vm::program::verify::Options;
use proctap_vm::program::{Env, Insn, Program};
use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(r0) => {
            println!("{r0:x}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses hex, ignoring whitespace.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).map_err(|_| "hex is not ASCII".to_string())?;
            u8::from_str_radix(s, 16).map_err(|_| format!("bad hex byte {s:?}"))
        })
        .collect()
}

fn run() -> Result<u64, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let jit = args.iter().any(|a| a == "--jit");
    let memory_hex = args.iter().find(|a| !a.starts_with("--")).map_or("", String::as_str);
    let mut memory = parse_hex(memory_hex).map_err(|e| format!("memory: {e}"))?;
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| format!("reading the program: {e}"))?;
    let code = parse_hex(&text).map_err(|e| format!("program: {e}"))?;
    let insns = Insn::decode_all(&code).map_err(|e| e.to_string())?;

    let mut maps = MapTable::new();
    let options = Options { entry_args: 2 };
    let prog = Program::load_with("conformance", 0, insns, &maps, &options).map_err(|e| e.to_string())?;
    let os = HostOs::default();
    let len = memory.len() as u64;
    let mut env = Env::new(&os, &mut maps, &mut memory);
    env.ctx_writable = true;
    let r1 = vaddr(REGION_CTX, 0);
    if jit {
        return run_jit(&prog, &mut env, r1, len);
    }
    prog.run_with_regs(&mut env, r1, len).map_err(|e| e.to_string())
}

/// Compiles `prog` with the JIT and runs it with r1 and r2 set, as the
/// interpreter's `run_with_regs` does.
fn run_jit(prog: &Program, env: &mut Env, r1: u64, r2: u64) -> Result<u64, String> {
    let jit = JitProgram::compile(prog, env.os).map_err(|e| e.to_string())?;
    jit.run_with_regs(env, r1, r2).map_err(|e| e.to_string())
}
