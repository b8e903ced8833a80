//! The command line of `proctap`: one subcommand per tool, each with its
//! options (clap derive), turned into the options the tools take
//! ([`TraceOptions`], [`ProfileOptions`]). Durations are parsed by
//! rs/cli/duration.rs.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use proctap::profile::psi;
use proctap::Unwind;

use crate::profile::ProfileOptions;
use crate::trace::TraceOptions;

/// What processes on this host do, traced through eBPF (needs root, or
/// CAP_BPF and CAP_PERFMON).
#[derive(Debug, Parser)]
#[command(name = "proctap", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print process events as JSON lines on stdout, and stats on stderr.
    Trace(TraceArgs),
    /// Sample stacks; write folded stacks, a flamegraph and pprof into a directory.
    Profile(ProfileArgs),
    /// Send process events (and L7 records, with --net) to an OpenTelemetry collector as OTLP logs.
    Export(ExportArgs),
}

/// How `trace` writes events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    // One JSON object per event on stdout, flushed per batch. (Plain
    // comments: doc comments would make clap's --help spread every
    // option over two lines.)
    #[default]
    Json,
    // One Arrow IPC file per kind in --out DIR (DIR/exec.arrow, ...).
    Arrow,
}

fn duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text)
}

fn psi_trigger(text: &str) -> Result<psi::Trigger, String> {
    psi::Trigger::parse(text)
}

/// `proctap trace`: exec and exit of every process by default; options add
/// kinds, filter processes and add fields.
#[derive(Debug, Args)]
#[command(after_help = "Stops on Ctrl-C (SIGINT), SIGTERM or --duration, and always prints the final stats line. \
                        Exit status: 0; 1 when tracing or writing the output failed; 2 for a usage or config mistake.")]
pub struct TraceArgs {
    /// Stop after this long: 30s, 500ms, 2m, 1h, or seconds (0: load, attach and stop at once).
    #[arg(short, long, value_name = "DURATION", value_parser = duration)]
    pub duration: Option<Duration>,
    /// Trace only this live process (not a thread); repeatable.
    #[arg(short, long, value_name = "PID")]
    pub pid: Vec<u32>,
    /// Trace only processes whose command name starts with PREFIX (any bytes).
    #[arg(short, long, value_name = "PREFIX")]
    pub comm: Option<OsString>,
    /// Trace only processes of this cgroup v2 directory and its descendants; repeatable, at most 8.
    #[arg(short = 'g', long, value_name = "DIR")]
    pub cgroup: Vec<OsString>,
    /// Bytes of each exec's argv to keep (1 to 1048576; default 16384).
    #[arg(long, value_name = "BYTES")]
    pub argv_max: Option<u32>,
    /// Report every thread's exit too, marked thread_exit.
    #[arg(long)]
    pub thread_exits: bool,
    /// Report fork, vfork and clone of traced processes.
    #[arg(long)]
    pub fork: bool,
    /// Report execve and execveat calls that failed, with their errno.
    #[arg(long)]
    pub failed_execs: bool,
    /// Report every open, openat, openat2 and creat of traced processes.
    #[arg(long)]
    pub files: bool,
    /// Capture what traced processes write to stdout and stderr.
    #[arg(long)]
    pub stdio: bool,
    /// Capture what traced processes write to this fd; repeatable, at most 8.
    #[arg(long, value_name = "FD", value_parser = clap::value_parser!(i32).range(0..))]
    pub capture_fd: Vec<i32>,
    /// Bytes of each captured write to keep (0 to 1048576; default 16384).
    #[arg(long, value_name = "BYTES")]
    pub write_max: Option<u32>,
    /// Report traced processes the OOM killer chose.
    #[arg(long)]
    pub oom: bool,
    /// Report a tracepoint declared at build time (PROCTAP_EVENTS); repeatable.
    #[arg(short, long, value_name = "CATEGORY:NAME")]
    pub tracepoint: Vec<String>,
    /// Report TCP and UDP connections and every message's bytes (conn_open, net_data, conn_close).
    #[arg(long)]
    pub net_raw: bool,
    /// Report L7 requests with their responses (HTTP, gRPC, Redis, SQL, DNS, ...).
    #[arg(long)]
    pub net: bool,
    /// Add each event's cgroup path, container id and pod UID.
    #[arg(long)]
    pub containers: bool,
    /// Add each event's process exec_id and its parent's.
    #[arg(long)]
    pub exec_ids: bool,
    /// Add each event's parent and ancestors (implies --exec-ids).
    #[arg(long)]
    pub ancestors: bool,
    /// Also print a stats line on stderr this often, marked "interval": true.
    #[arg(short = 'i', long, value_name = "DURATION", value_parser = duration)]
    pub stats_interval: Option<Duration>,
    /// Output format of the events (json: one object a line on stdout; arrow: DIR/KIND.arrow, with --out).
    #[arg(short, long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// With --format arrow: the directory of the Arrow IPC files (made if missing; none of them may exist).
    #[arg(short, long, value_name = "DIR", required_if_eq("format", "arrow"))]
    pub out: Option<PathBuf>,
}

/// `proctap export`: the events `trace` would print (exec and exit by
/// default; the same options), with exec ids, as OTLP log records.
#[derive(Debug, Args)]
#[command(after_help = "Records queue in memory (--queue) and go out in batches over OTLP/HTTP protobuf to \
                        URL/v1/logs, retried at least every 2 s while the collector is down; a full queue drops and \
                        counts. On Ctrl-C, SIGTERM or --duration one last bounded attempt delivers the queue, and \
                        the final stats line on stderr carries the exporter's counters under \"otlp\".")]
pub struct ExportArgs {
    /// The collector's OTLP/HTTP endpoint, e.g. http://localhost:4318.
    #[arg(long, value_name = "URL")]
    pub otlp: String,
    /// Records held while the collector is slow or down (beyond: dropped and counted).
    #[arg(long, value_name = "RECORDS", default_value_t = 65536)]
    pub queue: usize,
    #[command(flatten)]
    pub trace: TraceArgs,
}

impl From<TraceArgs> for TraceOptions {
    fn from(a: TraceArgs) -> TraceOptions {
        TraceOptions {
            duration: a.duration,
            pids: a.pid,
            comm: a.comm.map(OsString::into_vec),
            cgroups: a.cgroup,
            argv_max: a.argv_max,
            thread_exits: a.thread_exits,
            fork: a.fork,
            failed_execs: a.failed_execs,
            files: a.files,
            stdio: a.stdio,
            capture_fds: a.capture_fd,
            write_max: a.write_max,
            oom: a.oom,
            tracepoints: a.tracepoint,
            net_raw: a.net_raw,
            net: a.net,
            containers: a.containers,
            exec_ids: a.exec_ids,
            ancestors: a.ancestors,
            stats_interval: a.stats_interval,
        }
    }
}

/// How the profiler takes user stacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UnwindArg {
    // Copy each sample's user stack and unwind it here from .eh_frame.
    Copy,
    // Have the kernel walk frame pointers.
    Fp,
}

/// `proctap profile`: CPU (and off-CPU) profiles of the chosen processes.
#[derive(Debug, Args)]
#[command(after_help = "Writes DIR/profile.folded, flamegraph.svg and profile.pb.gz (and offcpu.* with --off-cpu), \
                        then a JSON summary on stdout, however it stops: Ctrl-C (SIGINT), SIGTERM or --duration.")]
pub struct ProfileArgs {
    /// Profile processes whose command name starts with PREFIX, from their exec on; repeatable.
    #[arg(short, long, value_name = "PREFIX")]
    pub comm: Vec<OsString>,
    /// Profile this process; repeatable.
    #[arg(short, long, value_name = "PID")]
    pub pid: Vec<u32>,
    /// Profile every process.
    #[arg(short, long)]
    pub all: bool,
    /// Follow the targets' forks.
    #[arg(long)]
    pub children: bool,
    /// Samples per second per CPU (1 to 999; default 19).
    #[arg(short = 'F', long, value_name = "HZ")]
    pub hz: Option<u32>,
    /// copy: unwind a copy of each user stack here (whole chains); fp: the kernel walks frame pointers.
    #[arg(long, value_enum, value_name = "HOW")]
    pub unwind: Option<UnwindArg>,
    /// Also record where the targets' threads sleep (1 ms or more) into offcpu.*.
    #[arg(long)]
    pub off_cpu: bool,
    /// Shortest sleep --off-cpu reports, in microseconds (implies --off-cpu).
    #[arg(long, value_name = "MICROSECONDS")]
    pub off_cpu_min: Option<u32>,
    /// Sample only while a target's cgroup stalls on RESOURCE (cpu, memory, io) over PERCENT; repeatable.
    #[arg(long, value_name = "RESOURCE:PERCENT", value_parser = psi_trigger)]
    pub psi: Vec<psi::Trigger>,
    /// How long each --psi capture lasts (default 5s).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub capture_window: Option<Duration>,
    /// Stop after this long (default 10s): 30s, 500ms, 2m, 1h, or seconds (0: at once).
    #[arg(short, long, value_name = "DURATION", value_parser = duration)]
    pub duration: Option<Duration>,
    /// Print each stack error and each loss of samples as a JSON line on stdout.
    #[arg(long)]
    pub errors: bool,
    /// Also look for separate debug files in DIR (besides /usr/lib/debug); repeatable.
    #[arg(long, value_name = "DIR")]
    pub debug_dir: Vec<PathBuf>,
    /// Write the profiles into DIR (created if missing).
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
}

impl From<ProfileArgs> for ProfileOptions {
    fn from(a: ProfileArgs) -> ProfileOptions {
        ProfileOptions {
            comms: a.comm.into_iter().map(OsString::into_vec).collect(),
            pids: a.pid,
            all: a.all,
            children: a.children,
            hz: a.hz,
            unwind: a.unwind.map(|how| match how {
                UnwindArg::Copy => Unwind::StackCopy,
                UnwindArg::Fp => Unwind::FramePointers,
            }),
            off_cpu: a.off_cpu,
            off_cpu_min_us: a.off_cpu_min,
            psi: a.psi,
            capture_window: a.capture_window,
            duration: a.duration,
            errors: a.errors,
            debug_dirs: a.debug_dir,
            out: Some(a.out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn trace_options_arrive_in_their_fields() {
        let cli = Cli::try_parse_from([
            "proctap",
            "trace",
            "-d",
            "2s",
            "-p",
            "1",
            "-p",
            "2",
            "-c",
            "sh",
            "-t",
            "a:b",
            "--exec-ids",
            "-i",
            "500ms",
        ])
        .unwrap();
        let Command::Trace(args) = cli.command else { panic!("not trace") };
        let options = TraceOptions::from(args);
        assert_eq!(options.duration, Some(Duration::from_secs(2)));
        assert_eq!(options.pids, [1, 2]);
        assert_eq!(options.comm.as_deref(), Some(&b"sh"[..]));
        assert_eq!(options.tracepoints, ["a:b"]);
        assert!(options.exec_ids && !options.ancestors);
        assert_eq!(options.stats_interval, Some(Duration::from_millis(500)));
    }

    #[test]
    fn profile_needs_out_and_takes_unwind_and_psi() {
        assert!(Cli::try_parse_from(["proctap", "profile", "--all"]).is_err());
        let cli =
            Cli::try_parse_from(["proctap", "profile", "-a", "--unwind", "fp", "--psi", "cpu:20", "-o", "x"]).unwrap();
        let Command::Profile(args) = cli.command else { panic!("not profile") };
        let options = ProfileOptions::from(args);
        assert_eq!(options.unwind, Some(Unwind::FramePointers));
        assert_eq!(options.psi.len(), 1);
        assert_eq!(options.out, Some(PathBuf::from("x")));
    }
}
