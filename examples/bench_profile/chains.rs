//! The second table of `make bench-profile`: proctap's two unwinding modes
//! beside `perf record -g` and `perf record --call-graph dwarf`, on a
//! program whose call chains are known (tests/fixtures/unwind.c and its
//! library), built -O2 with frame pointers and without.
//!
//! Each run starts one worker per CPU (pinned) for a fixed time, with one
//! profiler at one frequency. perf attaches to the workers by pid just
//! after they start; proctap watches their command name, so the kernel adds
//! them at exec. What each profiler costs is read the same way for both:
//! the profiler process' CPU time while recording (for perf, `perf record`
//! as a waited-for child; for proctap, every thread of this process), plus
//! the CPU time of turning the recording into named stacks (`perf script`;
//! proctap's `Symbolizer` and `Profile`), plus, for proctap, its BPF
//! programs' run time from bpf_stats. perf's own in-kernel cost (the
//! sample interrupt, the 8 KiB stack copy) has no such counter without a
//! PMU: it is in neither column, so perf's share is a lower bound.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::bench_util::system::{children_ticks, clk_tck, prog_deltas, prog_snapshot, Result};
use super::bench_util::{self_cpu_ns, table};
use proctap::profile::{Profile, Symbolizer};
use proctap::{Config, Event, Profiler, Tracer, Unwind};

/// The fixture built one way: its program (whose name is its comm) and
/// what the build was.
pub struct Build {
    pub label: &'static str,
    pub exe: PathBuf,
}

/// Builds tests/fixtures/unwind.c and its library into `dir`, -O2, with
/// frame pointers (`fp`) or without.
pub fn build(dir: &Path, fp: bool) -> Result<Build> {
    let (label, name, flag) = if fp {
        ("-O2, frame pointers", "pt-chain-fp", "-fno-omit-frame-pointer")
    } else {
        ("-O2 -fomit-frame-pointer", "pt-chain-nofp", "-fomit-frame-pointer")
    };
    let out = dir.join(name);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let lib = out.join("libptunwind.so");
    let exe = out.join(name);
    let cc = |args: Vec<String>| -> Result<()> {
        let status = Command::new("cc").args(&args).status().map_err(|e| format!("cc: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("cc {args:?}: {status}"))
        }
    };
    let common = ["-O2", "-g", flag].map(String::from);
    let path = |p: &Path| p.display().to_string();
    cc([&common[..], &["-fPIC".into(), "-shared".into(), "-o".into(), path(&lib)]]
        .concat()
        .into_iter()
        .chain([path(&fixtures.join("unwind_lib.c"))])
        .collect())?;
    cc([&common[..], &["-o".into(), path(&exe), path(&fixtures.join("unwind.c"))]]
        .concat()
        .into_iter()
        .chain([format!("-L{}", out.display()), "-lptunwind".into(), format!("-Wl,-rpath,{}", out.display())])
        .collect())?;
    Ok(Build { label, exe })
}

#[derive(Clone, Copy, PartialEq)]
pub enum Who {
    PerfFp,
    PerfDwarf,
    Proctap(Unwind),
}

impl Who {
    pub const ALL: [Who; 4] =
        [Who::PerfFp, Who::PerfDwarf, Who::Proctap(Unwind::FramePointers), Who::Proctap(Unwind::StackCopy)];

    pub fn label(self) -> &'static str {
        match self {
            Who::PerfFp => "perf record -g",
            Who::PerfDwarf => "perf record --call-graph dwarf",
            Who::Proctap(Unwind::FramePointers) => "proctap --unwind fp",
            Who::Proctap(_) => "proctap --unwind copy (default)",
        }
    }
}

/// Samples whose innermost frame is a known leaf, and those of them with
/// the leaf's whole chain.
#[derive(Default, Clone, Copy)]
pub struct Chains {
    pub leaf: u64,
    pub whole: u64,
}

/// One profiler on one build, one run.
#[derive(Default, Clone, Copy)]
pub struct Outcome {
    pub samples: u64,
    pub chains: Chains,
    pub record_cpu_ns: u64,
    pub kernel_ns: u64,
    pub post_cpu_ns: u64,
    /// Bytes recorded: perf.data's size; proctap's sample records' stacks.
    pub bytes: u64,
    pub wall_ns: u64,
}

/// Whether an outermost-first chain of function names ending in a known
/// leaf is whole: the qsort comparator under libc's sort frames under
/// pt_sort_phase and main; the library's inner function under its callers
/// and main. (The leaf, whether whole.) The tests' criterion.
fn judge(frames: &[&str]) -> Option<bool> {
    let at = |name: &str| frames.iter().position(|f| *f == name);
    match *frames.last()? {
        "pt_cmp" => {
            Some(matches!((at("main"), at("pt_sort_phase")), (Some(m), Some(s)) if s == m + 1 && frames.len() >= s + 3))
        }
        "pt_lib_inner" => Some(frames.ends_with(&["main", "pt_lib_phase", "pt_lib_spin", "pt_lib_inner"])),
        _ => None,
    }
}

fn tally(chains: &mut Chains, frames: &[&str]) {
    if let Some(whole) = judge(frames) {
        chains.leaf += 1;
        chains.whole += u64::from(whole);
    }
}

fn workers(exe: &Path, cpus: usize, ms: u64) -> Result<Vec<Child>> {
    (0..cpus)
        .map(|cpu| {
            Command::new("taskset")
                .args(["-c", &cpu.to_string()])
                .arg(exe)
                .arg(ms.to_string())
                .stdin(Stdio::null())
                .spawn()
                .map_err(|e| format!("taskset {}: {e}", exe.display()))
        })
        .collect()
}

fn reap(children: Vec<Child>) -> Result<()> {
    for mut child in children {
        let status = child.wait().map_err(|e| format!("wait: {e}"))?;
        if !status.success() {
            return Err(format!("a worker failed: {status}"));
        }
    }
    Ok(())
}

/// One run of `who` on `build`: `cpus` workers for `ms` milliseconds at `hz`.
pub fn run(who: Who, build: &Build, hz: u32, cpus: usize, ms: u64, scratch: &Path) -> Result<Outcome> {
    match who {
        Who::PerfFp => perf(&["-g"], build, hz, cpus, ms, scratch),
        Who::PerfDwarf => perf(&["--call-graph", "dwarf"], build, hz, cpus, ms, scratch),
        Who::Proctap(unwind) => proctap(unwind, build, hz, cpus, ms),
    }
}

fn ticks_ns(ticks: u64, tck: u64) -> u64 {
    ticks * 1_000_000_000 / tck.max(1)
}

fn perf(call_graph: &[&str], build: &Build, hz: u32, cpus: usize, ms: u64, scratch: &Path) -> Result<Outcome> {
    let data = scratch.join("perf.data");
    let tck = clk_tck()?;
    let start = Instant::now();
    let kids = workers(&build.exe, cpus, ms)?;
    let pids: Vec<String> = kids.iter().map(|c| c.id().to_string()).collect();
    let ticks0 = children_ticks()?;
    // perf record ends when the processes it follows exit; they stay
    // unreaped (their CPU time is not counted as ours) until it has.
    let status = Command::new("perf")
        .args(["record", "-q", "-F", &hz.to_string(), "-o"])
        .arg(&data)
        .args(call_graph)
        .args(["-p", &pids.join(",")])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("perf record: {e}"))?;
    let ticks1 = children_ticks()?;
    let wall_ns = start.elapsed().as_nanos() as u64;
    reap(kids)?;
    if !status.success() {
        return Err(format!("perf record {call_graph:?}: {status}"));
    }
    let ticks2 = children_ticks()?;
    let script = Command::new("perf")
        .args(["script", "--no-inline", "-F", "comm,tid,ip,sym", "-i"])
        .arg(&data)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("perf script: {e}"))?;
    let ticks3 = children_ticks()?;
    let mut outcome = Outcome {
        record_cpu_ns: ticks_ns(ticks1 - ticks0, tck),
        post_cpu_ns: ticks_ns(ticks3 - ticks2, tck),
        bytes: std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0),
        wall_ns,
        ..Outcome::default()
    };
    let _ = std::fs::remove_file(&data);
    // Samples are blank-line separated: a header, then one frame per line,
    // innermost first, `ADDRESS SYMBOL`.
    for block in String::from_utf8_lossy(&script.stdout).split("\n\n") {
        let mut lines = block.lines().filter(|l| !l.trim().is_empty());
        if lines.next().is_none() {
            continue;
        }
        outcome.samples += 1;
        let mut frames: Vec<&str> = lines.map(|l| l.split_whitespace().nth(1).unwrap_or("[unknown]")).collect();
        frames.reverse();
        tally(&mut outcome.chains, &frames);
    }
    Ok(outcome)
}

fn proctap(unwind: Unwind, build: &Build, hz: u32, cpus: usize, ms: u64) -> Result<Outcome> {
    let comm: String =
        build.exe.file_name().map(|n| n.to_string_lossy().chars().take(15).collect()).unwrap_or_default();
    let profiler = Profiler::new().hz(hz).comm_prefix(comm.as_str()).unwind(unwind);
    let tracer = Tracer::start(&Config::new().exec(false).exit(false).profile(profiler))
        .map_err(|e| format!("proctap ({unwind:?}): {e}"))?;
    let ids: BTreeSet<u64> = tracer.prog_ids().into_iter().map(u64::from).collect();
    let (done, rx) = (Arc::new(AtomicBool::new(false)), tracer.events().clone());
    let consumer = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut events: Vec<Event> = Vec::new();
            loop {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(batch) => events.extend(batch.iter().map(|e| e.to_owned_event())),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) if !done.load(Ordering::Relaxed) => {}
                    Err(_) => break,
                }
            }
            events
        })
    };
    sleep(Duration::from_millis(200));
    let recorded: Result<(u64, u64, u64)> = (|| {
        let (progs0, cpu0, start) = (prog_snapshot(&ids)?, self_cpu_ns(), Instant::now());
        reap(workers(&build.exe, cpus, ms)?)?;
        let wall_ns = start.elapsed().as_nanos() as u64;
        sleep(Duration::from_millis(300)); // the last samples reach the consumer
        let (cpu1, progs1) = (self_cpu_ns(), prog_snapshot(&ids)?);
        let kernel_ns = prog_deltas(&progs0, &progs1).iter().map(|p| p.run_time_ns).sum();
        Ok((cpu1 - cpu0, kernel_ns, wall_ns))
    })();
    let stopped = tracer.stop().map_err(|e| format!("stop: {e}"));
    done.store(true, Ordering::Relaxed);
    let events = consumer.join().map_err(|_| "consumer thread panicked".to_string())?;
    stopped?;
    let (record_cpu_ns, kernel_ns, wall_ns) = recorded?;

    let post0 = self_cpu_ns();
    let (mut symbolizer, mut profile, mut bytes) = (Symbolizer::new(), Profile::new(hz), 0u64);
    for event in &events {
        match event {
            Event::Mapping(m) => symbolizer.learn_mapping(m),
            Event::Sample(s) if s.comm.as_bytes() == comm.as_bytes() => {
                bytes += (s.user_stack_copy.len() + s.user_stack.len() * 8 + s.kernel_stack.len() * 8) as u64;
                profile.add(s, &mut symbolizer);
            }
            _ => {}
        }
    }
    let mut folded = Vec::new();
    profile.write_folded(&mut folded).map_err(|e| format!("folded: {e}"))?;
    let post_cpu_ns = self_cpu_ns() - post0;
    let mut outcome = Outcome {
        samples: profile.total_samples(),
        record_cpu_ns,
        kernel_ns,
        post_cpu_ns,
        bytes,
        wall_ns,
        ..Outcome::default()
    };
    for line in String::from_utf8_lossy(&folded).lines() {
        let Some((stack, count)) = line.rsplit_once(' ') else { continue };
        let frames: Vec<&str> = stack.split(';').skip(1).filter(|f| !f.ends_with("_[k]")).collect();
        for _ in 0..count.parse::<u64>().unwrap_or(0) {
            tally(&mut outcome.chains, &frames);
        }
    }
    Ok(outcome)
}

/// The table: for each build and profiler, sums over the rounds.
pub fn report(builds: &[Build], runs: &[Vec<Vec<Outcome>>], cpus: usize) -> String {
    let header = [
        "build",
        "profiler",
        "samples",
        "whole chains (of samples in a known leaf)",
        "CPU share: recording + making stacks",
        "recording CPU µs per sample",
        "making stacks CPU µs per sample",
        "in-kernel ns per sample (bpf_stats)",
        "bytes recorded per sample",
    ];
    let mut rows = Vec::new();
    for (b, build) in builds.iter().enumerate() {
        for (w, who) in Who::ALL.iter().enumerate() {
            let all: Vec<Outcome> = runs.iter().map(|round| round[b][w]).collect();
            let sum = |f: fn(&Outcome) -> u64| all.iter().map(f).sum::<u64>();
            let (samples, leaf, whole) = (sum(|o| o.samples), sum(|o| o.chains.leaf), sum(|o| o.chains.whole));
            let per = |n: u64, scale: f64| {
                if samples == 0 {
                    "n/a".to_string()
                } else {
                    format!("{:.1}", n as f64 / scale / samples as f64)
                }
            };
            let cpu = sum(|o| o.record_cpu_ns) + sum(|o| o.kernel_ns) + sum(|o| o.post_cpu_ns);
            let capacity = sum(|o| o.wall_ns) as f64 * cpus as f64;
            rows.push(vec![
                build.label.to_string(),
                who.label().to_string(),
                samples.to_string(),
                if leaf == 0 {
                    "n/a".into()
                } else {
                    format!("{:.1} % ({whole} of {leaf})", whole as f64 * 100.0 / leaf as f64)
                },
                format!("{:.3} %", cpu as f64 / capacity * 100.0),
                per(sum(|o| o.record_cpu_ns), 1e3),
                per(sum(|o| o.post_cpu_ns), 1e3),
                if matches!(who, Who::Proctap(_)) { per(sum(|o| o.kernel_ns), 1.0) } else { "not measurable".into() },
                per(sum(|o| o.bytes), 1.0),
            ]);
        }
    }
    table(&header, &rows)
}
