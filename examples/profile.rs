//! CPU profiler: samples the chosen processes, then writes folded stacks, a
//! flamegraph and a gzipped pprof profile into DIR.
//!
//!     cargo run --release --example profile -- [--comm PREFIX]... [--pid PID]... [--all]
//!         [--children] [--hz HZ] [--unwind copy|fp] [--duration SECONDS] [--debug-dir DIR]... --out DIR
//!
//! --unwind copy (the default) copies each sample's user stack and unwinds
//! it here from the binaries' .eh_frame: whole chains without frame
//! pointers. --unwind fp has the kernel walk frame pointers (cheaper).
//!
//! --off-cpu also records where the targets' threads sleep (1 ms or more;
//! --off-cpu-min sets another threshold, and implies --off-cpu) and writes
//! DIR/offcpu.folded (weighted in microseconds slept), offcpu.svg and
//! offcpu.pb.gz beside the CPU profile.
//!
//! --psi RESOURCE:PERCENT (repeatable; RESOURCE cpu, memory or io, optionally
//! RESOURCE:full:PERCENT) samples nothing until the cgroup of a --comm or
//! --pid process stalls on RESOURCE over PERCENT of a 1 s window; then that
//! cgroup's processes are profiled for --capture-window SECONDS (default 5),
//! and each capture's start and stop, as the stream gives them, print as
//! JSON lines ({"type":"capture","state":"start"|"stop","cgroup":...,
//! "targets":N,"trigger":{...}}).
//!
//! --errors prints, as JSON lines, each sample whose stack is missing or
//! cut short ({"type":"stack_error","error":"user_stack","reason":"EFAULT",
//! "pid":...}: the kernel could not walk it, its data was lost, or the
//! unwinding of its copy stopped short) and each report of samples lost
//! whole ({"type":"lost","kind":"sample","records":N}). The summary counts
//! them either way.
//!
//! Processes whose command name starts with PREFIX are profiled from their
//! exec on (the kernel adds them), as are those already running (a /proc
//! scan). A summary is printed on stdout as one JSON line. It stops on
//! SIGINT, SIGTERM or after --duration (0: at once), and writes its files
//! in every case; an --out it cannot write fails before sampling.

mod tool;

use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use proctap::profile::{capture, Profile, SampleErrors, Symbolizer};
use proctap::{Capture, CaptureStall, Comm, Config, Event, EventKind, Profiler, Tracer, Unwind};

const USAGE: &str = "usage: profile [--comm PREFIX]... [--pid PID]... [--all] [--children] [--hz HZ] \
                     [--unwind copy|fp] [--off-cpu] [--off-cpu-min MICROSECONDS] \
                     [--psi RESOURCE:PERCENT]... [--capture-window SECONDS] [--duration SECONDS] \
                     [--errors] [--debug-dir DIR]... --out DIR";

struct Args {
    profiler: Profiler,
    duration: Duration,
    out: PathBuf,
    debug_dirs: Vec<PathBuf>,
    /// --psi: pressure triggers; the --comm and --pid processes then name
    /// the cgroups to watch, and nothing is sampled until one fires.
    psi: Vec<proctap::profile::psi::Trigger>,
    capture_window: Duration,
    watched: capture::Watched,
    /// --errors: print each stack error and loss as it comes.
    errors: bool,
}

fn parse_args() -> Result<Args, String> {
    let (mut profiler, mut any_target) = (Profiler::new(), false);
    let mut duration = Duration::from_secs(10);
    let (mut out, mut debug_dirs) = (None, Vec::new());
    let (mut psi, mut capture_window) = (Vec::new(), Duration::from_secs(5));
    let mut watched = capture::Watched { pids: Vec::new(), comm_prefixes: Vec::new() };
    let mut errors = false;
    let mut args = tool::Args::new(USAGE);
    let path = |bytes: Vec<u8>| PathBuf::from(std::ffi::OsString::from_vec(bytes));
    while let Some(arg) = args.next_option() {
        match arg?.as_str() {
            "--comm" => {
                let prefix = args.value("--comm")?;
                watched.comm_prefixes.push(prefix.clone());
                (profiler, any_target) = (profiler.comm_prefix(prefix), true)
            }
            "--pid" => {
                let pid = args.number("--pid")?;
                watched.pids.push(pid);
                (profiler, any_target) = (profiler.pid(pid), true)
            }
            "--psi" => {
                let text = String::from_utf8_lossy(&args.value("--psi")?).into_owned();
                psi.push(proctap::profile::psi::Trigger::parse(&text).map_err(|e| format!("--psi {e}\n{USAGE}"))?)
            }
            "--capture-window" => capture_window = args.seconds("--capture-window")?,
            "--all" => (profiler, any_target) = (profiler.all(true), true),
            "--children" => profiler = profiler.children(true),
            "--hz" => profiler = profiler.hz(args.number("--hz")?),
            "--off-cpu" => profiler = profiler.off_cpu(Duration::from_micros(1000)),
            "--off-cpu-min" => profiler = profiler.off_cpu(Duration::from_micros(args.number("--off-cpu-min")?.into())),
            "--unwind" => {
                profiler = profiler.unwind(match args.value("--unwind")?.as_slice() {
                    b"copy" => Unwind::StackCopy,
                    b"fp" => Unwind::FramePointers,
                    other => {
                        return Err(format!("--unwind {}: use copy or fp\n{USAGE}", String::from_utf8_lossy(other)))
                    }
                })
            }
            "--duration" => duration = args.seconds("--duration")?,
            "--errors" => errors = true,
            "--debug-dir" => debug_dirs.push(path(args.value("--debug-dir")?)),
            "--out" => out = Some(path(args.value("--out")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if !any_target {
        return Err(format!("nothing to profile: give --comm, --pid or --all\n{USAGE}"));
    }
    let out = out.ok_or_else(|| format!("--out DIR is required\n{USAGE}"))?;
    if !psi.is_empty() {
        if watched.pids.is_empty() && watched.comm_prefixes.is_empty() {
            return Err(format!("--psi watches the cgroups of --comm or --pid processes: give one\n{USAGE}"));
        }
        // Sampling waits for pressure: the profiler starts with no targets.
        let mut idle = Profiler::new().hz(profiler.sampling_hz()).unwind(profiler.unwinding());
        if let Some(min) = profiler.off_cpu_threshold() {
            idle = idle.off_cpu(min);
        }
        profiler = idle;
    }
    Ok(Args { profiler, duration, out, debug_dirs, psi, capture_window, watched, errors })
}

/// Creates `dir` and checks a file can be written there, before sampling
/// for the whole duration only to fail at the end.
fn check_out_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".proctap-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// What the sampling collected.
struct Collected {
    profile: Profile,
    /// With --off-cpu.
    off_cpu: Option<Profile>,
    triggers: u64,
    lost: u64,
}

/// Aggregates samples until the tracer stops (the duration, or a signal)
/// and its channel closes with the last batch read.
/// Also says how many processes the symbolizer still held at the end.
fn collect(tracer: &Tracer, args: &Args) -> (Collected, usize) {
    let mut symbolizer = Symbolizer::new();
    if !args.debug_dirs.is_empty() {
        let mut dirs = args.debug_dirs.clone();
        dirs.push(PathBuf::from("/usr/lib/debug"));
        symbolizer = symbolizer.debug_dirs(dirs);
    }
    let off_cpu = args.profiler.off_cpu_threshold().map(|_| Profile::off_cpu());
    let mut got = Collected { profile: Profile::new(args.profiler.sampling_hz()), off_cpu, triggers: 0, lost: 0 };
    // The stream's mapping records (every running process' at start, then
    // each fork, exec, mmap and exit) are all the symbolizer needs: no
    // /proc read per process, and each is forgotten after its exit.
    for batch in tracer.events() {
        for event in &batch {
            match &event {
                Event::Sample(sample) => {
                    let errors = got.profile.add(sample, &mut symbolizer);
                    if args.errors {
                        print_errors(errors, sample.pid, sample.tid, &sample.comm, sample.ts_ns, "cpu");
                    }
                }
                Event::Trigger(_) => got.triggers += 1,
                Event::Mapping(mapping) => symbolizer.learn_mapping(mapping),
                Event::Offcpu(sleep) => {
                    if let Some(off) = &mut got.off_cpu {
                        let errors = off.add_off_cpu(sleep, &mut symbolizer);
                        if args.errors {
                            print_errors(errors, sleep.pid, sleep.tid, &sleep.comm, sleep.ts_ns, "off-cpu");
                        }
                    }
                }
                Event::Capture(c) => print_capture(c),
                Event::Lost(l) if matches!(l.kind, EventKind::Sample | EventKind::Offcpu) => {
                    if l.kind == EventKind::Sample {
                        got.lost += l.records;
                    }
                    if args.errors {
                        println!("{}", serde_json::json!({"type": "lost", "kind": l.kind, "records": l.records}));
                    }
                }
                _ => {}
            }
        }
    }
    (got, symbolizer.processes_held())
}

/// A sample's stack errors, one JSON line each on stdout.
fn print_errors(errors: SampleErrors, pid: u32, tid: u32, comm: &Comm, ts_ns: u64, profile: &str) {
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

/// A capture's start or stop, as one JSON line on stdout.
fn print_capture(c: &Capture<&[u8]>) {
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

/// Writes the folded stacks, the flamegraph and the pprof profile.
fn write_files(profile: &Profile, out: &std::path::Path, prefix: &str) -> std::io::Result<[PathBuf; 3]> {
    let write = |name: &str, f: &dyn Fn(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>| {
        let path = out.join(name);
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        f(&mut file)?;
        std::io::Write::flush(&mut file)?;
        Ok::<PathBuf, std::io::Error>(path)
    };
    // The CPU profile keeps its historical names; off-CPU's are offcpu.*.
    let (folded, svg, pprof) = match prefix {
        "profile" => ("profile.folded".to_string(), "flamegraph.svg".to_string(), "profile.pb.gz".to_string()),
        p => (format!("{p}.folded"), format!("{p}.svg"), format!("{p}.pb.gz")),
    };
    Ok([
        write(&folded, &|w| profile.write_folded(w))?,
        write(&svg, &|w| profile.write_flamegraph(w))?,
        write(&pprof, &|w| profile.write_pprof(w))?,
    ])
}

fn main() -> ExitCode {
    // Before anything that takes time: a signal while starting stops cleanly.
    let stopper = tool::Stopper::install("profile");
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("profile: {msg}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = check_out_dir(&args.out) {
        eprintln!("profile: cannot write into --out {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    let config = Config::new().exec(false).exit(false).profile(args.profiler.clone());
    let tracer = match Tracer::start(&config) {
        Ok(tracer) => tracer,
        Err(e) => {
            eprintln!("profile: {e}");
            return ExitCode::FAILURE;
        }
    };
    let captures = if args.psi.is_empty() {
        None
    } else {
        match capture::start(tracer.targets(), args.psi.clone(), args.capture_window, args.watched.clone()) {
            Ok(captures) => Some(Arc::new(captures)),
            Err(e) => {
                eprintln!("profile: --psi: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    // Captures end before the tracer stops: their stops are in the stream.
    if let Some(captures) = &captures {
        let captures = captures.clone();
        stopper.before_stop(move || {
            captures.stop();
        });
    }
    stopper.arm(tracer.stop_handle());
    stopper.after(args.duration);
    let (got, held) = collect(&tracer, &args);
    let captures = captures.map(|c| c.stop());
    let stats = match tracer.stop() {
        Ok(stats) => stats,
        Err(e) => {
            eprintln!("profile: {e}");
            return ExitCode::FAILURE;
        }
    };
    let off_cpu = got.off_cpu.as_ref().map(|off| write_files(off, &args.out, "offcpu"));
    let written = match write_files(&got.profile, &args.out, "profile").and_then(|cpu| {
        let mut all = cpu.to_vec();
        if let Some(off) = off_cpu {
            all.extend(off?);
        }
        Ok(all)
    }) {
        Ok(paths) => paths,
        Err(e) => {
            eprintln!("profile: writing into {}: {e}", args.out.display());
            return ExitCode::FAILURE;
        }
    };
    let top: Vec<_> = got.profile.functions_by_self_samples().into_iter().take(10).collect();
    let summary = serde_json::json!({
        "type": "profile",
        "samples": got.profile.total_samples(),
        "hz": args.profiler.sampling_hz(),
        "triggers": got.triggers,
        "samples_lost": got.lost,
        "samples_without_data": stats.sample().data_lost,
        "kernel_stack_errors": stats.sample().counter("kernel_stack_errors"),
        "user_stack_errors": stats.sample().counter("user_stack_errors"),
        "stack_errors": errors_by_name(&got.profile),
        "off_cpu_stack_errors": got.off_cpu.as_ref().map(errors_by_name),
        "top_self": top,
        "off_cpu_sleeps": got.off_cpu.as_ref().map(|off| off.total_samples()),
        "off_cpu_sleeps_lost": got.off_cpu.as_ref().map(|_| stats.offcpu().meta_lost),
        "off_cpu_sleeps_untracked": got.off_cpu.as_ref().map(|_| stats.offcpu().counter("sleeps_untracked")),
        "captures": captures,
        "held": {
            "entries": got.profile.size().0,
            "stacks": got.profile.distinct_stacks(),
            "locations": got.profile.size().1,
            "processes": held,
        },
        "samples_of_stacks_not_kept": got.profile.stacks_not_kept(),
        "files": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    });
    println!("{summary}");
    ExitCode::SUCCESS
}

/// A profile's stack errors, `{"user_stack:EFAULT": N, ...}`.
fn errors_by_name(profile: &Profile) -> serde_json::Value {
    profile.stack_errors().into_iter().map(|(error, n)| (error.to_string(), serde_json::Value::from(n))).collect()
}
