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

/// One reading: seconds since the start, the profiler's RSS in KiB.
struct Reading {
    at_s: u64,
    rss_kib: u64,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = read_text(format!("/proc/{pid}/status")).ok()?;
    proc_field(&status, "VmRSS")?.split_whitespace().next()?.parse().ok()
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
        if let Some(rss_kib) = rss_kib(profile.id()) {
            readings.push(Reading { at_s: start.elapsed().as_secs(), rss_kib });
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

/// MiB per minute between two readings.
fn slope(a: &Reading, b: &Reading) -> f64 {
    let minutes = (b.at_s.saturating_sub(a.at_s)) as f64 / 60.0;
    if minutes == 0.0 {
        return 0.0;
    }
    (b.rss_kib as f64 - a.rss_kib as f64) / 1024.0 / minutes
}

fn report(readings: &[Reading], seconds: u64, execs: u64, summary: &serde_json::Value) -> String {
    let mut out = String::from("\n## Profiler memory over a long run\n\n");
    out += &format!(
        "The profile example (`--all --hz 99`, stack copies, mapping records) for {seconds} s while `bench/storm` \
runs {execs} short-lived processes (vfork + exec of a static tiny program, one worker per CPU). RSS of the \
profile process (VmRSS), read as it runs.\n\n"
    );
    let rows: Vec<Vec<String>> =
        readings.iter().map(|r| vec![r.at_s.to_string(), format!("{:.1}", r.rss_kib as f64 / 1024.0)]).collect();
    out += &table(&["s", "RSS MiB"], &rows);
    // The first minute warms up: kallsyms, the system's libraries and every
    // binary sampled for the first time are read then.
    let warm = readings.iter().position(|r| r.at_s >= 60);
    if let (Some(first), Some(warm), Some(last)) = (readings.first(), warm, readings.last()) {
        let warm = &readings[warm];
        if last.at_s > warm.at_s {
            out += &format!(
                "\nGrowth: {:.2} MiB/min over the first {} s (warming up), {:.2} MiB/min from then to the end.\n",
                slope(first, warm),
                warm.at_s,
                slope(warm, last)
            );
        }
    }
    let held = &summary["held"];
    out += &format!(
        "\nAt the end the profile held {} distinct (thread, stack) entries and {} locations of {} samples, and the \
symbolizer the mappings of {} processes (each is dropped 2 s after its exit).\n",
        held["stacks"], held["locations"], summary["samples"], held["processes"]
    );
    out
}
