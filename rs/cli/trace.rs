//! Tracing: the options of `proctap trace` (and of the `dump` example, which
//! parses its own command line into the same [`TraceOptions`]), the config
//! they make, and the loop that hands every event to an output format
//! ([`EventSink`]) until a signal or the duration stops the tracer; then
//! the final stats line on stderr.
//!
//! Exit status: 0; 1 when tracing or writing the output failed; 2 for a
//! usage or config mistake.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use proctap::container::Cgroups;
use proctap::l7::{Evictions, Tracker};
use proctap::process::ProcessTable;
use proctap::{Config, Error, Event, EventKind, Tracer};

use crate::output::{Context, EventSink};
use crate::stats::{Periodic, StatsLine};
use crate::stop::Stopper;

/// What to trace, and what to print besides the events.
#[derive(Clone, Debug, Default)]
pub struct TraceOptions {
    /// None: until SIGINT or SIGTERM. Zero: load, attach and stop at once.
    pub duration: Option<Duration>,
    pub pids: Vec<u32>,
    /// A command-name prefix, any bytes.
    pub comm: Option<Vec<u8>>,
    /// Cgroup v2 directories.
    pub cgroups: Vec<OsString>,
    pub argv_max: Option<u32>,
    pub thread_exits: bool,
    /// Fork events, printed.
    pub fork: bool,
    pub failed_execs: bool,
    pub files: bool,
    pub stdio: bool,
    pub capture_fds: Vec<i32>,
    pub write_max: Option<u32>,
    pub oom: bool,
    /// Declared tracepoints, `CATEGORY:NAME`.
    pub tracepoints: Vec<String>,
    /// Connection and net_data events, printed.
    pub net_raw: bool,
    /// L7 records made from the connections' bytes.
    pub net: bool,
    /// Cgroup paths and container ids.
    pub containers: bool,
    /// `exec_id` and `parent_exec_id` of each event's process.
    pub exec_ids: bool,
    /// `parent` and `ancestors` too (implies `exec_ids`).
    pub ancestors: bool,
    /// A periodic stats line on stderr this often.
    pub stats_interval: Option<Duration>,
}

impl TraceOptions {
    /// The tracer's config.
    pub fn config(&self) -> Config {
        let mut config = Config::new();
        for &pid in &self.pids {
            config = config.pid(pid);
        }
        if let Some(comm) = &self.comm {
            config = config.comm_prefix(comm);
        }
        for dir in &self.cgroups {
            config = config.cgroup(dir);
        }
        if let Some(bytes) = self.argv_max {
            config = config.argv_max(bytes);
        }
        if self.stdio {
            config = config.stdio();
        }
        for &fd in &self.capture_fds {
            config = config.capture_fd(fd);
        }
        if let Some(bytes) = self.write_max {
            config = config.write_max(bytes);
        }
        if self.net || self.net_raw {
            config = config.net_data();
        }
        for name in &self.tracepoints {
            config = config.tracepoint(name);
        }
        // The process table follows forks, printed or not.
        let forks = self.fork || self.exec_ids || self.ancestors;
        config
            .thread_exits(self.thread_exits)
            .event(EventKind::Fork, forks)
            .event(EventKind::ExecFailed, self.failed_execs)
            .event(EventKind::Open, self.files)
            .event(EventKind::OomKill, self.oom)
    }
}

/// What the printing loop keeps besides the sink: the tables that add
/// fields to events, and the L7 tracker.
struct Printer {
    /// L7 records (--net) instead of the connection events they come from
    /// (unless --net-raw asks for those too).
    l7: Option<Tracker>,
    raw_net: bool,
    containers: Option<Cgroups>,
    processes: Option<ProcessTable>,
    ancestors: bool,
    /// Fork events are printed (--fork), not only fed to the table.
    forks: bool,
}

impl Printer {
    /// Reads /proc and the cgroup tree as asked. Call it before the tracer
    /// starts: no process falls between the table's seed and the stream.
    fn new(options: &TraceOptions) -> Result<Printer, String> {
        let processes = if options.exec_ids || options.ancestors {
            let option = if options.ancestors { "--ancestors" } else { "--exec-ids" };
            Some(ProcessTable::from_procfs().map_err(|e| format!("{option}: {e}"))?)
        } else {
            None
        };
        let containers =
            if options.containers { Some(Cgroups::open().map_err(|e| format!("--containers: {e}"))?) } else { None };
        Ok(Printer {
            l7: options.net.then(Tracker::new),
            raw_net: options.net_raw,
            containers,
            processes,
            ancestors: options.ancestors,
            forks: options.fork,
        })
    }

    /// Hands every event (and L7 records) to `sink` until the stream closes
    /// after stop; the first output error stops the tracer.
    fn run(&mut self, tracer: &Tracer, sink: &mut dyn EventSink) -> std::io::Result<()> {
        let mut records = Vec::new();
        for batch in tracer.events().clone() {
            let written = batch
                .iter()
                .try_for_each(|event| self.deliver(tracer, &event, sink, &mut records))
                .and_then(|()| sink.flush());
            if written.is_err() {
                tracer.stop_handle().stop(); // the stats still print
                return written;
            }
        }
        Ok(())
    }

    fn deliver(
        &mut self,
        tracer: &Tracer,
        event: &Event<&[u8]>,
        sink: &mut dyn EventSink,
        records: &mut Vec<proctap::l7::Record>,
    ) -> std::io::Result<()> {
        let net = matches!(event, Event::ConnOpen(_) | Event::NetData(_) | Event::ConnClose(_));
        if let Some(l7) = self.l7.as_mut().filter(|_| net) {
            l7.feed(event, records);
            for conn_id in l7.take_given_up() {
                // Best effort: a failure costs only copies.
                let _ = tracer.give_up_connection(conn_id);
            }
            for record in records.drain(..) {
                sink.l7(&record)?;
            }
        }
        if net && !self.raw_net {
            return Ok(());
        }
        if matches!(event, Event::Fork(_)) && !self.forks {
            if let Some(table) = self.processes.as_mut() {
                table.observe(event);
            }
            return Ok(());
        }
        let context = Context {
            identity: self.processes.as_mut().and_then(|table| table.identify(event, self.ancestors)),
            cgroup: self.containers.as_mut().zip(event.cgroup_id()).map(|(cgroups, id)| cgroups.lookup(id)),
        };
        sink.event(event, context)
    }

    fn l7_evictions(&self) -> Option<Evictions> {
        self.l7.as_ref().map(Tracker::evictions)
    }
}

/// Traces as `options` say, writing events to `sink`, until the duration
/// or a signal (through `stopper`, installed before the options were read)
/// stops it. `tool` prefixes error messages.
pub fn run(tool: &str, stopper: &Stopper, options: &TraceOptions, sink: &mut dyn EventSink) -> ExitCode {
    let mut printer = match Printer::new(options) {
        Ok(printer) => printer,
        Err(msg) => {
            eprintln!("{tool}: {msg}");
            return ExitCode::from(2);
        }
    };
    let tracer = match Tracer::start(&options.config()) {
        Ok(tracer) => tracer,
        Err(err) => {
            eprintln!("{tool}: {err}");
            return ExitCode::from(if matches!(err, Error::InvalidConfig { .. }) { 2 } else { 1 });
        }
    };
    stopper.arm(tracer.stop_handle());
    if let Some(duration) = options.duration {
        stopper.after(duration);
    }
    let mut ok = true;
    std::thread::scope(|scope| {
        let _periodic = options.stats_interval.map(|every| Periodic::start(scope, &tracer, every));
        if let Err(err) = printer.run(&tracer, sink) {
            eprintln!("{tool}: writing {}: {err}", sink.destination());
            ok = false;
        }
    });
    let stopped = tracer.stop();
    let sink_stats = sink.finish().unwrap_or_else(|err| {
        eprintln!("{tool}: finishing {}: {err}", sink.destination());
        ok = false;
        serde_json::Map::new()
    });
    match stopped {
        Ok(stats) => StatsLine::new(stats, printer.l7_evictions()).with_sink(sink_stats).print(),
        Err(err) => {
            eprintln!("{tool}: {err}");
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
