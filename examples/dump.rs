//! JSON-lines dumper: one object per event on stdout, flushed per line; final
//! stats as one JSON line on stderr.
//!
//!     cargo run --release --example dump -- [--duration SECONDS] [--pid PID]...
//!         [--comm PREFIX] [--argv-max BYTES] [--thread-exits]

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use proctap::{Config, Stats, Tracer};

/// The final stats line: the C example's keys, then every counter.
#[derive(serde::Serialize)]
struct StatsLine {
    #[serde(rename = "type")]
    kind: &'static str,
    events: u64,
    exec: u64,
    exit: u64,
    dropped_data: u64,
    reserve_failures: u64,
    argv_truncated: u64,
    invalid: u64,
    oversize: u64,
    detail: Stats,
}

const USAGE: &str =
    "usage: dump [--duration SECONDS] [--pid PID]... [--comm PREFIX] [--argv-max BYTES] [--thread-exits]";

fn parse_args() -> Result<(Config, Option<Duration>), String> {
    let mut config = Config::new();
    let mut duration = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        let number = |name: &str, v: String| v.parse::<u32>().map_err(|_| format!("{name}: not a number: {v}"));
        match arg.as_str() {
            "--duration" => duration = Some(Duration::from_secs(number("--duration", value("--duration")?)?.into())),
            "--pid" => config = config.pid(number("--pid", value("--pid")?)?),
            "--comm" => config = config.comm_prefix(value("--comm")?),
            "--argv-max" => config = config.argv_max(number("--argv-max", value("--argv-max")?)?),
            "--thread-exits" => config = config.thread_exits(true),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok((config, duration))
}

fn main() -> ExitCode {
    let (config, duration) = match parse_args() {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("dump: {msg}");
            return ExitCode::from(2);
        }
    };
    let tracer = match Tracer::start(&config) {
        Ok(tracer) => tracer,
        Err(err) => {
            eprintln!("dump: {err}");
            return ExitCode::FAILURE;
        }
    };
    let stop = tracer.stop_handle();
    if let Err(err) = ctrlc::set_handler({
        let stop = stop.clone();
        move || stop.stop()
    }) {
        eprintln!("dump: cannot handle Ctrl-C: {err}");
    }
    if let Some(duration) = duration {
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            stop.stop();
        });
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = false;
    // The channel closes once the tracer stopped and its last batch is read.
    for batch in tracer.events().clone() {
        for event in &batch {
            let written = serde_json::to_writer(&mut out, &event)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush());
            if written.is_err() {
                failed = true; // stdout closed: stop, still report stats
                tracer.stop_handle().stop();
                break;
            }
        }
    }
    drop(out);
    match tracer.stop() {
        Ok(stats) => {
            let line = StatsLine {
                kind: "stats",
                events: stats.events(),
                exec: stats.exec.delivered,
                exit: stats.exit.delivered,
                dropped_data: stats.dropped_data(),
                reserve_failures: stats.reserve_failures(),
                argv_truncated: stats.argv_truncated,
                invalid: stats.invalid,
                oversize: stats.oversize,
                detail: stats,
            };
            eprintln!("{}", serde_json::to_string(&line).unwrap_or_default());
        }
        Err(err) => {
            eprintln!("dump: {err}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
