//! `make bench-profile`: what the CPU profiler costs a CPU-bound workload.
//!
//!     bench_profile --workload build/bench/pt-prof-spin
//!         [--seconds 3] [--rounds 7] [--rates 19,99,999]
//!         [--chain-seconds 4] [--chain-rounds 3] [--soak-seconds 300]
//!         [--tables overhead,chains,soak]
//!
//! Run as root. The workload is the profiler tests' hot program
//! (tests/fixtures/hot.c, frame pointers on) doing a fixed number of work
//! units: one process per CPU, each pinned to its CPU with taskset, so every
//! CPU is busy and any CPU the profiler takes is taken from the work. The
//! number of units is calibrated once so that a round takes about --seconds
//! without the profiler.
//!
//! Every round runs each mode once, in this order: no profiler; the profiler
//! at each --rates frequency, profiling the workload (its comm prefix is
//! watched, so the kernel adds each worker at its exec); the profiler at the
//! highest rate watching a prefix nothing has ("untracked": every sample
//! leaves at the pid filter). Interleaving the modes round by round spreads
//! the drift of a noisy machine over all of them; each ratio to "none" is
//! taken within its round, and the table gives the median over rounds.
//! The second table (chains.rs) puts proctap's two unwinding modes beside
//! perf's frame-pointer and DWARF modes on a program with known call
//! chains: how many samples carry the whole chain, and what each costs.
//! The third (soak.rs) follows the profile example's memory over a long
//! system-wide run during an exec storm (built by `make bench-profile`:
//! target/release/examples/profile, build/bench/storm and pt-storm-child).
//!
//! Prints Markdown on stdout, progress on stderr. Every number in it is
//! measured here; nothing is asserted.

#[path = "../bench_util/mod.rs"]
mod bench_util;
mod chains;
mod soak;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

use bench_util::system::{is_root, load_average, prog_deltas, prog_snapshot, run_output, BpfStats, Prog, Result};
use bench_util::{machine, self_cpu_ns, table, today};
use proctap::{Config, Event, Profiler, Tracer, Unwind};

const USAGE: &str = "usage: bench_profile --workload PATH [--seconds S] [--rounds N] [--rates HZ,HZ,...] \
                     [--chain-seconds S] [--chain-rounds N] [--soak-seconds S] [--flush-ms MS] [--tables overhead,chains,soak]";
/// A comm prefix no process has: the profiler runs, its filter rejects everything.
const NO_MATCH: &str = "pt-prof-nomatch";

struct Options {
    workload: PathBuf,
    seconds: f64,
    rounds: usize,
    rates: Vec<u32>,
    chain_seconds: u64,
    chain_rounds: usize,
    soak_seconds: u64,
    /// The tracer's flush interval in the overhead table (None: the library's default).
    flush: Option<Duration>,
    overhead: bool,
    chains: bool,
    soak: bool,
}

fn parse_options() -> Result<Options> {
    let mut o = Options {
        workload: PathBuf::from("build/bench/pt-prof-spin"),
        seconds: 3.0,
        rounds: 7,
        rates: vec![19, 99, 999],
        chain_seconds: 4,
        chain_rounds: 3,
        soak_seconds: 300,
        flush: None,
        overhead: true,
        chains: true,
        soak: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--workload" => o.workload = value()?.into(),
            "--seconds" => {
                o.seconds = value()?.parse().map_err(|_| "--seconds: not a number".to_string())?;
                if !o.seconds.is_finite() || o.seconds <= 0.0 {
                    return Err("--seconds must be positive".into());
                }
            }
            "--rounds" => {
                o.rounds = value()?.parse().map_err(|_| "--rounds: not a whole number".to_string())?;
                if o.rounds == 0 {
                    return Err("--rounds must be at least 1".into());
                }
            }
            "--rates" => {
                o.rates = value()?
                    .split(',')
                    .map(|r| r.trim().parse::<u32>().map_err(|_| format!("--rates: bad frequency '{r}'")))
                    .collect::<Result<_>>()?;
                if o.rates.is_empty() || o.rates.contains(&0) {
                    return Err("--rates: give one or more frequencies in Hz".into());
                }
            }
            "--chain-seconds" => {
                o.chain_seconds = value()?.parse().map_err(|_| "--chain-seconds: not a whole number".to_string())?
            }
            "--chain-rounds" => {
                o.chain_rounds = value()?.parse().map_err(|_| "--chain-rounds: not a whole number".to_string())?
            }
            "--flush-ms" => {
                let ms: u64 = value()?.parse().map_err(|_| "--flush-ms: not a whole number".to_string())?;
                o.flush = Some(Duration::from_millis(ms.max(1)));
            }
            "--soak-seconds" => {
                o.soak_seconds = value()?.parse().map_err(|_| "--soak-seconds: not a whole number".to_string())?
            }
            "--tables" => {
                let tables = value()?;
                (o.overhead, o.chains, o.soak) = (false, false, false);
                for t in tables.split(',') {
                    match t.trim() {
                        "overhead" => o.overhead = true,
                        "chains" => o.chains = true,
                        "soak" => o.soak = true,
                        other => return Err(format!("--tables: no table '{other}' (overhead, chains, soak)")),
                    }
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(o)
}

// ---- bpf_stats ---------------------------------------------------------------

/// Growth of the perf_event programs' run time and run count, and of all
/// programs' run time: (perf_event ns, perf_event runs, all ns).
fn prog_growth(before: &[Prog], after: &[Prog]) -> (u64, u64, u64) {
    prog_deltas(before, after).iter().fold((0, 0, 0), |(perf_ns, perf_runs, all_ns), p| {
        let (ns, runs) = if p.kind == "perf_event" { (p.run_time_ns, p.run_cnt) } else { (0, 0) };
        (perf_ns + ns, perf_runs + runs, all_ns + p.run_time_ns)
    })
}

// ---- the workload ------------------------------------------------------------

#[derive(serde::Deserialize)]
struct WorkReport {
    units: u64,
    ns: u64,
    cpu_ns: u64,
}

/// One run of the workload: the workers' mean work time, the wall time
/// from the first spawn to the last exit, and the workers' CPU time summed.
#[derive(Default, Clone, Copy)]
struct Work {
    work_ns: u64,
    wall_ns: u64,
    cpu_ns: u64,
}

/// One worker per CPU, pinned, each doing `units` units.
fn run_workload(opts: &Options, cpus: usize, units: u64) -> Result<Work> {
    let workload = opts.workload.to_string_lossy().into_owned();
    let units_arg = units.to_string();
    let start = Instant::now();
    let mut children: Vec<Child> = Vec::new();
    for cpu in 0..cpus {
        let child = Command::new("taskset")
            .args(["-c", &cpu.to_string(), &workload, "--work", &units_arg])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start taskset {workload}: {e}"));
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                for mut c in children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(e);
            }
        }
    }
    let (mut total, mut cpu_ns) = (0, 0);
    let mut failure = None;
    for child in children {
        match child.wait_with_output() {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                match serde_json::from_str::<WorkReport>(text.trim()) {
                    Ok(r) if r.units == units => {
                        total += r.ns;
                        cpu_ns += r.cpu_ns;
                    }
                    Ok(r) => failure = Some(format!("worker did {} units, not {units}", r.units)),
                    Err(e) => failure = Some(format!("worker output {text:?}: {e}")),
                }
            }
            Ok(out) => failure = Some(format!("worker failed: {}", out.status)),
            Err(e) => failure = Some(format!("wait: {e}")),
        }
    }
    let wall = start.elapsed().as_nanos() as u64;
    match failure {
        Some(f) => Err(f),
        None => Ok(Work { work_ns: total / cpus as u64, wall_ns: wall, cpu_ns }),
    }
}

// ---- the profiler --------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    None,
    Profile(u32, Unwind),
    Untracked(u32),
}

impl Mode {
    fn label(self) -> String {
        match self {
            Mode::None => "none".into(),
            Mode::Profile(hz, Unwind::FramePointers) => format!("{hz} Hz, fp"),
            Mode::Profile(hz, _) => format!("{hz} Hz, copy"),
            Mode::Untracked(hz) => format!("{hz} Hz, untracked"),
        }
    }
}

/// What the consumer thread saw.
#[derive(Default, Clone, Copy)]
struct Seen {
    samples: u64,
    user_frames: u64,
    kernel_frames: u64,
    triggers: u64,
    lost_records: u64,
}

fn consume(tracer: &Tracer, done: Arc<AtomicBool>) -> JoinHandle<Seen> {
    let rx = tracer.events().clone();
    std::thread::spawn(move || {
        let mut seen = Seen::default();
        loop {
            let batch = match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(batch) => batch,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) if !done.load(Ordering::Relaxed) => continue,
                Err(_) => break,
            };
            for event in &batch {
                match event {
                    Event::Sample(s) => {
                        seen.samples += 1;
                        seen.user_frames += s.user_stack.len() as u64;
                        seen.kernel_frames += s.kernel_stack.len() as u64;
                    }
                    Event::Trigger(_) => seen.triggers += 1,
                    Event::Lost(_) => seen.lost_records += 1,
                    _ => {}
                }
            }
        }
        seen
    })
}

/// One mode of one round.
#[derive(Default, Clone, Copy)]
struct Run {
    work: Work,
    seen: Seen,
    /// Wall time between the two bpf_stats snapshots.
    bpf_window_ns: u64,
    perf_ns: u64,
    perf_runs: u64,
    all_prog_ns: u64,
    tracer_cpu_ns: u64,
    /// Wall time over which tracer_cpu_ns was read.
    cpu_window_ns: u64,
    emitted: u64,
    lost: u64,
}

fn run_mode(opts: &Options, mode: Mode, cpus: usize, units: u64, workload_comm: &str) -> Result<Run> {
    let (hz, prefix, unwind) = match mode {
        Mode::None => {
            let work = run_workload(opts, cpus, units)?;
            return Ok(Run { work, ..Run::default() });
        }
        Mode::Profile(hz, unwind) => (hz, workload_comm, unwind),
        Mode::Untracked(hz) => (hz, NO_MATCH, Unwind::StackCopy),
    };
    let profiler = Profiler::new().hz(hz).comm_prefix(prefix).unwind(unwind);
    let mut config = Config::new().exec(false).exit(false).profile(profiler);
    if let Some(flush) = opts.flush {
        config = config.flush_interval(flush);
    }
    let tracer = Tracer::start(&config).map_err(|e| format!("profiler at {hz} Hz: {e}"))?;
    let done = Arc::new(AtomicBool::new(false));
    let consumer = consume(&tracer, done.clone());
    let ids: BTreeSet<u64> = tracer.prog_ids().into_iter().map(u64::from).collect();
    let result: Result<Run> = (|| {
        sleep(Duration::from_millis(200));
        let tb0 = Instant::now();
        let progs0 = prog_snapshot(&ids)?;
        let (cpu0, t0) = (self_cpu_ns(), Instant::now());
        let work = run_workload(opts, cpus, units)?;
        // Let the last samples reach the consumer before reading its CPU.
        sleep(Duration::from_millis(300));
        let (cpu1, window) = (self_cpu_ns(), t0.elapsed());
        // Start to start of the two bpftool runs: each reads the counters equally late.
        let bpf_window = tb0.elapsed();
        let progs1 = prog_snapshot(&ids)?;
        let (perf_ns, perf_runs, all_prog_ns) = prog_growth(&progs0, &progs1);
        Ok(Run {
            work,
            bpf_window_ns: bpf_window.as_nanos() as u64,
            perf_ns,
            perf_runs,
            all_prog_ns,
            tracer_cpu_ns: cpu1 - cpu0,
            cpu_window_ns: window.as_nanos() as u64,
            ..Run::default()
        })
    })();
    let stats = tracer.stop().map_err(|e| format!("stop: {e}"));
    done.store(true, Ordering::Relaxed);
    let seen = consumer.join().map_err(|_| "consumer thread panicked".to_string())?;
    let stats = stats?;
    let mut run: Run = result?;
    run.seen = seen;
    run.emitted = stats.sample().emitted;
    run.lost = stats.sample().meta_lost + stats.sample().data_lost;
    Ok(run)
}

// ---- report ---------------------------------------------------------------------

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn report(modes: &[Mode], runs: &[Vec<Run>], cpus: usize) -> String {
    let header = [
        "profiler",
        "work s (median)",
        "vs none: median [min, max]",
        "samples/s received",
        "samples / (Hz × worker CPU s)",
        "in-kernel ns per sample",
        "in-kernel ns per perf_event run",
        "perf_event runs/s",
        "tracer CPU % of one CPU",
        "profiler's share of all CPU time",
        "tracer µs per sample",
        "user frames per sample (fp walk)",
        "kernel frames per sample",
        "lost / emitted",
    ];
    let mut rows = Vec::new();
    for (m, mode) in modes.iter().enumerate() {
        let mine: Vec<Run> = runs.iter().map(|round| round[m]).collect();
        let ratios: Vec<f64> =
            runs.iter().map(|round| round[m].work.work_ns as f64 / round[0].work.work_ns as f64).collect();
        let (lo, hi) = ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        let mut row = vec![
            mode.label(),
            format!("{:.3}", median(mine.iter().map(|r| r.work.work_ns as f64 / 1e9).collect())),
            if *mode == Mode::None { "1".into() } else { format!("{:.4} [{lo:.4}, {hi:.4}]", median(ratios)) },
        ];
        if *mode == Mode::None {
            row.extend(std::iter::repeat_n("—".to_string(), header.len() - row.len()));
        } else {
            let sum = |f: fn(&Run) -> u64| mine.iter().map(f).sum::<u64>();
            let (wall, samples) = (sum(|r| r.work.wall_ns) as f64 / 1e9, sum(|r| r.seen.samples));
            let worker_cpu = sum(|r| r.work.cpu_ns) as f64 / 1e9;
            let bpf_window = sum(|r| r.bpf_window_ns) as f64 / 1e9;
            let (perf_ns, perf_runs) = (sum(|r| r.perf_ns), sum(|r| r.perf_runs));
            let cpu_ns = sum(|r| r.tracer_cpu_ns);
            let per = |n: u64, d: u64| if d == 0 { "n/a".to_string() } else { format!("{:.1}", n as f64 / d as f64) };
            let frames =
                |n: u64| if samples == 0 { "n/a".to_string() } else { format!("{:.1}", n as f64 / samples as f64) };
            let window = sum(|r| r.cpu_window_ns) as f64 / 1e9;
            row.extend([
                format!("{:.1}", samples as f64 / wall),
                match mode {
                    Mode::Profile(hz, _) => format!("{:.3}", samples as f64 / (*hz as f64 * worker_cpu)),
                    _ => "—".into(),
                },
                per(sum(|r| r.all_prog_ns), samples),
                per(perf_ns, perf_runs),
                format!("{:.0}", perf_runs as f64 / bpf_window),
                format!("{:.2}", cpu_ns as f64 / 1e9 / window * 100.0),
                format!(
                    "{:.2} %",
                    (sum(|r| r.all_prog_ns) as f64 / bpf_window + cpu_ns as f64 / window) / 1e9 / cpus as f64 * 100.0
                ),
                if samples == 0 { "n/a".into() } else { format!("{:.1}", cpu_ns as f64 / 1e3 / samples as f64) },
                frames(sum(|r| r.seen.user_frames)),
                frames(sum(|r| r.seen.kernel_frames)),
                format!("{} / {}", sum(|r| r.lost), sum(|r| r.emitted)),
            ]);
        }
        rows.push(row);
    }
    table(&header, &rows)
}

fn run(opts: &Options) -> Result<String> {
    if !is_root()? {
        return Err("must run as root (BPF, perf events, bpf_stats)".into());
    }
    if !opts.workload.is_file() {
        return Err(format!("--workload {}: no such file (make bench-profile builds it)", opts.workload.display()));
    }
    run_output("bpftool", &["version"]).map_err(|e| format!("bpftool is needed: {e}"))?;
    run_output("taskset", &["-V"]).map_err(|e| format!("taskset (util-linux) is needed: {e}"))?;
    let comm: String = opts
        .workload
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(15).collect())
        .ok_or("--workload has no file name")?;
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let _stats = BpfStats::enable()?;
    let mut out = String::new();
    if opts.overhead {
        out += &overhead_table(opts, cpus, &comm)?;
    }
    if opts.chains {
        out += &chains_table(opts, cpus)?;
    }
    if opts.soak {
        let programs = soak::Programs {
            profile: Path::new("target/release/examples/profile"),
            storm: Path::new("build/bench/storm"),
            child: Path::new("build/bench/pt-storm-child"),
        };
        out += &soak::run(&programs, opts.soak_seconds, Duration::from_secs(15))?;
    }
    Ok(out)
}

/// proctap's two modes beside perf's two on the known-chains fixture.
fn chains_table(opts: &Options, cpus: usize) -> Result<String> {
    run_output("perf", &["--version"]).map_err(|e| format!("perf (linux-perf) is needed: {e}"))?;
    let scratch = std::env::temp_dir().join(format!("pt-bench-chains-{}", std::process::id()));
    let builds = [chains::build(&scratch, true)?, chains::build(&scratch, false)?];
    let (hz, ms) = (99, opts.chain_seconds * 1000);
    let mut runs = Vec::new();
    for round in 0..opts.chain_rounds {
        let mut per_build = Vec::new();
        for build in &builds {
            let mut per_who = Vec::new();
            for who in chains::Who::ALL {
                let o = chains::run(who, build, hz, cpus, ms, &scratch)?;
                eprintln!(
                    "chains round {}/{}: {} / {}: {} samples, {} of {} whole",
                    round + 1,
                    opts.chain_rounds,
                    build.label,
                    who.label(),
                    o.samples,
                    o.chains.whole,
                    o.chains.leaf
                );
                per_who.push(o);
                sleep(Duration::from_millis(200));
            }
            per_build.push(per_who);
        }
        runs.push(per_build);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let mut out = String::from("\n## Stack correctness and cost beside perf\n\n");
    out += &format!("`make bench-profile` · {} · {} (UTC)\n\n", machine(), today());
    out += &format!(
        "Workload: tests/fixtures/unwind.c and its shared library (main → pt_sort_phase → qsort in libc → the \
comparator pt_cmp; main → pt_lib_phase → pt_lib_spin → pt_lib_inner in the library), built two ways; {cpus} \
processes, one pinned to each CPU, for {} s; every profiler at {hz} Hz; {} rounds, every profiler once per round \
and build, sums over rounds. perf {} attaches by pid just after the workers start; proctap watches their \
command name.\n\n",
        opts.chain_seconds,
        opts.chain_rounds,
        run_output("perf", &["--version"]).unwrap_or_default().trim().trim_start_matches("perf version "),
    );
    out += &chains::report(&builds, &runs, cpus);
    out += "\nwhole chains: of the samples whose innermost user frame is pt_cmp or pt_lib_inner, those with the \
whole chain to main (for pt_cmp: pt_sort_phase right under main and at least one libc frame between it and \
pt_cmp), from `perf script --no-inline` or from proctap's folded profile. CPU share: recording CPU (perf record, \
a waited-for child, in clock ticks; proctap: every thread of this process, the poll thread and a consumer that \
keeps every event) plus making stacks (`perf script`; proctap's `Symbolizer` and `Profile` on the kept events) \
plus proctap's BPF run time (bpf_stats), over the run's wall time times the CPUs. perf's in-kernel work (the \
sample interrupt and, in dwarf mode, an 8 KiB stack copy per sample) has no counter here: its share is a lower \
bound. bytes per sample: perf.data's size; proctap's stack bytes received (the stack copy, 8 per \
return address of either stack).\n";
    Ok(out)
}

/// What profiling costs the CPU-bound workload, mode by mode.
fn overhead_table(opts: &Options, cpus: usize, comm: &str) -> Result<String> {
    // Calibrate: units per round so that a round takes about --seconds.
    let probe = 2000;
    let probe_ns = run_workload(opts, cpus, probe)?.work_ns;
    let units = ((opts.seconds * 1e9 / probe_ns as f64) * probe as f64).round().max(1.0) as u64;
    eprintln!("calibration: {probe} units in {:.3} s per worker; {units} units per round", probe_ns as f64 / 1e9);

    let mut modes = vec![Mode::None];
    for unwind in [Unwind::FramePointers, Unwind::StackCopy] {
        modes.extend(opts.rates.iter().map(|&hz| Mode::Profile(hz, unwind)));
    }
    modes.push(Mode::Untracked(*opts.rates.iter().max().unwrap_or(&999)));
    let load0 = load_average();
    let mut runs = Vec::new();
    for round in 0..opts.rounds {
        let mut this = Vec::new();
        for &mode in &modes {
            let r = run_mode(opts, mode, cpus, units, comm)?;
            eprintln!(
                "round {}/{}: {:<18} work {:.3} s, {} samples, {} triggers, {} lost reports, {} perf_event runs",
                round + 1,
                opts.rounds,
                mode.label(),
                r.work.work_ns as f64 / 1e9,
                r.seen.samples,
                r.seen.triggers,
                r.seen.lost_records,
                r.perf_runs
            );
            this.push(r);
            sleep(Duration::from_millis(200));
        }
        runs.push(this);
    }

    let mut out = String::from("## CPU profiler overhead\n\n");
    out += &format!("`make bench-profile` · {} · {} (UTC)\n\n", machine(), today());
    out += &format!(
        "Workload: {cpus} processes of `{comm}` (tests/fixtures/hot.c, -O1, frame pointers), one pinned to each CPU, \
each doing {units} units of CPU work (calibrated to about {} s without the profiler). {} rounds; each round runs every \
mode once, in table order. Profiler: `Config::new().exec(false).exit(false).flush_interval({:?})\
.profile(Profiler::new().hz(HZ).comm_prefix(\"{comm}\").unwind(UNWIND))` (UNWIND `FramePointers` for \"fp\", `StackCopy` for \"copy\"), started before the workload, so the kernel adds each worker to the pid filter at its exec; \
\"untracked\" watches the prefix `{NO_MATCH}` that no process has, so every timer tick runs the program and leaves at the \
filter. One consumer thread counts the samples. Load average (1 min) before the first round: {}.\n\n",
        opts.seconds,
        opts.rounds,
        opts.flush.unwrap_or_else(|| Config::new().profile(Profiler::new()).effective_flush_interval()),
        load0,
    );
    out += &report(&modes, &runs, cpus);
    out += &format!("\nwork s: each worker's own monotonic time for its units, averaged over the workers; median over rounds. \
vs none: that time over the same round's time without the profiler; median, and the lowest and highest round. \
samples/s: stack samples the consumer received over the workload's wall time (first spawn to last exit). \
samples / (Hz × worker CPU s): samples received over what the timer should have caught: the frequency times the \
workers' CPU time (CLOCK_PROCESS_CPUTIME_ID, each worker's own report). \
in-kernel ns per sample: growth of bpf_stats `run_time_ns` of all the tracer's programs over the workload, over the \
samples received, every round summed. in-kernel ns per perf_event run: growth of bpf_stats `run_time_ns` / `run_cnt` (`bpftool -j prog show`) of the \
tracer's perf_event programs over the workload, every round summed; kernel.bpf_stats_enabled=1 for every mode \
(it adds two clock reads to each run). perf_event runs/s: `run_cnt` growth over the time between the two \
`bpftool` reads (every CPU's timer runs the program, whatever runs there, tracked or not). tracer CPU: CPU time of all of this process's threads \
(/proc/self/task/*/schedstat: the C poll thread, the consumer, the idle driver) from the workload's start until 300 ms \
after its end, over that time. profiler's share: in-kernel run time of all its programs per second plus tracer CPU per second, \
over the {cpus} CPUs: the CPU the profiler took, independent of how noisy the work times are. user frames (fp walk): return addresses per sample \
of the kernel's frame-pointer walk (the copy mode unwinds in userspace instead). lost / emitted: the tracer's sample counters (metadata ring full + data pages full) over \
samples the kernel emitted.\n");
    Ok(out)
}

fn main() -> ExitCode {
    bench_util::main("bench_profile", parse_options, run)
}
