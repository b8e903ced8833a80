//! `make bench-latency`: how long an exec event takes from its kernel
//! timestamp to the Rust consumer, at idle and during an exec storm, with
//! the default config and a low-latency one; and the tracer's CPU at idle.
//!
//!     bench_latency --child build/bench/pt-storm-child --storm build/bench/storm
//!         [--seconds 5]
//!
//! Latency of an event = `proctap::monotonic_ns()` when its batch reaches
//! the consumer - the event's `ts_ns` (both CLOCK_MONOTONIC). Idle: one
//! synthetic event (this process' getppid) or one exec every 20 ms, longer
//! than the default flush interval. Storm: the exec storm of `make
//! bench-exec` (16 × 64 B argv).
//! Prints a Markdown section on stdout, progress on stderr.

#[path = "bench_util/mod.rs"]
mod bench_util;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench_util::{machine, quantile, self_cpu_ns, table, today};
use proctap::{monotonic_ns, Config, Event, Profiler, SyntheticSource, SyntheticTransport, Tracer};

struct Args {
    child: String,
    storm: String,
    seconds: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { child: String::new(), storm: String::new(), seconds: 5 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--child" => a.child = val()?,
            "--storm" => a.storm = val()?,
            "--seconds" => a.seconds = val()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if a.child.is_empty() || a.storm.is_empty() {
        return Err("--child and --storm are required (make bench-latency builds them)".into());
    }
    Ok(a)
}

#[derive(Clone, Copy, PartialEq)]
enum Load {
    Idle,
    IdleSyscall,
    Storm,
}

/// Runs the load for `seconds`, then stops the tracer.
fn load(
    args: &Args,
    load: Load,
    stop: proctap::StopHandle,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<(), String>> {
    let (child, storm, seconds) = (args.child.clone(), args.storm.clone(), args.seconds);
    std::thread::spawn(move || {
        let result = match load {
            Load::Idle => {
                let end = Instant::now() + Duration::from_secs(seconds);
                let mut r = Ok(());
                while Instant::now() < end {
                    if let Err(e) = Command::new(&child).status() {
                        r = Err(format!("running {child}: {e}"));
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(IDLE_GAP_MS));
                }
                r
            }
            Load::IdleSyscall => {
                let end = Instant::now() + Duration::from_secs(seconds);
                while Instant::now() < end {
                    std::hint::black_box(std::os::unix::process::parent_id());
                    std::thread::sleep(Duration::from_millis(IDLE_GAP_MS));
                }
                Ok(())
            }
            Load::Storm => Command::new(&storm)
                .args(["--seconds", &seconds.to_string(), "--child", &child, "--nargs", "16", "--arglen", "64"])
                .stdout(Stdio::null())
                .status()
                .map_err(|e| format!("running {storm}: {e}"))
                .and_then(|s| if s.success() { Ok(()) } else { Err(format!("{storm}: {s}")) }),
        };
        std::thread::sleep(Duration::from_millis(100));
        done.store(true, Ordering::Release);
        stop.stop();
        result
    })
}

/// How the benchmark consumes batches.
#[derive(Clone, Copy, PartialEq)]
enum Consumer {
    /// Blocks on the channel.
    Block,
    /// Spins on the channel's `try_recv`.
    Spin,
    /// A handler on the poll thread (`Tracer::start_with_handler`).
    Handler,
}

/// Latency (ns) of each benchmark event in `batch`, received at `now`.
fn record(lat: &mut Vec<u64>, now: u64, batch: &proctap::Batch) {
    for event in batch {
        match event {
            Event::Exec(e) if e.comm.as_bytes() == b"pt-storm-child" => lat.push(now.saturating_sub(e.ts_ns)),
            Event::Synthetic(s) => lat.push(now.saturating_sub(s.ts_ns)),
            _ => {}
        }
    }
}

/// Latencies (ns) of the load's events, sorted.
fn measure(
    args: &Args,
    config: &Config,
    consumer: Consumer,
    which: Load,
) -> Result<(Vec<u64>, proctap::Stats), String> {
    let from_handler = Arc::new(Mutex::new(Vec::new()));
    let tracer = match consumer {
        Consumer::Handler => {
            let lat = from_handler.clone();
            Tracer::start_with_handler(config, move |batch| {
                let now = monotonic_ns();
                record(&mut lat.lock().unwrap(), now, &batch);
            })
        }
        Consumer::Block | Consumer::Spin => Tracer::start(config),
    }
    .map_err(|e| format!("starting the tracer: {e}"))?;
    let done = Arc::new(AtomicBool::new(false));
    let loader = load(args, which, tracer.stop_handle(), done.clone());
    let mut lat = Vec::new();
    match consumer {
        Consumer::Spin => loop {
            match tracer.events().try_recv() {
                Ok(batch) => record(&mut lat, monotonic_ns(), &batch),
                Err(crossbeam_channel::TryRecvError::Empty) => std::hint::spin_loop(),
                Err(crossbeam_channel::TryRecvError::Disconnected) => break,
            }
        },
        Consumer::Block => {
            for batch in tracer.events().clone() {
                record(&mut lat, monotonic_ns(), &batch);
            }
        }
        Consumer::Handler => {}
    }
    loader.join().map_err(|_| "load thread panicked")??;
    let stats = tracer.stop().map_err(|e| e.to_string())?;
    lat.append(&mut from_handler.lock().unwrap());
    lat.sort_unstable();
    Ok((lat, stats))
}

/// The CPU share (of one CPU) of the tracer and its consumer over `seconds`
/// with nothing to trace but the machine's own background.
fn idle_cpu(config: &Config, consumer: Consumer, seconds: u64) -> Result<f64, String> {
    let tracer = match consumer {
        Consumer::Handler => Tracer::start_with_handler(config, |batch| drop(std::hint::black_box(batch))),
        Consumer::Block | Consumer::Spin => Tracer::start(config),
    }
    .map_err(|e| format!("starting the tracer: {e}"))?;
    let events = tracer.events().clone();
    let reader = std::thread::spawn(move || match consumer {
        Consumer::Spin => loop {
            match events.try_recv() {
                Ok(batch) => drop(batch),
                Err(crossbeam_channel::TryRecvError::Empty) => std::hint::spin_loop(),
                Err(crossbeam_channel::TryRecvError::Disconnected) => break,
            }
        },
        Consumer::Block | Consumer::Handler => events.iter().for_each(drop),
    });
    std::thread::sleep(Duration::from_millis(200));
    let (cpu0, t0) = (self_cpu_ns(), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    let share = (self_cpu_ns() - cpu0) as f64 / t0.elapsed().as_nanos() as f64;
    tracer.stop_handle().stop();
    let _ = reader.join();
    tracer.stop().map_err(|e| e.to_string())?;
    Ok(share)
}

/// Time between two execs at idle: longer than the default flush interval,
/// so each event finds the poll thread asleep.
const IDLE_GAP_MS: u64 = 20;

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_latency: {e}");
            std::process::exit(2);
        }
    };
    // Every config also carries the synthetic source, triggered by this
    // process' getppid() (only the idle-syscall load calls it).
    let synthetic = SyntheticSource {
        pid: std::process::id(),
        payload_bytes: 64,
        events_per_trigger: 1,
        transport: SyntheticTransport::Hybrid,
        ring_bytes: 0,
    };
    let low_latency = Config::new().synthetic(synthetic).busy_poll(true).flush_interval(Duration::from_micros(50));
    let configs = [
        ("default", Config::new().synthetic(synthetic), Consumer::Block),
        ("low-latency, channel", low_latency.clone(), Consumer::Spin),
        ("low-latency, handler", low_latency, Consumer::Handler),
    ];
    let mut rows = Vec::new();
    for (load_name, which) in [
        ("idle: 1 synthetic event / 20 ms", Load::IdleSyscall),
        ("idle: 1 exec / 20 ms", Load::Idle),
        ("exec storm", Load::Storm),
    ] {
        for (name, config, consumer) in &configs {
            eprintln!("bench_latency: {name}, {load_name}, {} s", args.seconds);
            let (lat, stats) = match measure(&args, config, *consumer, which) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("bench_latency: {e}");
                    std::process::exit(1);
                }
            };
            eprintln!("  {} samples; lost {}", lat.len(), stats.reserve_failures() + stats.dropped_data());
            rows.push(vec![
                load_name.to_string(),
                name.to_string(),
                lat.len().to_string(),
                us(quantile(&lat, 0.5)),
                us(quantile(&lat, 0.99)),
                us(lat.last().copied().unwrap_or(0)),
                stats.wakeups.to_string(),
                stats.sleeps.to_string(),
            ]);
        }
    }
    let idle_seconds = 10;
    let mut cpu_rows = Vec::new();
    let profiling = ("default + profiler, no targets", Config::new().profile(Profiler::new()), Consumer::Block);
    for (name, config, consumer) in configs.iter().chain([&profiling]) {
        eprintln!("bench_latency: idle CPU, {name}, {idle_seconds} s");
        match idle_cpu(config, *consumer, idle_seconds) {
            Ok(share) => cpu_rows.push(vec![name.to_string(), format!("{:.3} %", share * 100.0)]),
            Err(e) => {
                eprintln!("bench_latency: {e}");
                std::process::exit(1);
            }
        }
    }

    println!("## Latency: kernel timestamp to the Rust consumer\n");
    println!("`make bench-latency` · {} · {}\n", machine(), today());
    println!(
        "Latency = `proctap::monotonic_ns()` when the event's batch reaches the consumer − the \
         event's kernel `ts_ns`. Events: the synthetic source (a getppid() of this process, \
         which then sleeps) or exec events of a tiny static program. Default config: the poll \
         thread sleeps until a doorbell wakes it, the consumer blocks on the channel. \
         Low-latency: `Config::busy_poll(true)`, 50 µs flush interval; either the consumer \
         spins on the channel's `try_recv` (two threads spinning: both of this machine's CPUs \
         busy), or `Tracer::start_with_handler` runs the consumer on the poll thread (one CPU \
         busy, no hand-off between threads).\n"
    );
    println!("{}", table(&["load", "config", "events", "p50 µs", "p99 µs", "max µs", "poll rounds", "sleeps"], &rows));
    println!("Tracer and consumer CPU with nothing to trace ({idle_seconds} s, all of this process' threads, /proc/self/task/*/schedstat; 100 % = one CPU). The poll thread's sleep is bounded at 1 s, at 100 ms with the profiler on (stack samples never wake it):\n");
    println!("{}", table(&["config", "CPU"], &cpu_rows));
}
