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
//!
//! The same tool, installable and with the same options, is `proctap trace`
//! (rs/cli/, feature cli); both run the code in rs/cli/, this example only
//! parses its own command line.

#[path = "../rs/cli/output.rs"]
mod output;
#[path = "../rs/cli/stats.rs"]
mod stats;
#[allow(dead_code)]
#[path = "../rs/cli/stop.rs"]
mod stop;
mod tool;
#[path = "../rs/cli/trace.rs"]
mod trace;

use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

use trace::TraceOptions;

const USAGE: &str =
    "usage: dump [--duration SECONDS] [--pid PID]... [--comm PREFIX] [--cgroup DIR]... [--argv-max BYTES] [--thread-exits] [--fork] \
                     [--failed-execs] [--files] [--stdio] [--capture-fd FD]... [--write-max BYTES] \
                     [--oom] [--tracepoint CATEGORY:NAME]... [--net-raw] [--net] [--containers] [--exec-ids] [--ancestors]";

fn parse_args() -> Result<TraceOptions, String> {
    let mut options = TraceOptions::default();
    let mut args = tool::Args::new(USAGE);
    while let Some(arg) = args.next_option() {
        match arg?.as_str() {
            "--duration" => options.duration = Some(args.seconds("--duration")?),
            "--pid" => options.pids.push(args.number("--pid")?),
            "--comm" => options.comm = Some(args.value("--comm")?),
            "--cgroup" => options.cgroups.push(std::ffi::OsString::from_vec(args.value("--cgroup")?)),
            "--argv-max" => options.argv_max = Some(args.number("--argv-max")?),
            "--thread-exits" => options.thread_exits = true,
            "--fork" => options.fork = true,
            "--exec-ids" => options.exec_ids = true,
            "--ancestors" => options.ancestors = true,
            "--failed-execs" => options.failed_execs = true,
            "--files" => options.files = true,
            "--stdio" => options.stdio = true,
            "--capture-fd" => {
                let fd = args.number("--capture-fd")?;
                options
                    .capture_fds
                    .push(i32::try_from(fd).map_err(|_| format!("--capture-fd: {fd} is not a file descriptor"))?);
            }
            "--oom" => options.oom = true,
            "--net-raw" => options.net_raw = true,
            "--net" => options.net = true,
            "--tracepoint" => {
                options.tracepoints.push(String::from_utf8_lossy(&args.value("--tracepoint")?).into_owned())
            }
            "--containers" => options.containers = true,
            "--write-max" => options.write_max = Some(args.number("--write-max")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    // Before anything that takes time: a signal while starting stops cleanly.
    let stopper = stop::Stopper::install("dump");
    match parse_args() {
        Ok(options) => trace::run("dump", &stopper, &options, &mut output::JsonLines::stdout()),
        Err(msg) => {
            eprintln!("dump: {msg}");
            ExitCode::from(2)
        }
    }
}
