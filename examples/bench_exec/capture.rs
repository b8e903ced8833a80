//! Counting what a tracer wrote for the storm's execs: proctap's JSON lines
//! and execsnoop's text.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Deserialize;

use crate::bench_util::system::Result;
use crate::CHILD_COMM;

/// What a tracer wrote for the storm's execs.
#[derive(Default)]
pub struct Captured {
    pub events: u64,
    /// Sum over events of the argv bytes captured (each argument + 1 for its
    /// NUL), each capped at the real argv_bytes.
    pub argv_bytes: u64,
    /// Events whose whole argv was captured.
    pub whole: u64,
    /// proctap only: exit events of the storm's children.
    pub exits: u64,
}

/// A byte string in proctap's JSON: a string, or {"hex": "..."}.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonBytes {
    Text(String),
    Hex { hex: String },
}

impl JsonBytes {
    fn len(&self) -> usize {
        match self {
            JsonBytes::Text(s) => s.len(),
            JsonBytes::Hex { hex } => hex.len() / 2,
        }
    }

    fn is(&self, text: &str) -> bool {
        matches!(self, JsonBytes::Text(s) if s == text)
    }
}

#[derive(Deserialize)]
struct ProctapEvent {
    #[serde(rename = "type")]
    kind: String,
    comm: Option<JsonBytes>,
    #[serde(default)]
    argv: Vec<JsonBytes>,
    #[serde(default)]
    argv_truncated: bool,
    #[serde(default)]
    data_lost: bool,
}

pub fn count_proctap(path: &Path, argv_bytes: u64) -> Result<Captured> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let mut captured = Captured::default();
    let mut bad = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        let event: ProctapEvent = match serde_json::from_slice(&line) {
            Ok(event) => event,
            Err(_) => {
                bad += 1;
                continue;
            }
        };
        if !event.comm.as_ref().is_some_and(|c| c.is(CHILD_COMM)) {
            continue;
        }
        match event.kind.as_str() {
            "exec" => {
                let bytes: u64 = event.argv.iter().map(|a| a.len() as u64 + 1).sum();
                captured.events += 1;
                captured.argv_bytes += bytes.min(argv_bytes);
                if bytes == argv_bytes && !event.argv_truncated && !event.data_lost {
                    captured.whole += 1;
                }
            }
            "exit" => captured.exits += 1,
            _ => {}
        }
    }
    if bad > 0 {
        eprintln!("  warning: {bad} proctap output lines were not valid JSON");
    }
    Ok(captured)
}

/// execsnoop's text: "PCOMM PID PPID RET ARGS", ARGS being every captured
/// argument followed by a space, then " ..." when it left arguments out.
pub fn count_execsnoop(path: &Path, argv_bytes: u64) -> Result<(Captured, bool)> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut raw = Vec::new();
    let mut captured = Captured::default();
    let mut header = false;
    let mut first = true;
    loop {
        raw.clear();
        let n = reader.read_until(b'\n', &mut raw).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&raw);
        let line = text.strip_suffix('\n').unwrap_or(&text);
        if first {
            first = false;
            if line.starts_with("PCOMM") {
                header = true;
                continue;
            }
        }
        // Four space-separated fields, then the arguments.
        let mut rest = line;
        let mut fields = Vec::with_capacity(4);
        for _ in 0..4 {
            rest = rest.trim_start_matches(' ');
            let end = rest.find(' ').unwrap_or(rest.len());
            fields.push(&rest[..end]);
            rest = &rest[end..];
        }
        if fields[0] != CHILD_COMM {
            continue;
        }
        let args = rest.strip_prefix(' ').unwrap_or(rest);
        let (args, cut) = match args.strip_suffix(" ...") {
            Some(kept) => (kept, true),
            None => (args, false),
        };
        let args = args.strip_suffix(' ').unwrap_or(args);
        let bytes: u64 = if args.is_empty() { 0 } else { args.split(' ').map(|a| a.len() as u64 + 1).sum() };
        captured.events += 1;
        captured.argv_bytes += bytes.min(argv_bytes);
        if bytes == argv_bytes && !cut {
            captured.whole += 1;
        }
    }
    Ok((captured, header))
}
