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
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_util::{machine, quantile, self_cpu_ns, table, today};
use proctap::{monotonic_ns, Config, Event, SyntheticSource, SyntheticTransport, Tracer};

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
fn load(args: &Args, load: Load, stop: proctap::StopHandle, done: Arc<AtomicBool>) -> std::thread::JoinHandle<Result<(), String>> {
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

/// Latencies (ns) of the child's exec events.
fn measure(args: &Args, config: &Config, spin: bool, which: Load) -> Result<(Vec<u64>, proctap::Stats), String> {
    let tracer = Tracer::start(config).map_err(|e| format!("starting the tracer: {e}"))?;
    let done = Arc::new(AtomicBool::new(false));
    let loader = load(args, which, tracer.stop_handle(), done.clone());
    let mut lat = Vec::new();
    let mut record = |batch: proctap::Batch| {
        let now = monotonic_ns();
        for event in &batch {
            match event {
                Event::Exec(e) if e.comm.as_bytes() == b"pt-storm-child" => lat.push(now.saturating_sub(e.ts_ns)),
                Event::Synthetic(s) => lat.push(now.saturating_sub(s.ts_ns)),
                _ => {}
            }
        }
    };
    if spin {
        loop {
            match tracer.events().try_recv() {
                Ok(batch) => record(batch),
                Err(crossbeam_channel::TryRecvError::Empty) => std::hint::spin_loop(),
                Err(crossbeam_channel::TryRecvError::Disconnected) => break,
            }
        }
    } else {
        for batch in tracer.events().clone() {
            record(batch);
        }
    }
    loader.join().map_err(|_| "load thread panicked")??;
    let stats = tracer.stop().map_err(|e| e.to_string())?;
    lat.sort_unstable();
    Ok((lat, stats))
}

/// The tracer's CPU share over `seconds` with nothing to trace but the
/// machine's own background.
fn idle_cpu(config: &Config, seconds: u64) -> Result<f64, String> {
    let tracer = Tracer::start(config).map_err(|e| format!("starting the tracer: {e}"))?;
    let events = tracer.events().clone();
    let consumer = std::thread::spawn(move || events.iter().count());
    std::thread::sleep(Duration::from_millis(200));
    let (cpu0, t0) = (self_cpu_ns(), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    let share = (self_cpu_ns() - cpu0) as f64 / t0.elapsed().as_nanos() as f64;
    tracer.stop_handle().stop();
    let _ = consumer.join();
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
    let configs = [
        ("default", Config::new().synthetic(synthetic), false),
        ("low-latency", Config::new().synthetic(synthetic).busy_poll(true).flush_interval(Duration::from_micros(50)), true),
    ];
    let mut rows = Vec::new();
    for (load_name, which) in [
        ("idle: 1 synthetic event / 20 ms", Load::IdleSyscall),
        ("idle: 1 exec / 20 ms", Load::Idle),
        ("exec storm", Load::Storm),
    ] {
        for (name, config, spin) in &configs {
            eprintln!("bench_latency: {name}, {load_name}, {} s", args.seconds);
            let (lat, stats) = match measure(&args, config, *spin, which) {
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
    for (name, config, _) in &configs {
        eprintln!("bench_latency: idle CPU, {name}, {idle_seconds} s");
        match idle_cpu(config, idle_seconds) {
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
         Low-latency: `Config::busy_poll(true)`, 50 µs flush interval, the consumer spins on \
         `try_recv` (both of this machine's CPUs kept busy).\n"
    );
    println!(
        "{}",
        table(&["load", "config", "events", "p50 µs", "p99 µs", "max µs", "poll rounds", "sleeps"], &rows)
    );
    println!("Tracer CPU with nothing to trace ({idle_seconds} s, all of this process' threads, /proc/self/task/*/schedstat):\n");
    println!("{}", table(&["config", "CPU"], &cpu_rows));
}
