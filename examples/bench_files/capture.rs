//! Counting what a tracer captured of the storm: the open events in
//! proctap's JSON lines and in opensnoop's text, the write counters in
//! dump's final stats.

use std::path::Path;

use serde::Deserialize;

use crate::bench_util::output::{for_each_line, JsonBytes};
use crate::bench_util::system::Result;
use crate::STORM_COMM;

/// What a tracer wrote for the storm's opens.
#[derive(Default, Clone, Copy)]
pub struct OpenCapture {
    /// Successful opens by `pt-fstorm` whose path is the storm's path or a
    /// beginning of it (a cut path, or none when its bytes were lost): the
    /// storm's opens. The storm's other opens (its dynamic loader's) name
    /// other files.
    pub events: u64,
    /// Of those, the ones with the whole path and no truncation mark.
    pub whole: u64,
    /// Events the tracer said it lost (over every process).
    pub lost: u64,
}

impl OpenCapture {
    fn add(&mut self, path: &[u8], target: &str, cut: bool) {
        if target.as_bytes().starts_with(path) {
            self.events += 1;
            if path == target.as_bytes() && !cut {
                self.whole += 1;
            }
        }
    }
}

/// The parts of proctap's open event the count needs.
#[derive(Deserialize)]
struct ProctapOpen {
    #[serde(rename = "type")]
    kind: String,
    comm: Option<JsonBytes>,
    path: Option<JsonBytes>,
    fd: Option<i64>,
    #[serde(default)]
    path_truncated: bool,
    #[serde(default)]
    data_lost: bool,
}

/// proctap's JSON lines: `{"type":"open",...}` with comm `pt-fstorm` and `fd`
/// a number.
pub fn count_proctap_opens(output: &Path, target: &str) -> Result<OpenCapture> {
    let mut captured = OpenCapture::default();
    let mut bad = 0u64;
    for_each_line(output, |line| {
        let Ok(event) = serde_json::from_slice::<ProctapOpen>(line) else {
            bad += 1;
            return Ok(());
        };
        if event.kind != "open" || event.fd.is_none() || !event.comm.as_ref().is_some_and(|c| c.is(STORM_COMM)) {
            return Ok(());
        }
        let path = event.path.as_ref().map(|p| p.bytes().into_owned()).unwrap_or_default();
        captured.add(&path, target, event.path_truncated || event.data_lost);
        Ok(())
    })?;
    if bad > 0 {
        eprintln!("  warning: {bad} proctap output lines were not valid JSON");
    }
    Ok(captured)
}

/// opensnoop's text, "PID COMM FD ERR PATH" after a header line: PID, COMM,
/// FD and ERR padded with spaces and separated by one, then the path to the
/// end of the line (FD is -1 and ERR the errno for a failed open). Returns
/// the count, and whether the header was there.
pub fn count_opensnoop(output: &Path, target: &str) -> Result<(OpenCapture, bool)> {
    let mut captured = OpenCapture::default();
    let (mut first, mut header) = (true, false);
    for_each_line(output, |line| {
        if std::mem::take(&mut first) && line.starts_with(b"PID") {
            header = true;
            return Ok(());
        }
        let Some((fields, path)) = split_fields(line, 4) else { return Ok(()) };
        let fd_ok = std::str::from_utf8(fields[2]).ok().and_then(|f| f.parse::<i64>().ok()).is_some_and(|fd| fd >= 0);
        if fields[1] == STORM_COMM.as_bytes() && fd_ok {
            captured.add(path, target, false);
        }
        Ok(())
    })?;
    Ok((captured, header))
}

/// The first `n` space-separated fields of a line (runs of spaces between
/// them), and the rest after the one space that follows the last.
fn split_fields(line: &[u8], n: usize) -> Option<(Vec<&[u8]>, &[u8])> {
    let mut fields = Vec::with_capacity(n);
    let mut rest = line;
    for _ in 0..n {
        let start = rest.iter().position(|&b| b != b' ')?;
        rest = &rest[start..];
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        fields.push(&rest[..end]);
        rest = &rest[end..];
    }
    Some((fields, rest.strip_prefix(b" ").unwrap_or(rest)))
}

/// dump's write counters (`detail.write` of its final stats line), for the
/// storm's processes only (`--comm pt-fstorm`).
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(default)]
pub struct WriteCapture {
    /// Write events the kernel sent.
    pub emitted: u64,
    /// Write events handed to dump (with or without their bytes).
    pub delivered: u64,
    /// Bytes the kernel put in the data pages for them.
    pub data_bytes: u64,
    /// Events whose bytes were cut at the write cap.
    pub truncated: u64,
    /// Events sent without their bytes: the data pages were full.
    pub data_lost: u64,
    /// Events lost whole: the metadata ring was full.
    pub meta_lost: u64,
    /// Writes not reported: no storage could be made for them.
    pub not_followed: u64,
}

impl WriteCapture {
    pub fn from_stats(write: &serde_json::Value) -> Result<WriteCapture> {
        if !write.is_object() {
            return Err("dump's stats have no detail.write: is this dump built with write events?".into());
        }
        serde_json::from_value(write.clone()).map_err(|e| format!("dump's detail.write: {e}"))
    }
}
