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
mod overhead;
mod soak;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

use bench_util::system::{is_root, run_output, BpfStats, Result};
use bench_util::{machine, today};

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
        out += &overhead::overhead_table(opts, cpus, &comm)?;
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

fn main() -> ExitCode {
    bench_util::main("bench_profile", parse_options, run)
}
