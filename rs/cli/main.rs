//! `proctap`: the command-line tracer (`cargo install proctap --features
//! cli`). `proctap trace` prints process events as JSON lines (or writes
//! Arrow files) with a stats line on stderr; `proctap profile` writes CPU and
//! off-CPU profiles; `proctap export` sends events to an OpenTelemetry
//! collector.
//!
//! Layout: args.rs is the command line (clap); each subcommand's work is a
//! module that the `dump` and `profile` examples share (trace.rs with
//! output.rs and stats.rs; profile.rs with profile_files.rs; stop.rs for
//! signals). A new output format is an `EventSink` (output.rs) and a
//! `Format` variant (args.rs); a new subcommand is a `Command` variant and
//! its module.

mod args;
mod duration;
mod output;
mod profile;
mod profile_files;
mod sinks;
mod stats;
mod stop;
mod trace;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, Format};

fn main() -> ExitCode {
    // Before anything that takes time: a signal while starting stops cleanly.
    let stopper = stop::Stopper::install("proctap");
    match Cli::parse().command {
        Command::Trace(args) => match trace_sink(&args) {
            Ok(mut sink) => trace::run("proctap trace", &stopper, &args.into(), sink.as_mut()),
            Err(msg) => usage_error("proctap trace", &msg),
        },
        Command::Export(args) => match export_sink(&args) {
            Ok(mut sink) => {
                let mut options = trace::TraceOptions::from(args.trace);
                options.exec_ids = true;
                trace::run("proctap export", &stopper, &options, &mut sink)
            }
            Err(msg) => usage_error("proctap export", &msg),
        },
        Command::Profile(args) => match profile::ProfileOptions::from(args).plan() {
            Ok(plan) => profile::run("proctap profile", &stopper, &plan),
            Err(msg) => usage_error("proctap profile", &msg),
        },
    }
}

fn usage_error(tool: &str, msg: &str) -> ExitCode {
    eprintln!("{tool}: {msg}");
    ExitCode::from(2)
}

/// Where `trace` writes, as --format says.
fn trace_sink(args: &args::TraceArgs) -> Result<Box<dyn output::EventSink>, String> {
    match (args.format, &args.out) {
        (Format::Json, None) => Ok(Box::new(output::JsonLines::stdout())),
        (Format::Json, Some(_)) => Err("--out is for --format arrow (JSON lines go to stdout)".into()),
        (Format::Arrow, _) if args.net || args.exec_ids || args.ancestors || args.containers => {
            Err("--format arrow has columns for the events' own fields only: drop --net (use --net-raw), --exec-ids, \
             --ancestors and --containers"
                .into())
        }
        (Format::Arrow, Some(dir)) => Ok(Box::new(sinks::ArrowFiles::create(dir.clone())?)),
        (Format::Arrow, None) => Err("--format arrow needs --out DIR".into()),
    }
}

/// The exporter `export` feeds.
fn export_sink(args: &args::ExportArgs) -> Result<sinks::OtlpLogs, String> {
    if args.trace.format != Format::Json || args.trace.out.is_some() {
        return Err("export sends OTLP: --format and --out are trace's".into());
    }
    let mut config = proctap::otlp::ExporterConfig::new(args.otlp.clone());
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        config = config.resource_attribute("host.name", host.trim());
    }
    config.queue_records = args.queue;
    let exporter = proctap::otlp::Exporter::start(config).map_err(|e| format!("--otlp {}: {e}", args.otlp))?;
    Ok(sinks::OtlpLogs::new(exporter, args.otlp.clone()))
}
