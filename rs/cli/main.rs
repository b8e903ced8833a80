//! `proctap`: the command-line tracer (`cargo install proctap --features
//! cli`). `proctap trace` prints process events as JSON lines with a stats
//! line on stderr; `proctap profile` writes CPU and off-CPU profiles.
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
        Command::Trace(args) => {
            let format = args.format;
            let options = trace::TraceOptions::from(args);
            let mut sink: Box<dyn output::EventSink> = match format {
                Format::Json => Box::new(output::JsonLines::stdout()),
            };
            trace::run("proctap trace", &stopper, &options, sink.as_mut())
        }
        Command::Profile(args) => match profile::ProfileOptions::from(args).plan() {
            Ok(plan) => profile::run("proctap profile", &stopper, &plan),
            Err(msg) => {
                eprintln!("proctap profile: {msg}");
                ExitCode::from(2)
            }
        },
    }
}
