//! Profiling: the options of `proctap profile` (and of the `profile`
//! example, which parses its own command line into the same
//! [`ProfileOptions`]), sampling until the duration or a signal, then
//! writing the profiles into the output directory (rs/cli/profile_files.rs)
//! and a one-line JSON summary on stdout.
//!
//! Processes whose command name starts with a --comm prefix are profiled
//! from their exec on (the kernel adds them), as are those already running
//! (a /proc scan). The files are written however sampling ends; an output
//! directory that cannot be written fails before sampling.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use proctap::profile::{capture, psi, Profile, Symbolizer};
use proctap::{Config, Event, EventKind, Profiler, Tracer, Unwind};

use crate::profile_files::{print_capture, print_errors, print_lost, summary, write_all};
use crate::stop::Stopper;

/// How long to sample when no duration is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// How long a pressure-triggered capture lasts when no window is given.
pub const DEFAULT_CAPTURE_WINDOW: Duration = Duration::from_secs(5);
/// The off-CPU threshold of --off-cpu without --off-cpu-min.
const DEFAULT_OFF_CPU_MIN_US: u32 = 1000;

/// What to profile, as the command line gave it.
#[derive(Clone, Debug, Default)]
pub struct ProfileOptions {
    /// Command-name prefixes, any bytes.
    pub comms: Vec<Vec<u8>>,
    pub pids: Vec<u32>,
    /// Every process.
    pub all: bool,
    /// Follow the targets' forks.
    pub children: bool,
    pub hz: Option<u32>,
    pub unwind: Option<Unwind>,
    pub off_cpu: bool,
    /// Shortest sleep reported, in microseconds; implies `off_cpu`.
    pub off_cpu_min_us: Option<u32>,
    /// Pressure triggers: nothing is sampled until one fires.
    pub psi: Vec<psi::Trigger>,
    pub capture_window: Option<Duration>,
    /// None: [`DEFAULT_DURATION`]. Zero: stop at once.
    pub duration: Option<Duration>,
    /// Print each stack error and loss as a JSON line.
    pub errors: bool,
    /// Where to look for separate debug files, besides /usr/lib/debug.
    pub debug_dirs: Vec<PathBuf>,
    /// The output directory (required).
    pub out: Option<PathBuf>,
}

/// A checked profiling run.
pub struct Plan {
    profiler: Profiler,
    duration: Duration,
    out: PathBuf,
    debug_dirs: Vec<PathBuf>,
    psi: Vec<psi::Trigger>,
    capture_window: Duration,
    watched: capture::Watched,
    errors: bool,
}

impl ProfileOptions {
    /// Checks the options; the error says what to give.
    pub fn plan(&self) -> Result<Plan, String> {
        if self.comms.is_empty() && self.pids.is_empty() && !self.all {
            return Err("nothing to profile: give --comm, --pid or --all".into());
        }
        let out = self.out.clone().ok_or("--out DIR is required")?;
        let watched = capture::Watched { pids: self.pids.clone(), comm_prefixes: self.comms.clone() };
        if !self.psi.is_empty() && watched.pids.is_empty() && watched.comm_prefixes.is_empty() {
            return Err("--psi watches the cgroups of --comm or --pid processes: give one".into());
        }
        Ok(Plan {
            profiler: self.profiler(),
            duration: self.duration.unwrap_or(DEFAULT_DURATION),
            out,
            debug_dirs: self.debug_dirs.clone(),
            psi: self.psi.clone(),
            capture_window: self.capture_window.unwrap_or(DEFAULT_CAPTURE_WINDOW),
            watched,
            errors: self.errors,
        })
    }

    /// The profiler: with --psi it starts with no targets (sampling waits
    /// for pressure), else with every target given.
    fn profiler(&self) -> Profiler {
        let mut profiler = Profiler::new();
        if let Some(hz) = self.hz {
            profiler = profiler.hz(hz);
        }
        if let Some(unwind) = self.unwind {
            profiler = profiler.unwind(unwind);
        }
        if self.off_cpu || self.off_cpu_min_us.is_some() {
            let min = self.off_cpu_min_us.unwrap_or(DEFAULT_OFF_CPU_MIN_US);
            profiler = profiler.off_cpu(Duration::from_micros(min.into()));
        }
        if !self.psi.is_empty() {
            return profiler;
        }
        for prefix in &self.comms {
            profiler = profiler.comm_prefix(prefix);
        }
        for &pid in &self.pids {
            profiler = profiler.pid(pid);
        }
        profiler.all(self.all).children(self.children)
    }
}

/// Creates `dir` and checks a file can be written there, before sampling
/// for the whole duration only to fail at the end.
fn check_out_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".proctap-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// What the sampling collected.
pub struct Collected {
    pub profile: Profile,
    /// With --off-cpu.
    pub off_cpu: Option<Profile>,
    pub triggers: u64,
    /// Samples lost whole.
    pub lost: u64,
    /// Processes the symbolizer still held at the end.
    pub held: usize,
}

/// Aggregates samples until the tracer stops (the duration, or a signal)
/// and its channel closes with the last batch read.
fn collect(tracer: &Tracer, plan: &Plan) -> Collected {
    let mut symbolizer = Symbolizer::new();
    if !plan.debug_dirs.is_empty() {
        let mut dirs = plan.debug_dirs.clone();
        dirs.push(PathBuf::from("/usr/lib/debug"));
        symbolizer = symbolizer.debug_dirs(dirs);
    }
    let off_cpu = plan.profiler.off_cpu_threshold().map(|_| Profile::off_cpu());
    let profile = Profile::new(plan.profiler.sampling_hz());
    let mut got = Collected { profile, off_cpu, triggers: 0, lost: 0, held: 0 };
    // The stream's mapping records (every running process' at start, then
    // each fork, exec, mmap and exit) are all the symbolizer needs: no
    // /proc read per process, and each is forgotten after its exit.
    for batch in tracer.events() {
        for event in &batch {
            match &event {
                Event::Sample(sample) => {
                    let errors = got.profile.add(sample, &mut symbolizer);
                    if plan.errors {
                        print_errors(errors, sample.pid, sample.tid, &sample.comm, sample.ts_ns, "cpu");
                    }
                }
                Event::Trigger(_) => got.triggers += 1,
                Event::Mapping(mapping) => symbolizer.learn_mapping(mapping),
                Event::Offcpu(sleep) => {
                    if let Some(off) = &mut got.off_cpu {
                        let errors = off.add_off_cpu(sleep, &mut symbolizer);
                        if plan.errors {
                            print_errors(errors, sleep.pid, sleep.tid, &sleep.comm, sleep.ts_ns, "off-cpu");
                        }
                    }
                }
                Event::Capture(c) => print_capture(c),
                Event::Lost(l) if matches!(l.kind, EventKind::Sample | EventKind::Offcpu) => {
                    if l.kind == EventKind::Sample {
                        got.lost += l.records;
                    }
                    if plan.errors {
                        print_lost(l.kind, l.records);
                    }
                }
                _ => {}
            }
        }
    }
    got.held = symbolizer.processes_held();
    got
}

/// Starts the pressure-triggered captures of --psi, if any.
fn start_captures(tracer: &Tracer, plan: &Plan) -> Result<Option<Arc<capture::Captures>>, String> {
    if plan.psi.is_empty() {
        return Ok(None);
    }
    let captures = capture::start(tracer.targets(), plan.psi.clone(), plan.capture_window, plan.watched.clone())
        .map_err(|e| format!("--psi: {e}"))?;
    Ok(Some(Arc::new(captures)))
}

/// Profiles as `plan` says until its duration or a signal (through
/// `stopper`, installed before the options were read), then writes the
/// files and prints the summary. `tool` prefixes error messages.
pub fn run(tool: &str, stopper: &Stopper, plan: &Plan) -> ExitCode {
    if let Err(e) = check_out_dir(&plan.out) {
        eprintln!("{tool}: cannot write into --out {}: {e}", plan.out.display());
        return ExitCode::FAILURE;
    }
    let config = Config::new().exec(false).exit(false).profile(plan.profiler.clone());
    let tracer = match Tracer::start(&config) {
        Ok(tracer) => tracer,
        Err(e) => {
            eprintln!("{tool}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let captures = match start_captures(&tracer, plan) {
        Ok(captures) => captures,
        Err(e) => {
            eprintln!("{tool}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Captures end before the tracer stops: their stops are in the stream.
    if let Some(captures) = captures.clone() {
        stopper.before_stop(move || {
            captures.stop();
        });
    }
    stopper.arm(tracer.stop_handle());
    stopper.after(plan.duration);
    let got = collect(&tracer, plan);
    let captures = captures.map(|c| c.stop());
    let stats = match tracer.stop() {
        Ok(stats) => stats,
        Err(e) => {
            eprintln!("{tool}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let written = match write_all(&got, &plan.out) {
        Ok(paths) => paths,
        Err(e) => {
            eprintln!("{tool}: writing into {}: {e}", plan.out.display());
            return ExitCode::FAILURE;
        }
    };
    println!("{}", summary(&got, plan.profiler.sampling_hz(), &stats, captures, &written));
    ExitCode::SUCCESS
}
