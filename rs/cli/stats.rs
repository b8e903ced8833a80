//! The stats line on stderr: `{"type":"stats",...}` with every loss counter
//! at the top level (the C example's keys) and all counters under `detail`.
//! The final line has exactly those keys; a periodic one (`proctap trace
//! --stats-interval`) adds `"interval":true` and `"elapsed_ms"` after
//! `type`, so a reader tells them apart. Counters are totals since the
//! start, in both.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use proctap::{Stats, Tracer};

/// One stats line.
#[derive(serde::Serialize)]
pub struct StatsLine {
    #[serde(rename = "type")]
    kind: &'static str,
    /// Periodic lines only: always true.
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<bool>,
    /// Periodic lines only: milliseconds since tracing started.
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_ms: Option<u64>,
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
    /// What the output adds (proctap export: "otlp", its delivery counters;
    /// trace --format arrow: "arrow_files").
    #[serde(flatten)]
    sink: serde_json::Map<String, serde_json::Value>,
    detail: Stats,
}

impl StatsLine {
    /// The final line, once the tracer stopped.
    pub fn new(stats: Stats, l7_evicted: Option<proctap::l7::Evictions>) -> StatsLine {
        StatsLine {
            kind: "stats",
            interval: None,
            elapsed_ms: None,
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
            sink: serde_json::Map::new(),
            detail: stats,
        }
    }

    /// The line with the output's own members added.
    pub fn with_sink(self, sink: serde_json::Map<String, serde_json::Value>) -> StatsLine {
        StatsLine { sink, ..self }
    }

    /// A line while tracing goes on, `elapsed` after the start. It has no
    /// `l7_evicted`: the L7 tracker belongs to the printing loop.
    pub fn periodic(stats: Stats, elapsed: Duration) -> StatsLine {
        StatsLine {
            interval: Some(true),
            elapsed_ms: Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
            ..StatsLine::new(stats, None)
        }
    }

    /// Prints the line on stderr.
    pub fn print(&self) {
        match serde_json::to_string(self) {
            Ok(line) => eprintln!("{line}"),
            Err(err) => eprintln!("{{\"type\":\"error\",\"message\":\"stats: {err}\"}}"),
        }
    }
}

/// Prints a periodic stats line every interval, from a scoped thread, until
/// dropped.
pub struct Periodic<'scope> {
    stop: Sender<()>,
    thread: Option<ScopedJoinHandle<'scope, ()>>,
}

impl<'scope> Periodic<'scope> {
    /// Starts printing `tracer`'s counters every `every` (at least 1 ms).
    pub fn start<'env>(scope: &'scope Scope<'scope, 'env>, tracer: &'env Tracer, every: Duration) -> Periodic<'scope> {
        let every = every.max(Duration::from_millis(1));
        let (stop, stopped) = mpsc::channel::<()>();
        let started = Instant::now();
        let thread = scope.spawn(move || {
            let mut next = started + every;
            loop {
                match stopped.recv_timeout(next.saturating_duration_since(Instant::now())) {
                    Err(RecvTimeoutError::Timeout) => StatsLine::periodic(tracer.stats(), started.elapsed()).print(),
                    // Told to stop, or the sender is gone.
                    _ => return,
                }
                next += every;
            }
        });
        Periodic { stop, thread: Some(thread) }
    }
}

impl Drop for Periodic<'_> {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
