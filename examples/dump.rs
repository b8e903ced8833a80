//! JSON-lines dumper: one object per event on stdout, flushed per batch;
//! final stats as one JSON line on stderr, every loss counter at its top
//! level.
//!
//!     cargo run --release --example dump -- [--duration SECONDS] [--pid PID]...
//!         [--comm PREFIX] [--cgroup DIR]... [--argv-max BYTES] [--thread-exits] [--fork] [--failed-execs] [--files]
//!         [--stdio] [--capture-fd FD]... [--write-max BYTES] [--oom] [--tracepoint CATEGORY:NAME]...
//!         [--net-raw] [--net] [--containers] [--exec-ids] [--ancestors]
//!
//! --containers adds to each event that has a cgroup id its cgroup's path
//! and the container id and pod UID that path names (`"cgroup"`,
//! `"container_id"`, `"pod_uid"`, null when it names none).
//!
//! --exec-ids adds to each event of a process its `"exec_id"` and
//! `"parent_exec_id"` (proctap::process); --ancestors also its `"parent"`
//! and `"ancestors"` objects. Both follow forks (fork events are traced,
//! and printed only with --fork).
//!
//! It stops on SIGINT, SIGTERM or after --duration (0: load, attach and stop
//! at once), and always prints the stats. Exit status: 0; 1 when tracing or
//! writing stdout failed; 2 for a usage or config mistake.

mod tool;

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::time::Duration;

use proctap::{Config, Error, Event, EventKind, Stats, Tracer};

/// The final stats line: the C example's keys, then every counter.
#[derive(serde::Serialize)]
struct StatsLine {
    #[serde(rename = "type")]
    kind: &'static str,
    events: u64,
    exec: u64,
    exit: u64,
    reserve_failures: u64,
    dropped_data: u64,
    invalid: u64,
    oversize: u64,
    abandoned: u64,
    undelivered: u64,
    ring_stalls: u64,
    missed_runs: u64,
    argv_truncated: u64,
    argv_fault: u64,
    /// With --net: what the L7 tracker could not keep or pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    l7_evicted: Option<proctap::l7::Evictions>,
    detail: Stats,
}

impl StatsLine {
    fn new(stats: Stats, l7_evicted: Option<proctap::l7::Evictions>) -> StatsLine {
        StatsLine {
            kind: "stats",
            events: stats.events(),
            exec: stats.exec().delivered,
            exit: stats.exit().delivered,
            reserve_failures: stats.reserve_failures(),
            dropped_data: stats.dropped_data(),
            invalid: stats.invalid,
            oversize: stats.oversize,
            abandoned: stats.abandoned,
            undelivered: stats.undelivered,
            ring_stalls: stats.ring_stalls,
            missed_runs: stats.missed_runs,
            argv_truncated: stats.exec().counter("argv_truncated").unwrap_or(0),
            argv_fault: stats.exec().counter("argv_fault").unwrap_or(0),
            l7_evicted,
            detail: stats,
        }
    }
}

const USAGE: &str =
    "usage: dump [--duration SECONDS] [--pid PID]... [--comm PREFIX] [--cgroup DIR]... [--argv-max BYTES] [--thread-exits] [--fork] \
                     [--failed-execs] [--files] [--stdio] [--capture-fd FD]... [--write-max BYTES] \
                     [--oom] [--tracepoint CATEGORY:NAME]... [--net-raw] [--net] [--containers] [--exec-ids] [--ancestors]";

/// What to print besides the events.
#[derive(Default)]
struct Output {
    /// L7 records (--net) instead of the connection events they come from
    /// (unless --net-raw asks for those too).
    l7: bool,
    raw_net: bool,
    /// Cgroup paths and container ids (--containers).
    containers: Option<proctap::container::Cgroups>,
    /// Process identity (--exec-ids, --ancestors).
    processes: Option<proctap::process::ProcessTable>,
    ancestors: bool,
    /// Fork events are printed (--fork), not only fed to the table.
    forks: bool,
}

fn parse_args() -> Result<(Config, Option<Duration>, Output), String> {
    let mut config = Config::new();
    let mut duration = None;
    let mut output = Output::default();
    let mut args = tool::Args::new(USAGE);
    while let Some(arg) = args.next_option() {
        let arg = arg?;
        match arg.as_str() {
            "--duration" => duration = Some(args.seconds("--duration")?),
            "--pid" => config = config.pid(args.number("--pid")?),
            "--comm" => config = config.comm_prefix(args.value("--comm")?),
            "--cgroup" => config = config.cgroup(std::ffi::OsStr::from_bytes(&args.value("--cgroup")?)),
            "--argv-max" => config = config.argv_max(args.number("--argv-max")?),
            "--thread-exits" => config = config.thread_exits(true),
            "--fork" => {
                config = config.event(EventKind::Fork, true);
                output.forks = true;
            }
            "--exec-ids" | "--ancestors" => {
                output.ancestors |= arg == "--ancestors";
                if output.processes.is_none() {
                    // Before the tracer starts: no process falls between.
                    let table = proctap::process::ProcessTable::from_procfs().map_err(|e| format!("{arg}: {e}"))?;
                    output.processes = Some(table);
                }
            }
            "--failed-execs" => config = config.event(EventKind::ExecFailed, true),
            "--files" => config = config.event(EventKind::Open, true),
            "--stdio" => config = config.stdio(),
            "--capture-fd" => {
                let fd = args.number("--capture-fd")?;
                let fd = i32::try_from(fd).map_err(|_| format!("--capture-fd: {fd} is not a file descriptor"))?;
                config = config.capture_fd(fd);
            }
            "--oom" => config = config.event(EventKind::OomKill, true),
            "--net-raw" => {
                config = config.net_data();
                output.raw_net = true;
            }
            "--net" => {
                config = config.net_data();
                output.l7 = true;
            }
            "--tracepoint" => {
                let name = args.value("--tracepoint")?;
                config = config.tracepoint(&String::from_utf8_lossy(&name));
            }
            "--containers" => {
                let cgroups = proctap::container::Cgroups::open().map_err(|e| format!("--containers: {e}"))?;
                output.containers = Some(cgroups);
            }
            "--write-max" => config = config.write_max(args.number("--write-max")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if output.processes.is_some() {
        config = config.event(EventKind::Fork, true);
    }
    Ok((config, duration, output))
}

/// Prints every event (and L7 records); false when stdout failed (full, or
/// closed). Gives the L7 tracker's evictions with --net.
fn print_events(tracer: &Tracer, output: &mut Output) -> (bool, Option<proctap::l7::Evictions>) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut l7 = proctap::l7::Tracker::new();
    let mut records = Vec::new();
    // The channel closes once the tracer stopped and its last batch is read.
    for batch in tracer.events().clone() {
        let written = batch
            .iter()
            .try_for_each(|event| {
                let net = matches!(event, Event::ConnOpen(_) | Event::NetData(_) | Event::ConnClose(_));
                if net && output.l7 {
                    l7.feed(&event, &mut records);
                    for conn_id in l7.take_given_up() {
                        // Best effort: a failure costs only copies.
                        let _ = tracer.give_up_connection(conn_id);
                    }
                    for r in records.drain(..) {
                        serde_json::to_writer(&mut out, &r).map_err(std::io::Error::from)?;
                        out.write_all(b"\n")?;
                    }
                }
                if net && !output.raw_net {
                    return Ok(());
                }
                write_event(&mut out, &event, output)
            })
            .and_then(|()| out.flush());
        if let Err(err) = written {
            eprintln!("dump: writing stdout: {err}");
            tracer.stop_handle().stop(); // the stats still print
            return (false, output.l7.then(|| l7.evictions()));
        }
    }
    (true, output.l7.then(|| l7.evictions()))
}

/// One event's JSON line: the event's fields, then its process' identity
/// (--exec-ids, --ancestors) and its cgroup's (--containers). A fork event
/// only feeds the process table unless --fork asked for it.
fn write_event(out: &mut impl Write, event: &Event<&[u8]>, output: &mut Output) -> std::io::Result<()> {
    if matches!(event, Event::Fork(_)) && !output.forks {
        if let Some(table) = output.processes.as_mut() {
            table.observe(event);
        }
        return Ok(());
    }
    let mut line = serde_json::to_vec(event).map_err(std::io::Error::from)?;
    if let Some(table) = output.processes.as_mut() {
        if let Some(identity) = table.identify(event, output.ancestors) {
            append_fields(&mut line, &serde_json::to_vec(&identity).map_err(std::io::Error::from)?);
        }
    }
    if let Some((cgroups, id)) = output.containers.as_mut().zip(event.cgroup_id()) {
        let fields = match cgroups.lookup(id) {
            Some(cgroup) => serde_json::to_vec(cgroup).map_err(std::io::Error::from)?,
            // A cgroup removed before its event was read: no path to give.
            None => br#"{"cgroup":null,"container_id":null,"pod_uid":null}"#.to_vec(),
        };
        append_fields(&mut line, &fields);
    }
    line.push(b'\n');
    out.write_all(&line)
}

/// Appends the members of JSON object `fields` to JSON object `line`.
fn append_fields(line: &mut Vec<u8>, fields: &[u8]) {
    if fields.len() > 2 {
        line.pop(); // the object's closing brace
        line.push(b',');
        line.extend_from_slice(&fields[1..]);
    }
}

fn main() -> ExitCode {
    // Before anything that takes time: a signal while starting stops cleanly.
    let stopper = tool::Stopper::install("dump");
    let (config, duration, mut output) = match parse_args() {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("dump: {msg}");
            return ExitCode::from(2);
        }
    };
    let tracer = match Tracer::start(&config) {
        Ok(tracer) => tracer,
        Err(err @ Error::InvalidConfig { .. }) => {
            eprintln!("dump: {err}");
            return ExitCode::from(2);
        }
        Err(err) => {
            eprintln!("dump: {err}");
            return ExitCode::FAILURE;
        }
    };
    stopper.arm(tracer.stop_handle());
    if let Some(duration) = duration {
        stopper.after(duration);
    }
    let (mut ok, l7_evicted) = print_events(&tracer, &mut output);
    match tracer.stop() {
        Ok(stats) => eprintln!("{}", serde_json::to_string(&StatsLine::new(stats, l7_evicted)).unwrap_or_default()),
        Err(err) => {
            eprintln!("dump: {err}");
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
