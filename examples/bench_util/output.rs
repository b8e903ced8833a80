//! Reading what a tracer wrote: its output file line by line, proctap's
//! byte strings, `dump`'s final stats line, libbpf-tools' loss reports.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Deserialize;

use super::system::Result;

/// A byte string in proctap's JSON: a string when the bytes are UTF-8,
/// otherwise {"hex": "..."}.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum JsonBytes {
    Text(String),
    Hex { hex: String },
}

impl JsonBytes {
    /// The bytes themselves (a malformed hex digit pair reads as 0).
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            JsonBytes::Text(s) => Cow::Borrowed(s.as_bytes()),
            JsonBytes::Hex { hex } => Cow::Owned(
                hex.as_bytes()
                    .chunks(2)
                    .map(|pair| {
                        std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok()).unwrap_or(0)
                    })
                    .collect(),
            ),
        }
    }

    /// Whether the bytes are exactly `text`.
    pub fn is(&self, text: &str) -> bool {
        matches!(self, JsonBytes::Text(s) if s == text)
    }
}

/// Calls `each` with every line of a file (without its newline), read in
/// 1 MiB blocks; stops at the first error `each` returns.
pub fn for_each_line(path: &Path, mut each: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        each(line.strip_suffix(b"\n").unwrap_or(&line))?;
    }
}

/// The last `{"type":"stats",...}` line of `dump`'s stderr, parsed.
pub fn final_stats(stderr: &str) -> Option<serde_json::Value> {
    stderr
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok().filter(|v| v["type"] == "stats"))
}

/// What a libbpf-tools tool said it lost on stderr: the sum of N over its
/// "Lost N events on CPU #C!" lines, and how many such lines.
pub fn lost_reports(stderr: &str) -> (u64, u64) {
    let (mut lost, mut reports) = (0u64, 0u64);
    for line in stderr.lines() {
        if let Some(n) = line.strip_prefix("Lost ").and_then(|r| r.split(' ').next()) {
            lost += n.parse::<u64>().unwrap_or(0);
            reports += 1;
        }
    }
    (lost, reports)
}
