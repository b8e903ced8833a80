//! `make bench-transport`: the same synthetic kernel source through three
//! transports, into one Rust consumer.
//!
//! A producer process pinned to one CPU calls getppid() in a loop; a BPF
//! program on that syscall, filtered to the producer's pid, emits
//! `--batch` events of each payload size per call through (a) proctap's data
//! pages + metadata ring, (b) one BPF ringbuf with the payload inline, (c) a
//! perf buffer. This process, pinned to another CPU, consumes them through
//! the same `Tracer` and checks each event: its per-CPU sequence number (gaps
//! are losses) and the sequence stamped in its payload (a mismatch would be a
//! record overwritten before it was read).
//!
//!     taskset -c 1 bench_transport [--seconds 3] [--batch 64]
//!         [--payloads 16,64,256,1024,4096] [--producer-cpu 0] [--runs 3]
//!
//! Prints a Markdown section on stdout, progress on stderr.

#[path = "bench_util/mod.rs"]
mod bench_util;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bench_util::{machine, self_cpu_ns, si, table, today};
use proctap::{Config, Event, SyntheticSource, SyntheticTransport, Tracer};

struct Args {
    seconds: f64,
    runs: usize,
    batch: u32,
    payloads: Vec<u32>,
    producer_cpu: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { seconds: 3.0, runs: 3, batch: 64, payloads: vec![16, 64, 256, 1024, 4096], producer_cpu: 0 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => a.seconds = val()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--runs" => a.runs = val()?.parse::<usize>().map_err(|e| format!("--runs: {e}"))?.max(1),
            "--batch" => a.batch = val()?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--producer-cpu" => a.producer_cpu = val()?.parse().map_err(|e| format!("--producer-cpu: {e}"))?,
            "--payloads" => {
                a.payloads = val()?
                    .split(',')
                    .map(|p| p.parse().map_err(|e| format!("--payloads: {p}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

/// The producer: waits for a line on stdin, then calls getppid() for the
/// given seconds and prints how many calls it made.
fn producer(seconds: f64) {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut calls = 0u64;
    while Instant::now() < end {
        for _ in 0..16 {
            std::hint::black_box(std::os::unix::process::parent_id());
        }
        calls += 16;
    }
    println!("{calls}");
}

struct Run {
    delivered: u64,
    bytes: u64,
    elapsed: f64,
    lost: u64,
    gaps: u64,
    corrupt: u64,
    emitted: u64,
    cpu_ns: u64,
    calls: u64,
}

fn run(args: &Args, transport: SyntheticTransport, payload: u32) -> Result<Run, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new("taskset")
        .args(["-c", &args.producer_cpu.to_string()])
        .arg(&exe)
        .args(["--produce", &args.seconds.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the producer (taskset from util-linux): {e}"))?;
    // taskset execs the producer in place: the pid stays the same.
    let pid = child.id();
    let config = Config::new()
        .exec(false)
        .exit(false)
        // 4 MiB for each transport on the producer's CPU: 2 MiB of metadata
        // ring + 2 MiB of data pages here, 4 MiB of ringbuf or perf buffer.
        .pages_per_cpu(512)
        .ringbuf_bytes(2 << 20)
        .synthetic(SyntheticSource {
            pid,
            payload_bytes: payload,
            events_per_trigger: args.batch,
            transport,
            ring_bytes: 4 << 20,
        })
        .batch_bytes(1 << 20);
    let tracer = match Tracer::start(&config) {
        Ok(t) => t,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("starting the tracer: {e}"));
        }
    };
    // A moment for the producer's exec (taskset -> bench) to finish.
    std::thread::sleep(Duration::from_millis(200));

    let cpu0 = self_cpu_ns();
    let start = Instant::now();
    let mut stdin = child.stdin.take().ok_or("producer stdin")?;
    writeln!(stdin, "go").map_err(|e| format!("starting the producer: {e}"))?;
    let stop = tracer.stop_handle();
    let mut stdout = child.stdout.take().ok_or("producer stdout")?;
    let waiter = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        let _ = child.wait();
        // The consumer's CPU up to the producer's end: once stopped, the
        // poll thread is gone, and with it its schedstat.
        let cpu1 = self_cpu_ns();
        stop.stop(); // detaches, then drains every emitted record
        (out.trim().parse::<u64>().unwrap_or(0), cpu1)
    });

    let (mut delivered, mut bytes, mut gaps, mut corrupt) = (0u64, 0u64, 0u64, 0u64);
    let mut next_seq: HashMap<u16, u64> = HashMap::new();
    for batch in tracer.events().clone() {
        for event in &batch {
            if let Event::Synthetic(s) = event {
                let expect = next_seq.entry(s.cpu).or_insert(0);
                gaps += s.seq.saturating_sub(*expect);
                *expect = s.seq + 1;
                // The stamped sequence on every event, the whole pattern on some.
                let stamped = s.payload.len() < 8 || s.payload[..8] == s.seq.to_ne_bytes();
                if !stamped || (s.seq % 1024 == 0 && !s.payload_intact()) {
                    corrupt += 1;
                }
                delivered += 1;
                bytes += s.payload.len() as u64;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (calls, cpu1) = waiter.join().map_err(|_| "producer waiter panicked")?;
    let cpu_ns = cpu1.saturating_sub(cpu0);
    let stats = tracer.stop().map_err(|e| e.to_string())?;
    let s = *stats.synthetic();
    eprintln!(
        "  loader: {} poll rounds, {} sleeps, {} doorbells ({} lost), {} batches, invalid {}, abandoned {}, undelivered {}",
        stats.wakeups, stats.sleeps, stats.doorbells, stats.doorbell_lost, stats.batches, stats.invalid, stats.abandoned, stats.undelivered
    );
    Ok(Run {
        delivered,
        bytes,
        elapsed,
        lost: s.meta_lost + s.data_lost,
        gaps,
        corrupt,
        emitted: s.emitted,
        cpu_ns,
        calls,
    })
}

fn main() {
    if let Some(i) = std::env::args().position(|a| a == "--produce") {
        let secs = std::env::args().nth(i + 1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
        producer(secs);
        return;
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_transport: {e}");
            std::process::exit(2);
        }
    };
    let transports = [
        ("proctap (data pages + meta ring)", SyntheticTransport::Hybrid),
        ("BPF ringbuf, payload inline", SyntheticTransport::Ringbuf),
        ("perf buffer, payload inline", SyntheticTransport::Perfbuf),
    ];
    let mut rows = Vec::new();
    for &payload in &args.payloads {
        for (name, transport) in transports {
            let mut runs = Vec::new();
            for i in 1..=args.runs {
                eprintln!("bench_transport: {name}, {payload} B payload, {} s, run {i}/{}", args.seconds, args.runs);
                let r = match run(&args, transport, payload) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("bench_transport: {e}");
                        std::process::exit(1);
                    }
                };
                eprintln!(
                    "  delivered {} in {:.2} s, lost {} (gaps {}), corrupt {}, emitted {}, {} syscalls",
                    r.delivered, r.elapsed, r.lost, r.gaps, r.corrupt, r.emitted, r.calls
                );
                runs.push(r);
            }
            // The run with the median delivered rate; the range shows the spread,
            // and corruption in any run shows.
            let rate = |r: &Run| r.delivered as f64 / r.elapsed;
            runs.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
            let spread = format!("{} – {}", si(rate(&runs[0])), si(rate(&runs[runs.len() - 1])));
            let corrupt: u64 = runs.iter().map(|r| r.corrupt).sum();
            let r = &runs[runs.len() / 2];
            let attempted = r.delivered + r.lost;
            rows.push(vec![
                format!("{payload} B"),
                name.to_string(),
                si(r.delivered as f64 / r.elapsed),
                spread,
                format!("{:.2}", r.bytes as f64 / r.elapsed / 1e9),
                format!("{:.2} %", 100.0 * r.lost as f64 / attempted.max(1) as f64),
                format!("{:.0}", r.cpu_ns as f64 / r.delivered.max(1) as f64),
                format!("{:.0} %", 100.0 * r.cpu_ns as f64 / 1e9 / r.elapsed),
                corrupt.to_string(),
            ]);
        }
    }
    println!("## Transport: one synthetic source, three transports, one Rust consumer\n");
    println!("`make bench-transport` · {} · {}\n", machine(), today());
    println!(
        "Producer pinned to CPU {}, calling getppid() in a loop; each call emits {} events \
         (bpf_loop) through the transport. Consumer: `proctap::Tracer` (C poll thread + Rust \
         iterator) pinned to the other CPU, checking every event's sequence and payload stamp. \
         Each transport has 4 MiB on the producer's CPU: proctap 2 MiB of metadata ring + 2 MiB of data pages; the peers 4 MiB of ring.\n",
        args.producer_cpu, args.batch
    );
    println!(
        "{}",
        table(
            &[
                "payload",
                "transport",
                "events/s delivered",
                "events/s, all runs",
                "payload GB/s",
                "lost",
                "consumer ns/event",
                "consumer CPU",
                "corrupt"
            ],
            &rows
        )
    );
    println!(
        "Each row is the median of {} runs of {} s by events/s delivered (the range across runs \
         beside it); corrupt sums all runs. \
         Events/s and GB/s: events (payload bytes) the Rust consumer received / time from start \
         to the last one. Lost: counted by the kernel side (ring or data pages full) as a share \
         of attempts; the consumer's sequence-gap count agrees with it (progress log). Consumer \
         ns/event: CPU time of all consumer threads, the C poll thread included \
         (/proc/self/task/*/schedstat, until the producer ends) / events.",
        args.runs, args.seconds
    );
}
