//! Shared by the benchmark drivers (`examples/bench_*`): the machine
//! description, CPU time from /proc, percentiles and Markdown tables; in
//! `system`, commands, /proc readers, kernel-setting guards and bpftool's
//! program counters; in `tracer`, a tracer run as a separate process; in
//! `output`, reading what a tracer wrote. Each driver uses a subset.
#![allow(dead_code)]

pub mod output;
pub mod system;
pub mod tracer;

use std::fs;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// A driver's main: options (a mistake exits 2), then the run, whose
/// Markdown goes to stdout (a failure exits 1); messages say `name:`.
pub fn main<O>(
    name: &str,
    parse: impl FnOnce() -> system::Result<O>,
    run: impl FnOnce(&O) -> system::Result<String>,
) -> ExitCode {
    let opts = match parse() {
        Ok(opts) => opts,
        Err(msg) => {
            eprintln!("{name}: {msg}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(markdown) => {
            print!("{markdown}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("{name}: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// "CPU model, N CPUs, M GiB, kernel K" from /proc and /sys.
pub fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    // Not available_parallelism: benchmarks run pinned to one CPU.
    let cpus = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let mem_kib: u64 = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").and_then(|r| r.trim().trim_end_matches(" kB").parse().ok()))
        .unwrap_or(0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cpus} CPUs, {:.0} GiB RAM, Linux {}", mem_kib as f64 / 1048576.0, kernel.trim())
}

/// Today's date (UTC), YYYY-MM-DD.
pub fn today() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let t = proctap::WallTime::from_monotonic(0, secs * 1_000_000_000).to_string();
    t[..10].to_string()
}

/// CPU time of every thread of this process so far, in nanoseconds
/// (/proc/self/task/*/schedstat: exact, unlike clock ticks).
pub fn self_cpu_ns() -> u64 {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .sum()
}

/// The value at quantile q (0..=1) of sorted samples.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The median of the values (NaN for none).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// A Markdown table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for row in rows {
        out += &format!("| {} |\n", row.join(" | "));
    }
    out
}

/// `part` as a percentage of `whole`, two decimals ("n/a" when whole is 0).
pub fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "n/a".into()
    } else {
        format!("{:.2}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Human-friendly count: 1234567 -> "1.23 M".
pub fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}
