//! Network benchmark (`make bench-net`): what tracing a server's sockets
//! costs it, what it costs processes that are not traced, and what is lost.
//!
//!     bench_net --dump target/release/examples/dump --netstorm build/bench/pt-netstorm [--seconds 5]
//!
//! Run as root. Each workload runs in three modes, back to back, in each of
//! three rounds: no tracer;
//! proctap's `dump --net` tracing the server (net_data with the default
//! 16 KiB capture, L7 records); `dump --net` running with every process
//! filtered out. The workloads are nginx under wrk, and redis-server under
//! redis-benchmark at -P 1 and -P 16, each server started here on loopback
//! and stopped after. Then the socket storm (pt-netstorm, one thread)
//! measures per syscall: the in-kernel cost of a traced message at 64 B,
//! 1 KiB and 16 KiB (bpf_stats), and the time added to the syscalls of a
//! process that is not traced (rounds of no tracer and filtered out, back to
//! back). A Markdown section goes to stdout; every
//! number in it is measured in this run, nothing is asserted.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

#[path = "../bench_util/mod.rs"]
mod bench_util;

use bench_util::output::final_stats;
use bench_util::system::{
    bpf_progs, is_root, load_average, pdeathsig_available, prog_deltas, prog_snapshot, run_output, BpfStats, Result,
};
use bench_util::tracer::{wait_attached, TracerProc};

const USAGE: &str = "usage: bench_net --dump PATH --netstorm PATH [--seconds S]";
/// A command-name prefix no process has: the tracer runs, everything is
/// filtered out.
const NOBODY: &str = "pt-nomatch";
/// Rounds of each workload (no tracer, traced, filtered out).
const WORKLOAD_ROUNDS: usize = 3;

/// The body nginx answers every request with.
const BODY_BYTES: usize = 1024;

struct Options {
    dump: PathBuf,
    netstorm: PathBuf,
    seconds: u64,
}

fn parse() -> Result<Options> {
    let mut args = std::env::args().skip(1);
    let (mut dump, mut netstorm, mut seconds) = (None, None, 5);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--dump" => dump = Some(PathBuf::from(value()?)),
            "--netstorm" => netstorm = Some(PathBuf::from(value()?)),
            "--seconds" => {
                seconds = value()?.parse().map_err(|_| "--seconds: a whole number".to_string())?;
                if seconds == 0 {
                    return Err("--seconds must be positive".into());
                }
            }
            _ => return Err(format!("unknown option {arg}\n{USAGE}")),
        }
    }
    Ok(Options {
        dump: dump.ok_or(format!("--dump is required\n{USAGE}"))?,
        netstorm: netstorm.ok_or(format!("--netstorm is required\n{USAGE}"))?,
        seconds,
    })
}

// ---- servers ----------------------------------------------------------------

/// A server started here, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Server {
    /// SIGTERM first: nginx's master stops its workers (a SIGKILL would
    /// leave them running); SIGKILL if it has not exited within 5 s.
    fn drop(&mut self) {
        let _ = run_output("kill", &["-TERM", &self.child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Waits until the server accepts connections.
fn wait_listening(server: &mut Server, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err() {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("{name} exited at start ({status})"));
        }
        if Instant::now() > deadline {
            return Err(format!("{name} did not listen on 127.0.0.1:{} within 10 s", server.port));
        }
        sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// nginx, one worker, answering every request with BODY_BYTES.
fn start_nginx() -> Result<Server> {
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("proctap-bench-nginx-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let conf = format!(
        "user root; worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{ access_log off; server {{ listen 127.0.0.1:{port}; \
         location / {{ return 200 \"{body}\"; }} }} }}\n",
        d = dir.display(),
        body = "x".repeat(BODY_BYTES)
    );
    fs::write(dir.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let mut server = Server { child, port, dir };
    wait_listening(&mut server, "nginx")?;
    Ok(server)
}

fn start_redis() -> Result<Server> {
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("proctap-bench-redis-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    let mut server = Server { child, port, dir };
    wait_listening(&mut server, "redis-server")?;
    Ok(server)
}

// ---- workloads --------------------------------------------------------------

#[derive(Clone, Copy)]
enum Workload {
    Nginx,
    Redis { pipeline: u32 },
}

impl Workload {
    fn label(self) -> String {
        match self {
            Workload::Nginx => format!("nginx, wrk -t1 -c16 ({BODY_BYTES} B bodies)"),
            Workload::Redis { pipeline } => format!("redis-server, redis-benchmark -t set,get -P {pipeline}"),
        }
    }

    /// The server's command name, which the traced mode filters on.
    fn comm(self) -> &'static str {
        match self {
            Workload::Nginx => "nginx",
            Workload::Redis { .. } => "redis-server",
        }
    }

    fn start(self) -> Result<Server> {
        match self {
            Workload::Nginx => start_nginx(),
            Workload::Redis { .. } => start_redis(),
        }
    }

    /// Requests per second the client reached.
    fn drive(self, port: u16, seconds: u64) -> Result<f64> {
        match self {
            Workload::Nginx => {
                let url = format!("http://127.0.0.1:{port}/");
                let out = run_output("wrk", &["-t1", "-c16", &format!("-d{seconds}s"), &url])?;
                out.lines()
                    .find_map(|l| l.strip_prefix("Requests/sec:"))
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or(format!("wrk printed no Requests/sec: {out}"))
            }
            Workload::Redis { pipeline } => {
                // About `seconds` of work at this machine's usual rates.
                let n = seconds * if pipeline > 1 { 400_000 } else { 40_000 };
                let out = run_output(
                    "redis-benchmark",
                    &[
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &port.to_string(),
                        "-t",
                        "set,get",
                        "-n",
                        &n.to_string(),
                        "-P",
                        &pipeline.to_string(),
                        "--csv",
                    ],
                )?;
                // "SET","81234.56",... per test: the mean of the tests' rates.
                let rates: Vec<f64> = out
                    .lines()
                    .filter_map(|l| l.split(',').nth(1))
                    .filter_map(|v| v.trim_matches('"').parse().ok())
                    .collect();
                if rates.is_empty() {
                    return Err(format!("redis-benchmark printed no rates: {out}"));
                }
                Ok(rates.iter().sum::<f64>() / rates.len() as f64)
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    NoTracer,
    Traced,
    FilteredOut,
}

/// One run's results.
#[derive(Default)]
struct Run {
    rps: f64,
    /// In-kernel ns per message of the socket programs, and messages.
    ns_per_message: Option<f64>,
    messages: u64,
    l7_records: u64,
    /// net_data events emitted, and lost (metadata or data).
    events: u64,
    events_lost: u64,
    bytes: u64,
    bytes_lost_events: u64,
}

fn start_tracer(opts: &Options, label: &str, args: &[&str]) -> Result<(TracerProc, BTreeSet<u64>)> {
    let before: BTreeSet<u64> = bpf_progs()?.into_iter().map(|p| p.id).collect();
    let mut tracer = TracerProc::spawn(label, &opts.dump, args, pdeathsig_available())?;
    let ids = wait_attached(&mut tracer, &before)?;
    Ok((tracer, ids))
}

/// ns per run and runs of the socket programs between two snapshots.
fn socket_program_cost(before: &[bench_util::system::Prog], after: &[bench_util::system::Prog]) -> (Option<f64>, u64) {
    let deltas = prog_deltas(before, after);
    let socket = deltas.iter().filter(|p| p.name.starts_with("pt_sock_sent") || p.name.starts_with("pt_sock_receiv"));
    let (ns, runs) = socket.fold((0, 0), |(ns, runs), p| (ns + p.run_time_ns, runs + p.run_cnt));
    ((runs > 0).then(|| ns as f64 / runs as f64), runs)
}

/// The net counters of dump's final stats line.
fn net_losses(stderr: &str, run: &mut Run) {
    let Some(stats) = final_stats(stderr) else { return };
    let kind = &stats["detail"]["net_data"];
    let n = |k: &str| kind[k].as_u64().unwrap_or(0);
    run.events = n("emitted");
    run.events_lost = n("meta_lost") + n("data_lost");
    run.bytes = n("data_bytes");
    run.bytes_lost_events = n("data_lost");
}

fn run_workload(opts: &Options, workload: Workload, mode: Mode) -> Result<Run> {
    let mut server = workload.start()?;
    let mut run = Run::default();
    // Only the traced runs count program time: bpf_stats' clock reads
    // would add to every socket call of the others.
    let _stats = if mode == Mode::Traced { BpfStats::enable()? } else { BpfStats::disable()? };
    let comm = match mode {
        Mode::Traced => Some(workload.comm()),
        Mode::FilteredOut => Some(NOBODY),
        Mode::NoTracer => None,
    };
    let tracer = match comm {
        Some(comm) => Some(start_tracer(opts, "net", &["--net", "--comm", comm])?),
        None => None,
    };
    let before = match &tracer {
        Some((_, ids)) => prog_snapshot(ids)?,
        None => Vec::new(),
    };
    run.rps = workload.drive(server.port, opts.seconds)?;
    if let Some((mut tracer, ids)) = tracer {
        (run.ns_per_message, run.messages) = socket_program_cost(&before, &prog_snapshot(&ids)?);
        tracer.interrupt(Duration::from_secs(30))?;
        net_losses(&tracer.stderr_text(), &mut run);
        let out = fs::read_to_string(tracer.out_path()).unwrap_or_default();
        run.l7_records = out.lines().filter(|l| l.starts_with("{\"type\":\"l7\"")).count() as u64;
    }
    server.child.try_wait().map_err(|e| e.to_string())?;
    Ok(run)
}

// ---- the socket storm -------------------------------------------------------

/// Rounds of the untracked-process comparison.
const UNTRACKED_ROUNDS: usize = 5;

/// ns per syscall of pt-netstorm in this mode and size.
fn storm(opts: &Options, mode: &str, size: u32, seconds: u64) -> Result<f64> {
    let out = run_output(
        opts.netstorm.to_str().ok_or("--netstorm: not UTF-8")?,
        &["--mode", mode, "--size", &size.to_string(), "--seconds", &seconds.to_string()],
    )?;
    let v: serde_json::Value = serde_json::from_str(out.trim()).map_err(|e| format!("pt-netstorm: {e}: {out}"))?;
    v["ns_per_syscall"].as_f64().ok_or(format!("pt-netstorm: no ns_per_syscall: {out}"))
}

/// What a tracer that filters pt-netstorm out costs its syscalls.
struct Untracked {
    none: f64,
    filtered: f64,
    /// The median of the rounds' differences.
    added: f64,
    added_range: (f64, f64),
    /// The socket programs' own ns per run for the filtered-out process
    /// (bpf_stats, in a run of its own).
    kernel_ns: Option<f64>,
}

/// Rounds of no tracer then filtered out, back to back: each round's
/// difference is taken within the round, so the VM's drift over the
/// minutes of the benchmark cancels, and the median over rounds is given.
fn untracked(opts: &Options, mode: &str, size: u32, seconds: u64) -> Result<Untracked> {
    let no_stats = BpfStats::disable()?;
    let (mut nones, mut filtereds, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..UNTRACKED_ROUNDS {
        let none = storm(opts, mode, size, seconds)?;
        let (mut tracer, _) = start_tracer(opts, "filtered", &["--net-raw", "--comm", NOBODY])?;
        let filtered = storm(opts, mode, size, seconds)?;
        tracer.interrupt(Duration::from_secs(30))?;
        nones.push(none);
        filtereds.push(filtered);
        added.push(filtered - none);
    }
    drop(no_stats);
    let kernel_ns = {
        let _stats = BpfStats::enable()?;
        let (mut tracer, ids) = start_tracer(opts, "filtered", &["--net-raw", "--comm", NOBODY])?;
        let snap = prog_snapshot(&ids)?;
        storm(opts, mode, size, seconds)?;
        let (ns, _) = socket_program_cost(&snap, &prog_snapshot(&ids)?);
        tracer.interrupt(Duration::from_secs(30))?;
        ns
    };
    let lo = added.iter().copied().fold(f64::MAX, f64::min);
    let hi = added.iter().copied().fold(f64::MIN, f64::max);
    Ok(Untracked {
        none: bench_util::median(nones),
        filtered: bench_util::median(filtereds),
        added: bench_util::median(added),
        added_range: (lo, hi),
        kernel_ns,
    })
}

fn storm_section(opts: &Options, md: &mut String) -> Result<()> {
    let secs = opts.seconds.div_ceil(3).max(1);
    let cases: [(&str, u32); 5] = [("getppid", 64), ("udp", 64), ("tcp", 64), ("tcp", 1024), ("tcp", 16384)];
    let mut rows = Vec::new();
    for (mode, size) in cases {
        eprintln!("storm {mode} {size}: no tracer and filtered out ({UNTRACKED_ROUNDS} rounds), traced");
        let u = untracked(opts, mode, size, secs)?;
        // Raw mode (bytes copied whatever they are), output discarded.
        let stats = BpfStats::enable()?;
        let before: BTreeSet<u64> = bpf_progs()?.into_iter().map(|p| p.id).collect();
        let mut traced = TracerProc::spawn_discarding(
            "traced",
            &opts.dump,
            &["--net-raw", "--comm", "pt-netstorm"],
            pdeathsig_available(),
        )?;
        let ids = wait_attached(&mut traced, &before)?;
        let snap = prog_snapshot(&ids)?;
        let traced_ns = storm(opts, mode, size, secs)?;
        let (kernel_ns, _) = socket_program_cost(&snap, &prog_snapshot(&ids)?);
        traced.interrupt(Duration::from_secs(60))?;
        drop(stats);
        let mut lost = Run::default();
        net_losses(&traced.stderr_text(), &mut lost);
        let ns = |n: Option<f64>| n.map_or("-".into(), |n| format!("{n:.0}"));
        rows.push(vec![
            format!("{mode} {}", if mode == "getppid" { String::new() } else { format!("{size} B") }),
            format!("{:.0}", u.none),
            format!("{:.0}", u.filtered),
            format!("{:+.0} [{:+.0}, {:+.0}]", u.added, u.added_range.0, u.added_range.1),
            ns(u.kernel_ns),
            format!("{traced_ns:.0} ({:+.0})", traced_ns - u.none),
            ns(kernel_ns),
            format!("{} of {}", lost.events_lost, lost.events),
        ]);
    }
    writeln!(md, "\nPer syscall, pt-netstorm (one thread on CPU 0; udp and tcp: write then read of SIZE bytes on a loopback pair), ns per syscall. No tracer and filtered out (`dump --net-raw --comm {NOBODY}`) run back to back in each of {UNTRACKED_ROUNDS} rounds of {secs} s: their medians, and the median of the rounds' differences with the lowest and highest. \"In-kernel\" is bpf_stats' run_time_ns / run_cnt of the two socket programs, in runs of their own (its clock reads add to every program run): for the filtered-out process, the programs' own share of what it pays; for the traced one, the cost of a reported message. Traced (raw): `dump --net-raw --comm pt-netstorm`, output discarded, in brackets added to no tracer.\n").unwrap();
    md.push_str(&bench_util::table(
        &[
            "syscalls",
            "no tracer",
            "filtered out",
            "added, filtered out",
            "in-kernel ns, filtered out",
            "traced (raw)",
            "in-kernel ns / message, traced",
            "net_data lost",
        ],
        &rows,
    ));
    Ok(())
}

// ---- the report -------------------------------------------------------------

fn ratio(v: f64, base: f64) -> String {
    format!("{:.0} ({:.3}×)", v, v / base)
}

fn run(opts: &Options) -> Result<String> {
    if !is_root()? {
        return Err("run as root (the tracer loads BPF programs)".into());
    }
    let mut md = String::new();
    writeln!(md, "## Network: servers traced, untracked processes, loss (`make bench-net`)\n").unwrap();
    writeln!(
        md,
        "{} · {} · {} s per run · load before: {}\n",
        bench_util::today(),
        bench_util::machine(),
        opts.seconds,
        load_average()
    )
    .unwrap();
    let mut rows = Vec::new();
    for workload in [Workload::Nginx, Workload::Redis { pipeline: 1 }, Workload::Redis { pipeline: 16 }] {
        eprintln!("{}: no tracer, traced, filtered out ({WORKLOAD_ROUNDS} rounds)", workload.label());
        let mut rounds = Vec::new();
        for _ in 0..WORKLOAD_ROUNDS {
            let none = run_workload(opts, workload, Mode::NoTracer)?;
            let traced = run_workload(opts, workload, Mode::Traced)?;
            let filtered = run_workload(opts, workload, Mode::FilteredOut)?;
            rounds.push((none, traced, filtered));
        }
        // The round whose traced ratio is the median gives the details.
        rounds.sort_by(|a, b| (a.1.rps / a.0.rps).total_cmp(&(b.1.rps / b.0.rps)));
        let filtered_ratio = bench_util::median(rounds.iter().map(|r| r.2.rps / r.0.rps).collect());
        let (none, traced, _) = &rounds[rounds.len() / 2];
        rows.push(vec![
            workload.label(),
            format!("{:.0}", none.rps),
            ratio(traced.rps, none.rps),
            format!("{filtered_ratio:.3}×"),
            traced.ns_per_message.map_or("-".into(), |n| format!("{n:.0} ({} msgs)", traced.messages)),
            traced.l7_records.to_string(),
            format!("{} of {} ({} of them data)", traced.events_lost, traced.events, traced.bytes_lost_events),
            bench_util::si(traced.bytes as f64),
        ]);
    }
    writeln!(md, "Each workload runs {WORKLOAD_ROUNDS} rounds of no tracer, traced and filtered out, back to back; ratios are taken within a round. The row shows the round with the median traced ratio (its requests/s, and in brackets the ratio to no tracer); filtered out is the median of the rounds' ratios. Traced: `dump --net --comm SERVER` (net_data, 16 KiB capture, L7 records on stdout). Filtered out: `dump --net --comm {NOBODY}`. bpf_stats is on in the traced runs only, off in the others. The client, the server and the tracer share the machine's CPUs.\n").unwrap();
    md.push_str(&bench_util::table(
        &[
            "workload",
            "no tracer",
            "traced",
            "filtered out",
            "in-kernel ns / message",
            "L7 records",
            "net_data events lost",
            "bytes captured",
        ],
        &rows,
    ));
    storm_section(opts, &mut md)?;
    Ok(md)
}

fn main() -> ExitCode {
    bench_util::main("bench_net", parse, run)
}
