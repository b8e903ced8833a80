//! Loads a libbpf-style object and runs one of its programs.
//!
//! ```text
//! vm_run OBJECT.o PROGRAM [--jit] [--ctx-hex HEX] [--runs N]
//! ```
//!
//! PROGRAM is the program's function name. It runs N times (default 1) on
//! CPU 0, each run on a fresh copy of the context given in hex (empty by
//! default; SYSCALL programs may write it). After the last run one JSON
//! line is printed:
//!
//! ```text
//! {"r0": 42, "maps": {"NAME": [["KEY_HEX", "VALUE_HEX"], ...], ...}}
//! ```
//!
//! `r0` is a number (r0 as u64); each map of the object lists every entry
//! MAP_GET_NEXT_KEY iteration yields (every index of an array; ringbufs
//! have none), keys and values as their bytes in memory order in lowercase
//! hex (per-CPU values: every CPU's, each 8-byte rounded, as bpf(2) copies
//! them). Errors go to stderr with exit status 1.

use proctap_vm::elf::{entries, Engine, Loaded, Object};
use proctap_vm::osutil::{HostOs, Os};
use std::fmt::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vm_run: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: vm_run OBJECT.o PROGRAM [--jit] [--ctx-hex HEX] [--runs N]";

/// The command line.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    object: String,
    program: String,
    jit: bool,
    ctx: Vec<u8>,
    runs: u64,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut positional = Vec::new();
    let (mut jit, mut ctx, mut runs) = (false, Vec::new(), 1);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--jit" => jit = true,
            "--ctx-hex" => ctx = parse_hex(it.next().ok_or("--ctx-hex needs a value")?)?,
            "--runs" => {
                let n = it.next().ok_or("--runs needs a value")?;
                runs = n.parse().map_err(|_| format!("--runs {n}: not a number"))?;
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}\n{USAGE}")),
            _ => positional.push(a.clone()),
        }
    }
    let [object, program] = <[String; 2]>::try_from(positional).map_err(|_| USAGE.to_string())?;
    Ok(Args { object, program, jit, ctx, runs })
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digit = |c: u8| (c as char).to_digit(16).ok_or_else(|| format!("--ctx-hex: {:?} is not hex", c as char));
    if !text.len().is_multiple_of(2) {
        return Err(format!("--ctx-hex: odd number of hex digits ({})", text.len()));
    }
    text.as_bytes().chunks(2).map(|p| Ok((digit(p[0])? * 16 + digit(p[1])?) as u8)).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs the command line; the JSON line.
fn run(args: &[String]) -> Result<String, String> {
    let args = parse_args(args)?;
    let bytes = std::fs::read(&args.object).map_err(|e| format!("{}: {e}", args.object))?;
    let obj = Object::parse(&bytes).map_err(|e| format!("{}: {e}", args.object))?;
    if obj.program(&args.program).is_none() {
        let names: Vec<&str> = obj.programs.iter().map(|p| p.name.as_str()).collect();
        return Err(format!("{}: no program {} (it has: {})", args.object, args.program, names.join(", ")));
    }
    let os = HostOs::default();
    let mut loaded = Loaded::new(&obj, os.cpu_count()).map_err(|e| format!("{}: {e}", args.object))?;
    let engine = if args.jit { Engine::Jit } else { Engine::Interpreter };
    let mut r0 = 0;
    for _ in 0..args.runs {
        let mut ctx = args.ctx.clone();
        r0 = loaded.run_on(engine, &args.program, &os, &mut ctx, 0).map_err(|e| format!("{}: {e}", args.program))?;
    }
    Ok(json_line(r0, &loaded))
}

/// `{"r0": n, "maps": {...}}` for the object's maps, in the object's order.
fn json_line(r0: u64, loaded: &Loaded) -> String {
    let mut out = format!("{{\"r0\": {r0}, \"maps\": {{");
    for (i, (name, id)) in loaded.map_ids().iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(out, "{sep}{}: [", json_string(name));
        let map = loaded.maps.get(*id).expect("a loaded map is in the table");
        for (j, (k, v)) in entries(map).iter().enumerate() {
            let sep = if j == 0 { "" } else { ", " };
            let _ = write!(out, "{sep}[\"{}\", \"{}\"]", hex(k), hex(v));
        }
        out.push(']');
    }
    out.push_str("}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_command_line_parses() {
        let a = parse_args(&strings(&["o.o", "prog", "--runs", "3", "--ctx-hex", "0aFF", "--jit"])).unwrap();
        assert_eq!(a, Args { object: "o.o".into(), program: "prog".into(), jit: true, ctx: vec![10, 255], runs: 3 });
        let d = parse_args(&strings(&["o.o", "p"])).unwrap();
        assert_eq!((d.runs, d.jit, d.ctx.len()), (1, false, 0));
        assert!(parse_args(&strings(&["o.o"])).is_err());
        assert!(parse_args(&strings(&["o.o", "p", "x"])).is_err());
        assert!(parse_args(&strings(&["o.o", "p", "--runs"])).is_err());
        assert!(parse_args(&strings(&["o.o", "p", "--runs", "x"])).is_err());
        assert!(parse_args(&strings(&["o.o", "p", "--ctx-hex", "abc"])).is_err());
        assert!(parse_args(&strings(&["o.o", "p", "--ctx-hex", "zz"])).is_err());
        assert!(parse_args(&strings(&["o.o", "p", "--fast"])).is_err());
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(hex(&[3, 0, 0xab]), "0300ab");
    }
}
