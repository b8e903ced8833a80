//! The soak table of `make bench-profile`: the profile example's resident
//! memory over a long system-wide run at 99 Hz while an exec storm makes
//! short-lived processes, every one of which the profiler learns the
//! mappings of (and must forget again).

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::bench_util::system::{proc_field, read_text, Result};
use super::bench_util::table;

/// Where the programs are.
pub struct Programs<'a> {
    pub profile: &'a Path,
    pub storm: &'a Path,
    pub child: &'a Path,
}

/// One reading: seconds since the start, the profiler's RSS in KiB, and
/// of it the anonymous memory (the heap) and the pages of mapped files
/// (binaries and the debug information read through mmap: clean pages the
/// kernel can drop).
struct Reading {
    at_s: u64,
    rss_kib: u64,
    anon_kib: u64,
    file_kib: u64,
}

fn reading(pid: u32, at_s: u64) -> Option<Reading> {
    let status = read_text(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<u64> { proc_field(&status, field)?.split_whitespace().next()?.parse().ok() };
    Some(Reading { at_s, rss_kib: kib("VmRSS")?, anon_kib: kib("RssAnon")?, file_kib: kib("RssFile")? })
}

/// Runs the soak for `seconds`, reading RSS every `every`.
pub fn run(programs: &Programs, seconds: u64, every: Duration) -> Result<String> {
    let out = std::env::temp_dir().join(format!("pt-bench-soak-{}", std::process::id()));
    let mut profile = Command::new(programs.profile)
        .args(["--all", "--hz", "99", "--duration", &seconds.to_string(), "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", programs.profile.display()))?;
    sleep(Duration::from_secs(2)); // started and attached
    let storm_seconds = seconds.saturating_sub(4).max(1);
    let storm = Command::new(programs.storm)
        .args(["--seconds", &storm_seconds.to_string(), "--child"])
        .arg(programs.child)
        .args(["--nargs", "2", "--arglen", "8"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", programs.storm.display()));
    let storm = match storm {
        Ok(s) => s,
        Err(e) => {
            let _ = profile.kill();
            let _ = profile.wait();
            return Err(e);
        }
    };
    let start = Instant::now();
    let mut readings = Vec::new();
    while start.elapsed().as_secs() + 1 < storm_seconds {
        if let Some(r) = reading(profile.id(), start.elapsed().as_secs()) {
            readings.push(r);
        }
        sleep(every);
    }
    let storm = storm.wait_with_output().map_err(|e| format!("storm: {e}"))?;
    let profiled = profile.wait_with_output().map_err(|e| format!("profile: {e}"))?;
    let _ = std::fs::remove_dir_all(&out);
    if !profiled.status.success() {
        return Err(format!("the profile example failed: {}", profiled.status));
    }
    let summary: serde_json::Value = serde_json::from_slice(&profiled.stdout).unwrap_or_default();
    let execs =
        serde_json::from_slice::<serde_json::Value>(&storm.stdout).ok().and_then(|v| v["execs"].as_u64()).unwrap_or(0);
    Ok(report(&readings, seconds, execs, &summary))
}

/// MiB per minute between two readings, of the part `kib` picks.
fn slope(a: &Reading, b: &Reading, kib: fn(&Reading) -> u64) -> f64 {
    let minutes = (b.at_s.saturating_sub(a.at_s)) as f64 / 60.0;
    if minutes == 0.0 {
        return 0.0;
    }
    (kib(b) as f64 - kib(a) as f64) / 1024.0 / minutes
}

fn report(readings: &[Reading], seconds: u64, execs: u64, summary: &serde_json::Value) -> String {
    let mut out = String::from("\n## Profiler memory over a long run\n\n");
    out += &format!(
        "The profile example (`--all --hz 99`, stack copies, mapping records) for {seconds} s while `bench/storm` \
runs {execs} short-lived processes (vfork + exec of a static tiny program, one worker per CPU). RSS of the \
profile process (VmRSS), read as it runs, and of it the anonymous memory (RssAnon: the heap) and the pages of \
mapped files (RssFile: the binaries and debug information the symbolizer reads through mmap, clean pages the \
kernel can take back).\n\n"
    );
    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    let rows: Vec<Vec<String>> =
        readings.iter().map(|r| vec![r.at_s.to_string(), mib(r.rss_kib), mib(r.anon_kib), mib(r.file_kib)]).collect();
    out += &table(&["s", "RSS MiB", "anonymous MiB", "file pages MiB"], &rows);
    // The first minute warms up: kallsyms, the system's libraries and every
    // binary sampled for the first time are read then.
    let warm = readings.iter().position(|r| r.at_s >= 60);
    if let (Some(first), Some(warm), Some(last)) = (readings.first(), warm, readings.last()) {
        let warm = &readings[warm];
        if last.at_s > warm.at_s {
            out += &format!(
                "\nGrowth, MiB/min: over the first {} s (warming up) RSS {:.2}; from then to the end RSS {:.2}, of \
which anonymous {:.2} and file pages {:.2}.",
                warm.at_s,
                slope(first, warm, |r| r.rss_kib),
                slope(warm, last, |r| r.rss_kib),
                slope(warm, last, |r| r.anon_kib),
                slope(warm, last, |r| r.file_kib)
            );
            // Levelling off shows as a second half that grows slower than the first.
            let middle = &readings[(readings.iter().position(|r| r.at_s >= (warm.at_s + last.at_s) / 2)).unwrap_or(0)];
            out += &format!(
                " Anonymous memory after warming up, first half {:.2} and second half {:.2}.\n",
                slope(warm, middle, |r| r.anon_kib),
                slope(middle, last, |r| r.anon_kib)
            );
        }
    }
    let held = &summary["held"];
    out += &format!(
        "\nAt the end the profile held {} distinct stacks, counted in {} (thread, stack) entries, and {} locations, \
of {} samples ({} of them under `[stack not kept]`, past the profile's cap on distinct stacks); the symbolizer \
held the mappings of {} processes (each is dropped 2 s after its exit).\n",
        held["stacks"],
        held["entries"],
        held["locations"],
        summary["samples"],
        summary["samples_of_stacks_not_kept"],
        held["processes"]
    );
    out
}
