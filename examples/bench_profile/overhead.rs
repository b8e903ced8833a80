//! The overhead table: what profiling costs a CPU-bound workload, mode by
//! mode (frame pointers or stack copies, at each rate, and a pid filter no
//! process matches), in the workload's time, the profiler's CPU and the
//! BPF programs' run time.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

use crate::bench_util::system::{load_average, prog_deltas, prog_snapshot, Prog, Result};
use crate::bench_util::{machine, median, self_cpu_ns, table, today};
use crate::{Options, NO_MATCH};
use proctap::{Config, Event, Profiler, Tracer, Unwind};

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

/// What profiling costs the CPU-bound workload, mode by mode.
pub fn overhead_table(opts: &Options, cpus: usize, comm: &str) -> Result<String> {
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
