//! One run of the storm: untraced, or under a tracer started for it, with
//! what the tracer captured and what it cost.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use crate::bench_util::output::{final_stats, lost_reports};
use crate::bench_util::system::{bpf_progs, cpu_ticks, peak_rss_kib, prog_deltas, prog_snapshot, run_stderr};
use crate::bench_util::system::{CpuShares, Prog, Result};
use crate::bench_util::tracer::{wait_attached, wait_settled_below, TracerProc};
use crate::capture::{count_opensnoop, count_proctap_opens, OpenCapture, WriteCapture};
use crate::{Options, STORM_COMM};

/// Output growth per 250 ms that still counts as settled after an open
/// storm: an unfiltered tracer keeps reporting other processes' opens (a
/// build running alongside), while draining the storm's backlog writes
/// megabytes. (A write run's dump writes to /dev/null and is waited for by
/// its CPU time instead: `wait_idle`.)
const OPEN_TRICKLE: u64 = 16 << 10;

/// What the runs need to know about the machine.
pub struct Machine {
    pub clk_tck: u64,
    /// Tracers run under `setpriv --pdeathsig KILL`.
    pub pdeathsig: bool,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Tool {
    None,
    Proctap,
    Opensnoop,
}

impl Tool {
    pub fn label(self) -> &'static str {
        match self {
            Tool::None => "no tracer",
            Tool::Proctap => "proctap",
            Tool::Opensnoop => "opensnoop",
        }
    }
}

/// What the storm does.
pub enum Workload<'a> {
    /// openat + close of this path.
    Open { path: &'a str },
    /// write(1) of this many bytes, stdout on /dev/null.
    Write { size: u64 },
}

/// The storm's totals (its JSON line on stderr).
#[derive(Deserialize, Clone, Copy)]
pub struct StormResult {
    pub ops: u64,
    pub failed: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub workers: u64,
}

impl StormResult {
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.seconds
    }
}

/// What a tracer captured of the storm.
pub enum Caught {
    Nothing,
    Opens(OpenCapture),
    Writes(WriteCapture),
}

/// One run's results.
pub struct Run {
    pub tool: Tool,
    /// The write size, for write runs.
    pub size: Option<u64>,
    pub storm: StormResult,
    /// The storm's stderr: its totals line (one write, which a tracer of
    /// stderr captures too).
    pub storm_stderr: String,
    pub caught: Caught,
    /// Per tracer program: run_time_ns and run_cnt grown during the storm.
    pub progs: Vec<Prog>,
    /// Every other BPF program (someone else's): runs and in-kernel ns
    /// during the storm, which slow the storm down in every run alike.
    pub others: (u64, u64),
    /// Where the machine's CPU time went during the storm, as a sentence.
    pub cpu_use: String,
    /// Tracer CPU, in clock ticks, from just before the storm until it settled.
    pub cpu_ticks: u64,
    pub peak_rss_kib: u64,
    /// What the tracer itself said it lost.
    pub loss_note: String,
}

impl Run {
    /// Sum of the tracer's in-kernel run time during the storm, in ns.
    pub fn kernel_ns(&self) -> u64 {
        self.progs.iter().map(|p| p.run_time_ns).sum()
    }

    pub fn cpu_ms(&self, clk_tck: u64) -> f64 {
        self.cpu_ticks as f64 * 1000.0 / clk_tck as f64
    }
}

fn storm_args(opts: &Options, workload: &Workload) -> Vec<String> {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match workload {
        Workload::Open { path } => strings(&["--seconds", &opts.seconds.to_string(), "--mode", "open", "--path", path]),
        Workload::Write { size } => {
            strings(&["--seconds", &opts.write_seconds.to_string(), "--mode", "write", "--size", &size.to_string()])
        }
    }
}

/// Runs and in-kernel ns of the BPF programs not in `ours` between two
/// `bpf_progs` listings.
fn others(before: &[Prog], after: &[Prog], ours: &BTreeSet<u64>) -> (u64, u64) {
    let theirs = |progs: &[Prog]| progs.iter().filter(|p| !ours.contains(&p.id)).cloned().collect::<Vec<_>>();
    prog_deltas(&theirs(before), &theirs(after)).iter().fold((0, 0), |(n, ns), p| (n + p.run_cnt, ns + p.run_time_ns))
}

/// Runs the storm to completion (stdout on /dev/null) and reads its totals.
fn run_storm(opts: &Options, workload: &Workload) -> Result<(StormResult, String)> {
    let args = storm_args(opts, workload);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = run_stderr(&opts.fstorm.to_string_lossy(), &args)?;
    let line = text.lines().last().ok_or("pt-fstorm printed nothing")?;
    let result: StormResult = serde_json::from_str(line).map_err(|e| format!("pt-fstorm output '{line}': {e}"))?;
    if result.ops == 0 {
        return Err(format!("pt-fstorm performed no operation ({} failed): {}", result.failed, text.trim()));
    }
    Ok((result, text))
}

/// Runs the storm once with `tool` (none, or a tracer started for it).
pub fn run(opts: &Options, machine: &Machine, tool: Tool, workload: &Workload) -> Result<Run> {
    let size = match workload {
        Workload::Write { size } => Some(*size),
        Workload::Open { .. } => None,
    };
    let run = if tool == Tool::None {
        let all0 = bpf_progs()?;
        let ((storm, storm_stderr), shares) = CpuShares::measure(|| run_storm(opts, workload))?;
        let others = others(&all0, &bpf_progs()?, &BTreeSet::new());
        Run {
            tool,
            size,
            storm,
            storm_stderr,
            caught: Caught::Nothing,
            progs: Vec::new(),
            others,
            cpu_use: shares.sentence(None),
            cpu_ticks: 0,
            peak_rss_kib: 0,
            loss_note: String::new(),
        }
    } else {
        run_traced(opts, machine, tool, workload, size)?
    };
    eprintln!(
        "  {}: {:.0} ops/s ({} workers, {} failed)",
        tool.label(),
        run.storm.rate(),
        run.storm.workers,
        run.storm.failed
    );
    Ok(run)
}

/// Starts the tracer for this workload: dump writes its JSON lines to a file
/// for opens, to /dev/null for writes (64 KiB writes would fill /dev/shm).
fn spawn_tracer(opts: &Options, machine: &Machine, tool: Tool, workload: &Workload) -> Result<TracerProc> {
    let write_max = opts.write_max().to_string();
    match (tool, workload) {
        (Tool::Proctap, Workload::Open { .. }) => {
            TracerProc::spawn("proctap", &opts.dump, &["--files"], machine.pdeathsig)
        }
        (Tool::Proctap, Workload::Write { .. }) => TracerProc::spawn_discarding(
            "proctap",
            &opts.dump,
            &["--stdio", "--comm", STORM_COMM, "--write-max", &write_max],
            machine.pdeathsig,
        ),
        (Tool::Opensnoop, Workload::Open { .. }) => {
            TracerProc::spawn("opensnoop", &opts.opensnoop, &[], machine.pdeathsig)
        }
        _ => Err(format!("no {} run for this workload", tool.label())),
    }
}

fn run_traced(opts: &Options, machine: &Machine, tool: Tool, workload: &Workload, size: Option<u64>) -> Result<Run> {
    let before: BTreeSet<u64> = bpf_progs()?.into_iter().map(|p| p.id).collect();
    let mut tracer = spawn_tracer(opts, machine, tool, workload)?;
    let ids = wait_attached(&mut tracer, &before)?;
    let progs0 = prog_snapshot(&ids)?;
    let names: Vec<String> = progs0.iter().map(|p| format!("{}#{}", p.name, p.id)).collect();
    eprintln!("  {} (pid {}) attached: {}", tool.label(), tracer.pid(), names.join(", "));

    let all0 = bpf_progs()?;
    let cpu0 = cpu_ticks(tracer.pid())?;
    let ((storm, storm_stderr), shares) = CpuShares::measure(|| run_storm(opts, workload))?;
    let cpu_mid = cpu_ticks(tracer.pid())?;
    let progs = prog_deltas(&progs0, &prog_snapshot(&ids)?);
    let others = others(&all0, &bpf_progs()?, &ids);
    let settle = wait_settled_below(&mut tracer, OPEN_TRICKLE)?;
    let cpu1 = cpu_ticks(tracer.pid())?;
    let peak_rss_kib = peak_rss_kib(tracer.pid())?;
    let status = tracer.interrupt(Duration::from_secs(60))?;
    if !status.success() {
        eprintln!("  warning: {} exited with {status}", tool.label());
    }
    let (caught, loss_note) = caught(&tracer, tool, workload)?;
    eprintln!("  {}: settled {:.1} s after the storm; {loss_note}", tool.label(), settle.as_secs_f64());
    let storm_ms = (cpu_mid - cpu0) as f64 * 1000.0 / machine.clk_tck as f64;
    Ok(Run {
        tool,
        size,
        storm,
        storm_stderr,
        caught,
        progs,
        others,
        cpu_use: shares.sentence(Some((tool.label(), storm_ms))),
        cpu_ticks: cpu1 - cpu0,
        peak_rss_kib,
        loss_note,
    })
}

/// Counts what the stopped tracer captured, and what it said it lost.
fn caught(tracer: &TracerProc, tool: Tool, workload: &Workload) -> Result<(Caught, String)> {
    let stderr = tracer.stderr_text();
    if tool == Tool::Opensnoop {
        let Workload::Open { path } = workload else { return Err("opensnoop traces opens only".into()) };
        let (captured, header) = count_opensnoop(tracer.out_path(), path)?;
        if !header {
            eprintln!("  warning: opensnoop output does not start with its PID COMM FD ERR PATH header");
        }
        let (lost, reports) = lost_reports(&stderr);
        let note = format!("opensnoop's stderr reported {lost} lost events ({reports} \"Lost\" lines)");
        return Ok((Caught::Opens(OpenCapture { lost, ..captured }), note));
    }
    let stats = final_stats(&stderr).ok_or_else(|| format!("dump printed no stats line; stderr: {}", stderr.trim()))?;
    match workload {
        Workload::Open { path } => {
            let mut captured = count_proctap_opens(tracer.out_path(), path)?;
            let open = &stats["detail"]["open"];
            captured.lost = open["meta_lost"].as_u64().unwrap_or(0) + open["not_followed"].as_u64().unwrap_or(0);
            let note = format!(
                "dump's final stats for opens (every process): emitted={} delivered={} meta_lost={} data_lost={} not_followed={}",
                open["emitted"], open["delivered"], open["meta_lost"], open["data_lost"], open["not_followed"]
            );
            Ok((Caught::Opens(captured), note))
        }
        Workload::Write { .. } => {
            let captured = WriteCapture::from_stats(&stats["detail"]["write"])?;
            let note = format!(
                "dump's final stats for writes: emitted={} delivered={} data_bytes={} truncated={} data_lost={} meta_lost={} not_followed={}",
                captured.emitted,
                captured.delivered,
                captured.data_bytes,
                captured.truncated,
                captured.data_lost,
                captured.meta_lost,
                captured.not_followed
            );
            Ok((Caught::Writes(captured), note))
        }
    }
}
