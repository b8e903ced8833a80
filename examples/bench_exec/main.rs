//! Exec storm benchmark (`make bench-exec`): what tracing exec costs and what
//! it captures, for proctap's dumper and for libbpf-tools' execsnoop.
//!
//!     bench_exec --storm build/bench/storm --child build/bench/pt-storm-child \
//!         --dump target/release/examples/dump --execsnoop /usr/sbin/execsnoop \
//!         [--seconds 10] [--sizes 2x16,16x64,32x128]
//!
//! Run as root. For every argv size NxL (N arguments of L bytes) the storm
//! runs three times: no tracer, proctap's `dump`, `execsnoop`. Progress goes
//! to stderr; a Markdown section with one table per size goes to stdout.
//! Every number in it is measured here; nothing is asserted.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

use serde::Deserialize;

#[path = "../bench_util/mod.rs"]
mod bench_util;
mod capture;

use bench_util::pct;
use bench_util::system::{
    bpf_progs, children_ticks, clk_tck, cpu_ticks, git_commit, is_root, load_average, machine_cpu, package_version,
    pdeathsig_available, peak_rss_kib, prog_deltas, prog_snapshot, run_output, BpfStats, Prog, Result, Tracefs,
};
use bench_util::tracer::{wait_attached, wait_settled, TracerProc};
use capture::{count_execsnoop, count_proctap, Captured};

const USAGE: &str = "usage: bench_exec --storm PATH --child PATH --dump PATH --execsnoop PATH \
[--seconds S] [--sizes NxL,NxL,...]";
const CHILD_COMM: &str = "pt-storm-child";

// ---- options ----------------------------------------------------------------

struct Options {
    storm: PathBuf,
    child: PathBuf,
    dump: PathBuf,
    execsnoop: PathBuf,
    seconds: f64,
    sizes: Vec<(u32, u32)>,
}

fn parse_sizes(text: &str) -> Result<Vec<(u32, u32)>> {
    let mut sizes = Vec::new();
    for part in text.split(',') {
        let (n, l) =
            part.split_once('x').ok_or_else(|| format!("--sizes: '{part}' is not NxL (N arguments of L bytes)"))?;
        let n: u32 = n.trim().parse().map_err(|_| format!("--sizes: bad N in '{part}'"))?;
        let l: u32 = l.trim().parse().map_err(|_| format!("--sizes: bad L in '{part}'"))?;
        if l == 0 {
            return Err(format!("--sizes: L must be at least 1 in '{part}'"));
        }
        sizes.push((n, l));
    }
    Ok(sizes)
}

fn parse_options() -> Result<Options> {
    let mut storm = PathBuf::from("build/bench/storm");
    let mut child = PathBuf::from("build/bench/pt-storm-child");
    let mut dump = PathBuf::from("target/release/examples/dump");
    let mut execsnoop = PathBuf::from("/usr/sbin/execsnoop");
    let mut seconds: f64 = 10.0;
    let mut sizes = parse_sizes("2x16,16x64,32x128")?;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--storm" => storm = value()?.into(),
            "--child" => child = value()?.into(),
            "--dump" => dump = value()?.into(),
            "--execsnoop" => execsnoop = value()?.into(),
            "--seconds" => {
                let v = value()?;
                seconds = v.parse().map_err(|_| format!("--seconds: not a number: {v}"))?;
                if !seconds.is_finite() || seconds <= 0.0 {
                    return Err("--seconds must be positive".into());
                }
            }
            "--sizes" => sizes = parse_sizes(&value()?)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(Options { storm, child, dump, execsnoop, seconds, sizes })
}

// ---- where the machine's CPU time went ------------------------------------------

/// The storm's run, and how the machine's CPU time was spent meanwhile.
struct StormRun {
    result: StormResult,
    /// Shares of all CPU time during the storm, in percent.
    storm_pct: f64,
    idle_pct: f64,
    steal_pct: f64,
    /// Everything else: other processes, interrupts, the tracer.
    rest_pct: f64,
}

fn measured_storm(opts: &Options, nargs: u32, arglen: u32) -> Result<StormRun> {
    let (m0, c0) = (machine_cpu()?, children_ticks()?);
    let result = run_storm(opts, nargs, arglen)?;
    let (m1, c1) = (machine_cpu()?, children_ticks()?);
    let total = (m1.total - m0.total).max(1) as f64;
    let share = |ticks: u64| ticks as f64 * 100.0 / total;
    let (storm, idle, steal) = (share(c1 - c0), share(m1.idle - m0.idle), share(m1.steal - m0.steal));
    Ok(StormRun { result, storm_pct: storm, idle_pct: idle, steal_pct: steal, rest_pct: 100.0 - storm - idle - steal })
}

// ---- the storm ------------------------------------------------------------------

#[derive(Deserialize, Clone, Copy)]
struct StormResult {
    execs: u64,
    failed: u64,
    seconds: f64,
    argv_bytes: u64,
    workers: u64,
}

fn run_storm(opts: &Options, nargs: u32, arglen: u32) -> Result<StormResult> {
    let storm = opts.storm.to_string_lossy().into_owned();
    let child = opts.child.to_string_lossy().into_owned();
    let seconds = opts.seconds.to_string();
    let (n, l) = (nargs.to_string(), arglen.to_string());
    let text = run_output(&storm, &["--seconds", &seconds, "--child", &child, "--nargs", &n, "--arglen", &l])?;
    let line = text.lines().last().ok_or("storm printed nothing")?;
    let result: StormResult = serde_json::from_str(line).map_err(|e| format!("storm output '{line}': {e}"))?;
    if result.execs == 0 {
        return Err(format!("storm performed no exec ({} failed)", result.failed));
    }
    Ok(result)
}

// ---- tracers ---------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    None,
    Proctap,
    Execsnoop,
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Tool::None => "no tracer",
            Tool::Proctap => "proctap",
            Tool::Execsnoop => "execsnoop",
        }
    }
}

// ---- one run --------------------------------------------------------------------------

struct RunResult {
    tool: Tool,
    storm: StormResult,
    captured: Captured,
    /// Per tracer program: run_time_ns and run_cnt grown during the storm.
    progs: Vec<Prog>,
    /// How the machine's CPU time was spent during the storm.
    cpu_use: String,
    /// Tracer CPU from just before the storm to when its output settled after it.
    cpu_ticks: u64,
    peak_rss_kib: u64,
    /// What the tracer itself said it lost.
    loss_note: String,
}

/// One sentence on where the machine's CPU time went during the storm.
fn cpu_use(run: &StormRun, tracer: Option<(Tool, f64)>) -> String {
    let tracer = match tracer {
        Some((t, ms)) => format!(" ({} itself used {ms:.0} ms of CPU during the storm)", t.label()),
        None => String::new(),
    };
    format!(
        "of the machine's CPU time during the storm, the storm used {:.1}%, everything else (tracer, other processes, interrupts) {:.1}%{tracer}, steal {:.1}%, idle {:.1}%",
        run.storm_pct, run.rest_pct, run.steal_pct, run.idle_pct
    )
}

fn run_untraced(opts: &Options, nargs: u32, arglen: u32) -> Result<RunResult> {
    let run = measured_storm(opts, nargs, arglen)?;
    Ok(RunResult {
        tool: Tool::None,
        storm: run.result,
        captured: Captured::default(),
        progs: Vec::new(),
        cpu_use: cpu_use(&run, None),
        cpu_ticks: 0,
        peak_rss_kib: 0,
        loss_note: String::new(),
    })
}

fn run_traced(opts: &Options, tool: Tool, nargs: u32, arglen: u32, pdeathsig: bool, clk_tck: u64) -> Result<RunResult> {
    let before: BTreeSet<u64> = bpf_progs()?.into_iter().map(|p| p.id).collect();
    let mut tracer = match tool {
        Tool::Proctap => TracerProc::spawn(tool.label(), &opts.dump, &[], pdeathsig)?,
        Tool::Execsnoop => TracerProc::spawn(tool.label(), &opts.execsnoop, &[], pdeathsig)?,
        Tool::None => unreachable!(),
    };
    let ids = wait_attached(&mut tracer, &before)?;
    let progs0 = prog_snapshot(&ids)?;
    let names: Vec<String> = progs0.iter().map(|p| format!("{}#{}", p.name, p.id)).collect();
    eprintln!("  {} (pid {}) attached: {}", tool.label(), tracer.pid(), names.join(", "));

    let cpu0 = cpu_ticks(tracer.pid())?;
    let run = measured_storm(opts, nargs, arglen)?;
    let cpu_mid = cpu_ticks(tracer.pid())?;
    let progs1 = prog_snapshot(&ids)?;
    let storm = run.result;
    let progs = prog_deltas(&progs0, &progs1);
    let settle = wait_settled(&mut tracer)?;
    let cpu1 = cpu_ticks(tracer.pid())?;
    let peak_rss_kib = peak_rss_kib(tracer.pid())?;
    let status = tracer.interrupt(Duration::from_secs(60))?;
    if !status.success() {
        eprintln!("  warning: {} exited with {status}", tool.label());
    }
    let stderr = tracer.stderr_text();
    let (captured, loss_note) = match tool {
        Tool::Proctap => {
            let captured = count_proctap(tracer.out_path(), storm.argv_bytes)?;
            let stats = stderr
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok().filter(|v| v["type"] == "stats"));
            let note = match stats {
                Some(s) => format!(
                    "dump's final stats: events={} exec={} exit={} reserve_failures={} dropped_data={} argv_truncated={}",
                    s["events"], s["exec"], s["exit"], s["reserve_failures"], s["dropped_data"], s["argv_truncated"]
                ),
                None => format!("dump printed no stats line; stderr: {}", stderr.trim()),
            };
            (captured, note)
        }
        _ => {
            let (captured, header) = count_execsnoop(tracer.out_path(), storm.argv_bytes)?;
            if !header {
                eprintln!("  warning: execsnoop output does not start with its PCOMM header");
            }
            let (mut lost, mut reports) = (0u64, 0u64);
            for line in stderr.lines() {
                // "Lost N events on CPU #C!"
                if let Some(n) = line.strip_prefix("Lost ").and_then(|r| r.split(' ').next()) {
                    lost += n.parse::<u64>().unwrap_or(0);
                    reports += 1;
                }
            }
            (captured, format!("execsnoop's stderr reported {lost} lost events ({reports} \"Lost\" lines)"))
        }
    };
    eprintln!(
        "  {}: storm {} execs ({} failed) in {:.2} s; captured {} exec events{}; output settled {:.1} s after the storm; {}",
        tool.label(),
        storm.execs,
        storm.failed,
        storm.seconds,
        captured.events,
        if tool == Tool::Proctap { format!(" and {} exit events", captured.exits) } else { String::new() },
        settle.as_secs_f64(),
        loss_note
    );
    let runs: u64 = progs.iter().map(|p| p.run_cnt).sum();
    eprintln!(
        "  {}: BPF programs ran {} times for {} execs ({:.2} runs per exec)",
        tool.label(),
        runs,
        storm.execs,
        runs as f64 / storm.execs as f64
    );
    Ok(RunResult {
        tool,
        storm,
        captured,
        cpu_use: cpu_use(&run, Some((tool, (cpu_mid - cpu0) as f64 * 1000.0 / clk_tck as f64))),
        progs,
        cpu_ticks: cpu1 - cpu0,
        peak_rss_kib,
        loss_note,
    })
}

// ---- report --------------------------------------------------------------------------------

fn table(out: &mut String, nargs: u32, arglen: u32, runs: &[RunResult], clk_tck: u64) {
    let argv_bytes = runs[0].storm.argv_bytes;
    let base = runs[0].storm.execs as f64 / runs[0].storm.seconds;
    let _ = writeln!(
        out,
        "### argv {nargs} × {arglen} bytes ({argv_bytes} bytes of argument area per exec, argv[0] and NULs included)\n"
    );
    out.push_str(
        "| tool | exec/s | vs no tracer | events / execs | in-kernel ns per exec | tracer CPU ms per 1000 events | peak RSS MiB | argv bytes captured | events with whole argv |\n",
    );
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in runs {
        let rate = r.storm.execs as f64 / r.storm.seconds;
        let mut row = format!("| {} | {:.0} | {:.3} |", r.tool.label(), rate, rate / base);
        if r.tool == Tool::None {
            row.push_str(" — | — | — | — | — | — |");
        } else {
            let c = &r.captured;
            let ns: u64 = r.progs.iter().map(|p| p.run_time_ns).sum();
            let cpu_ms = r.cpu_ticks as f64 * 1000.0 / clk_tck as f64;
            let per_k =
                if c.events == 0 { "n/a".to_string() } else { format!("{:.1}", cpu_ms * 1000.0 / c.events as f64) };
            let _ = write!(
                row,
                " {} ({} / {}) | {:.0} | {} | {:.1} | {} | {} |",
                pct(c.events, r.storm.execs),
                c.events,
                r.storm.execs,
                ns as f64 / r.storm.execs as f64,
                per_k,
                r.peak_rss_kib as f64 / 1024.0,
                pct(c.argv_bytes, c.events * argv_bytes),
                pct(c.whole, c.events),
            );
        }
        out.push_str(&row);
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\nexec/s: execs that succeeded (child exited 0) over the storm's elapsed seconds. \
vs no tracer: exec/s over the no-tracer run's exec/s. \
events / execs: exec events with comm `{CHILD_COMM}` in the tracer's output file over the execs performed. \
in-kernel ns per exec: growth of bpf_stats `run_time_ns` (`bpftool -j prog show`) over the storm, summed over the tracer's programs, over the execs performed. \
tracer CPU: the tracer's utime+stime (/proc/PID/stat) from just before the storm until its output stopped growing after it, per 1000 captured exec events. \
peak RSS: the tracer's VmHWM (/proc/PID/status) just before it was stopped. \
argv bytes captured: each captured argument's length + 1 for its NUL, capped at the real {argv_bytes} bytes, averaged over captured events. \
whole argv: captured events with all {argv_bytes} bytes and no truncation mark.\n"
    );
    for r in runs {
        let mut note = format!("- {}: ", r.tool.label());
        for p in &r.progs {
            let per_run = if p.run_cnt == 0 { 0.0 } else { p.run_time_ns as f64 / p.run_cnt as f64 };
            let _ = write!(note, "`{}` ran {} times, {per_run:.0} ns each; ", p.name, p.run_cnt);
        }
        if !r.loss_note.is_empty() {
            let _ = write!(note, "{}; ", r.loss_note);
        }
        note.push_str(&r.cpu_use);
        note.push('.');
        out.push_str(&note);
        out.push('\n');
    }
    out.push('\n');
}

// ---- main ------------------------------------------------------------------------------------

fn run(opts: &Options) -> Result<String> {
    if !is_root()? {
        return Err("must run as root (BPF, bpf_stats, /proc of the tracers)".into());
    }
    if !opts.execsnoop.is_file() {
        return Err(format!(
            "execsnoop not found at {}: install it with `apt-get install libbpf-tools`",
            opts.execsnoop.display()
        ));
    }
    for (what, path) in [("--storm", &opts.storm), ("--child", &opts.child), ("--dump", &opts.dump)] {
        if !path.is_file() {
            return Err(format!("{what} {}: no such file (build it first)", path.display()));
        }
    }
    run_output("bpftool", &["version"]).map_err(|e| format!("bpftool is needed: {e}"))?;
    let clk_tck = clk_tck()?;
    let pdeathsig = pdeathsig_available();
    if !pdeathsig {
        eprintln!("setpriv --pdeathsig is not available: tracers are started directly");
    }
    let machine = bench_util::machine();
    let date = bench_util::today();
    let commit = git_commit();

    let load_start = load_average();
    // execsnoop attaches to syscall tracepoints, which libbpf finds in tracefs.
    let _tracefs = Tracefs::ensure("execsnoop")?;
    let _bpf_stats = BpfStats::enable()?;
    let mut tables = String::new();
    for &(nargs, arglen) in &opts.sizes {
        let mut runs = Vec::new();
        for tool in [Tool::None, Tool::Proctap, Tool::Execsnoop] {
            eprintln!("[{nargs}x{arglen}] {} : {} s storm", tool.label(), opts.seconds);
            let result = match tool {
                Tool::None => run_untraced(opts, nargs, arglen)?,
                _ => run_traced(opts, tool, nargs, arglen, pdeathsig, clk_tck)?,
            };
            eprintln!(
                "  {}: {:.0} exec/s ({} workers)",
                tool.label(),
                result.storm.execs as f64 / result.storm.seconds,
                result.storm.workers
            );
            runs.push(result);
            sleep(Duration::from_millis(500));
        }
        table(&mut tables, nargs, arglen, &runs, clk_tck);
    }

    let mut out = String::new();
    out.push_str("## Exec storm: proctap vs execsnoop\n\n");
    out.push_str("Reproduce (as root): `make bench-exec`\n\n");
    let _ = writeln!(
        out,
        "Machine: {machine}. Date: {date} (UTC). \
Load average (1 min, /proc/loadavg) before the first run: {load_start}.{}\n",
        commit.map(|c| format!(" proctap at `{c}`.")).unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "`storm` runs one worker per online CPU, each pinned to its CPU and looping vfork + execve of the static \
`{CHILD_COMM}` (which exits at once) + waitpid for {} s, with N arguments of exactly L printable bytes each. \
Each size runs three times in a row: no tracer; proctap's `dump` with default options (argv cap 16 KiB; it also reports \
every exit, so it emits two events per exec); libbpf-tools' `execsnoop` ({}) with its defaults and no filter. \
Each tracer writes to a file in /dev/shm rather than /dev/null on purpose: completeness and argv fidelity are \
counted from what it wrote, and execsnoop leaves no mark in its output for the events it dropped. \
kernel.bpf_stats_enabled was 1 for every run, which adds a clock read before and after every BPF program run.\n",
        opts.seconds,
        package_version(&opts.execsnoop)
    );
    out.push_str(&tables);
    Ok(out)
}

fn main() -> ExitCode {
    bench_util::main("bench_exec", parse_options, run)
}
