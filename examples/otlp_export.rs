//! Traces processes and exports their events as OTLP log records to an
//! OTLP/HTTP receiver, until SIGINT, SIGTERM or --duration; then prints the
//! exporter's and the tracer's counts as one JSON line on stderr.
//!
//!     cargo run --release --features otlp --example otlp_export -- --otlp http://HOST:4318
//!         [--duration SECONDS] [--queue RECORDS] [--batch RECORDS] [--pid PID]... [--comm PREFIX]
//!         [--fork] [--files] [--oom] [--net]
//!
//! Exec and exit always; fork, open, oom_kill and L7 records (--net) when
//! asked. Events that carry a cgroup id get `container.id`, `k8s.pod.uid`
//! and `process.linux.cgroup` from it (exec and oom_kill).
//!
//! Exit status: 0; 1 when tracing failed; 2 for a usage or config mistake.

mod tool;

use std::process::ExitCode;
use std::time::Duration;

use proctap::container::Cgroups;
use proctap::otlp::{l7_log_record, log_record, ExportStats, Exporter, ExporterConfig, ProcessContext};
use proctap::{Config, Error, Event, EventKind, Tracer};

const USAGE: &str = "usage: otlp_export --otlp URL [--duration SECONDS] [--queue RECORDS] [--batch RECORDS] \
                     [--pid PID]... [--comm PREFIX] [--fork] [--files] [--oom] [--net]";

/// The final stats line.
#[derive(serde::Serialize)]
struct StatsLine {
    #[serde(rename = "type")]
    kind: &'static str,
    otlp: ExportStats,
    tracer: Option<proctap::Stats>,
}

struct Options {
    config: Config,
    exporter: ExporterConfig,
    duration: Option<Duration>,
    l7: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut config = Config::new();
    let mut endpoint = None;
    let (mut queue, mut batch) = (None, None);
    let mut duration = None;
    let mut l7 = false;
    let mut args = tool::Args::new(USAGE);
    while let Some(arg) = args.next_option() {
        match arg?.as_str() {
            "--otlp" => endpoint = Some(String::from_utf8_lossy(&args.value("--otlp")?).into_owned()),
            "--duration" => duration = Some(args.seconds("--duration")?),
            "--queue" => queue = Some(args.number("--queue")? as usize),
            "--batch" => batch = Some(args.number("--batch")? as usize),
            "--pid" => config = config.pid(args.number("--pid")?),
            "--comm" => config = config.comm_prefix(args.value("--comm")?),
            "--fork" => config = config.event(EventKind::Fork, true),
            "--files" => config = config.event(EventKind::Open, true),
            "--oom" => config = config.event(EventKind::OomKill, true),
            "--net" => {
                config = config.net_data();
                l7 = true;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let endpoint = endpoint.ok_or_else(|| format!("--otlp URL is required\n{USAGE}"))?;
    let mut exporter = ExporterConfig::new(endpoint);
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        exporter = exporter.resource_attribute("host.name", host.trim());
    }
    exporter.queue_records = queue.unwrap_or(exporter.queue_records);
    exporter.batch_records = batch.unwrap_or(exporter.batch_records);
    Ok(Options { config, exporter, duration, l7 })
}

/// Exports every event of interest until the tracer stops.
fn export_events(tracer: &Tracer, exporter: &Exporter, l7_on: bool) {
    let mut cgroups = Cgroups::open().map_err(|e| eprintln!("otlp_export: no container ids: {e}")).ok();
    let mut l7 = proctap::l7::Tracker::new();
    let mut records = Vec::new();
    for batch in tracer.events().clone() {
        for event in &batch {
            if let Some(offset) = l7_on.then(|| net_offset(&event)).flatten() {
                l7.feed(&event, &mut records);
                for conn_id in l7.take_given_up() {
                    let _ = tracer.give_up_connection(conn_id); // best effort: it only saves copies
                }
                for r in records.drain(..) {
                    exporter.try_send(l7_log_record(&r, &ProcessContext::default(), offset));
                }
                continue;
            }
            let cgroup = cgroups.as_mut().zip(event.cgroup_id()).and_then(|(c, id)| c.lookup(id));
            let process = ProcessContext {
                container_id: cgroup.and_then(|c| c.ids.container_id.as_deref()),
                pod_uid: cgroup.and_then(|c| c.ids.pod_uid.as_deref()),
                cgroup: cgroup.map(|c| c.path.as_str()),
                ..ProcessContext::default()
            };
            if let Some(record) = log_record(&event, &process) {
                exporter.try_send(record);
            }
        }
    }
}

/// For the events the L7 tracker reads: CLOCK_REALTIME - CLOCK_MONOTONIC.
fn net_offset(event: &Event<&[u8]>) -> Option<i64> {
    let (time, ts_ns) = match event {
        Event::ConnOpen(e) => (e.time, e.ts_ns),
        Event::NetData(e) => (e.time, e.ts_ns),
        Event::ConnClose(e) => (e.time, e.ts_ns),
        _ => return None,
    };
    Some(time.unix_ns - ts_ns as i64)
}

fn main() -> ExitCode {
    let stopper = tool::Stopper::install("otlp_export");
    let options = match parse_args() {
        Ok(options) => options,
        Err(msg) => {
            eprintln!("otlp_export: {msg}");
            return ExitCode::from(2);
        }
    };
    let exporter = match Exporter::start(options.exporter) {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("otlp_export: {err}");
            return ExitCode::from(2);
        }
    };
    let tracer = match Tracer::start(&options.config) {
        Ok(tracer) => tracer,
        Err(err) => {
            eprintln!("otlp_export: {err}");
            return ExitCode::from(if matches!(err, Error::InvalidConfig { .. }) { 2 } else { 1 });
        }
    };
    stopper.arm(tracer.stop_handle());
    if let Some(duration) = options.duration {
        stopper.after(duration);
    }
    export_events(&tracer, &exporter, options.l7);
    let (tracer_stats, ok) = match tracer.stop() {
        Ok(stats) => (Some(stats), true),
        Err(err) => {
            eprintln!("otlp_export: {err}");
            (None, false)
        }
    };
    let line = StatsLine { kind: "stats", otlp: exporter.shutdown(), tracer: tracer_stats };
    eprintln!("{}", serde_json::to_string(&line).unwrap_or_default());
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
