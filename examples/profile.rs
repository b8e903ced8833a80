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
//!
//! The same tool, installable and with the same options, is `proctap profile`
//! (rs/cli/, feature cli); both run the code in rs/cli/, this example only
//! parses its own command line.

#[path = "../rs/cli/profile.rs"]
mod profile;
#[path = "../rs/cli/profile_files.rs"]
mod profile_files;
#[path = "../rs/cli/stop.rs"]
mod stop;
mod tool;

use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::ExitCode;

use proctap::Unwind;
use profile::{Plan, ProfileOptions};

const USAGE: &str = "usage: profile [--comm PREFIX]... [--pid PID]... [--all] [--children] [--hz HZ] \
                     [--unwind copy|fp] [--off-cpu] [--off-cpu-min MICROSECONDS] \
                     [--psi RESOURCE:PERCENT]... [--capture-window SECONDS] [--duration SECONDS] \
                     [--errors] [--debug-dir DIR]... --out DIR";

fn parse_args() -> Result<Plan, String> {
    let mut options = ProfileOptions::default();
    let mut args = tool::Args::new(USAGE);
    let path = |bytes: Vec<u8>| PathBuf::from(std::ffi::OsString::from_vec(bytes));
    while let Some(arg) = args.next_option() {
        match arg?.as_str() {
            "--comm" => options.comms.push(args.value("--comm")?),
            "--pid" => options.pids.push(args.number("--pid")?),
            "--psi" => {
                let text = String::from_utf8_lossy(&args.value("--psi")?).into_owned();
                let trigger =
                    proctap::profile::psi::Trigger::parse(&text).map_err(|e| format!("--psi {e}\n{USAGE}"))?;
                options.psi.push(trigger)
            }
            "--capture-window" => options.capture_window = Some(args.seconds("--capture-window")?),
            "--all" => options.all = true,
            "--children" => options.children = true,
            "--hz" => options.hz = Some(args.number("--hz")?),
            "--off-cpu" => options.off_cpu = true,
            "--off-cpu-min" => options.off_cpu_min_us = Some(args.number("--off-cpu-min")?),
            "--unwind" => {
                options.unwind = Some(match args.value("--unwind")?.as_slice() {
                    b"copy" => Unwind::StackCopy,
                    b"fp" => Unwind::FramePointers,
                    other => {
                        return Err(format!("--unwind {}: use copy or fp\n{USAGE}", String::from_utf8_lossy(other)))
                    }
                })
            }
            "--duration" => options.duration = Some(args.seconds("--duration")?),
            "--errors" => options.errors = true,
            "--debug-dir" => options.debug_dirs.push(path(args.value("--debug-dir")?)),
            "--out" => options.out = Some(path(args.value("--out")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    options.plan().map_err(|e| format!("{e}\n{USAGE}"))
}

fn main() -> ExitCode {
    // Before anything that takes time: a signal while starting stops cleanly.
    let stopper = stop::Stopper::install("profile");
    match parse_args() {
        Ok(plan) => profile::run("profile", &stopper, &plan),
        Err(msg) => {
            eprintln!("profile: {msg}");
            ExitCode::from(2)
        }
    }
}
