//! What a profiling run writes: the profiles' files (folded stacks, a
//! flamegraph and a gzipped pprof profile, for CPU and, with --off-cpu,
//! off-CPU time), the JSON lines printed while sampling (stack errors,
//! losses, captures) and the summary line at the end.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use proctap::profile::{Profile, SampleErrors};
use proctap::{Capture, CaptureStall, Comm, EventKind, Stats};

use crate::profile::Collected;

/// A sample's stack errors, one JSON line each on stdout.
pub fn print_errors(errors: SampleErrors, pid: u32, tid: u32, comm: &Comm, ts_ns: u64, profile: &str) {
    for error in errors.iter() {
        let line = serde_json::json!({
            "type": "stack_error",
            "error": error.part(),
            "reason": error.reason(),
            "profile": profile,
            "pid": pid,
            "tid": tid,
            "comm": String::from_utf8_lossy(comm.as_bytes()),
            "ts_ns": ts_ns,
        });
        println!("{line}");
    }
}

/// A report of `records` lost whole, as one JSON line on stdout.
pub fn print_lost(kind: EventKind, records: u64) {
    println!("{}", serde_json::json!({"type": "lost", "kind": kind, "records": records}));
}

/// A capture's start or stop, as one JSON line on stdout.
pub fn print_capture(c: &Capture<&[u8]>) {
    let line = serde_json::json!({
        "type": "capture",
        "state": c.state,
        "cgroup": String::from_utf8_lossy(c.cgroup),
        "targets": c.targets,
        "trigger": {
            "resource": c.resource,
            "kind": if c.stall == CaptureStall::Full { "full" } else { "some" },
            "percent": c.threshold_us as f64 * 100.0 / c.window_us.max(1) as f64,
            "threshold_us": c.threshold_us,
            "stalled_us": c.stalled_us,
            "window_us": c.window_us,
        },
    });
    println!("{line}");
}

/// Writes one file through a buffer.
fn write_file(
    path: PathBuf,
    write: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<PathBuf> {
    let mut file = BufWriter::new(std::fs::File::create(&path)?);
    write(&mut file)?;
    file.flush()?;
    Ok(path)
}

/// Writes the folded stacks, the flamegraph and the pprof profile, named
/// after `prefix`.
fn write_files(profile: &Profile, out: &Path, prefix: &str) -> std::io::Result<[PathBuf; 3]> {
    // The CPU profile keeps its historical names; off-CPU's are offcpu.*.
    let (folded, svg, pprof) = match prefix {
        "profile" => ("profile.folded".to_string(), "flamegraph.svg".to_string(), "profile.pb.gz".to_string()),
        p => (format!("{p}.folded"), format!("{p}.svg"), format!("{p}.pb.gz")),
    };
    Ok([
        write_file(out.join(folded), |w| profile.write_folded(w))?,
        write_file(out.join(svg), |w| profile.write_flamegraph(w))?,
        write_file(out.join(pprof), |w| profile.write_pprof(w))?,
    ])
}

/// Writes every profile collected into `out`; returns the files' paths.
pub fn write_all(got: &Collected, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = write_files(&got.profile, out, "profile")?.to_vec();
    if let Some(off) = &got.off_cpu {
        written.extend(write_files(off, out, "offcpu")?);
    }
    Ok(written)
}

/// The summary line: samples, losses, the top functions, what the run
/// held in memory, and the files written.
pub fn summary(
    got: &Collected,
    hz: u32,
    stats: &Stats,
    captures: Option<u64>,
    written: &[PathBuf],
) -> serde_json::Value {
    let top: Vec<_> = got.profile.functions_by_self_samples().into_iter().take(10).collect();
    let off_cpu = got.off_cpu.as_ref();
    serde_json::json!({
        "type": "profile",
        "samples": got.profile.total_samples(),
        "hz": hz,
        "triggers": got.triggers,
        "samples_lost": got.lost,
        "samples_without_data": stats.sample().data_lost,
        "kernel_stack_errors": stats.sample().counter("kernel_stack_errors"),
        "user_stack_errors": stats.sample().counter("user_stack_errors"),
        "stack_errors": errors_by_name(&got.profile),
        "off_cpu_stack_errors": off_cpu.map(errors_by_name),
        "top_self": top,
        "off_cpu_sleeps": off_cpu.map(|off| off.total_samples()),
        "off_cpu_sleeps_lost": off_cpu.map(|_| stats.offcpu().meta_lost),
        "off_cpu_sleeps_untracked": off_cpu.map(|_| stats.offcpu().counter("sleeps_untracked")),
        "captures": captures,
        "held": {
            "entries": got.profile.size().0,
            "stacks": got.profile.distinct_stacks(),
            "locations": got.profile.size().1,
            "processes": got.held,
        },
        "samples_of_stacks_not_kept": got.profile.stacks_not_kept(),
        "files": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    })
}

/// A profile's stack errors, `{"user_stack:EFAULT": N, ...}`.
fn errors_by_name(profile: &Profile) -> serde_json::Value {
    profile.stack_errors().into_iter().map(|(error, n)| (error.to_string(), serde_json::Value::from(n))).collect()
}
