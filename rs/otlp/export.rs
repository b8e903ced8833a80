//! The exporter: a bounded queue that never blocks its callers, and one
//! sender thread that batches, POSTs and retries.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{select, unbounded, Receiver, RecvTimeoutError, Sender};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::http::{Client, Outcome};
use super::stats::{Counters, ExportStats};
use super::OtlpError;

/// Where and how an [`Exporter`] sends. [`ExporterConfig::new`] gives the
/// defaults; change fields directly.
#[derive(Clone, Debug)]
pub struct ExporterConfig {
    /// The receiver's base URL, `http(s)://HOST:PORT` (OTLP/HTTP listens
    /// on 4318 by default); records go to `{endpoint}/v1/logs`.
    pub endpoint: String,
    /// Records held at most (waiting or in flight); more are dropped and
    /// counted in [`ExportStats::dropped_overflow`]. Default 65536.
    pub queue_records: usize,
    /// Records per request at most. Default 512.
    pub batch_records: usize,
    /// How long a record waits for others to fill its batch. Default 1 s.
    pub flush_interval: Duration,
    /// One request's whole exchange at most. Default 10 s.
    pub request_timeout: Duration,
    /// The longest wait between tries while the receiver is down or busy
    /// (waits start at 100 ms and double). At most 2 s, the default.
    pub max_backoff: Duration,
    /// How long [`Exporter::shutdown`] keeps trying to deliver the queue.
    /// Default 5 s.
    pub shutdown_timeout: Duration,
    /// Attributes of the Resource every record is sent under. Default
    /// `service.name = "proctap"`.
    pub resource: Vec<KeyValue>,
}

/// The longest allowed [`ExporterConfig::max_backoff`].
const MAX_BACKOFF_LIMIT: Duration = Duration::from_secs(2);
/// The first wait after a failed try.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

impl ExporterConfig {
    pub fn new(endpoint: impl Into<String>) -> ExporterConfig {
        ExporterConfig {
            endpoint: endpoint.into(),
            queue_records: 65536,
            batch_records: 512,
            flush_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            max_backoff: MAX_BACKOFF_LIMIT,
            shutdown_timeout: Duration::from_secs(5),
            resource: vec![string_attribute("service.name", "proctap")],
        }
    }

    /// Adds (or replaces) a string attribute of the Resource, such as
    /// `host.name`.
    pub fn resource_attribute(mut self, key: &str, value: &str) -> ExporterConfig {
        self.resource.retain(|kv| kv.key != key);
        self.resource.push(string_attribute(key, value));
        self
    }

    fn check(&self) -> Result<(), OtlpError> {
        let invalid = |field, problem: &str| Err(OtlpError::InvalidConfig { field, problem: problem.to_owned() });
        if self.queue_records == 0 {
            return invalid("queue_records", "is 0: give the records to hold at most, 1 or more");
        }
        if self.batch_records == 0 {
            return invalid("batch_records", "is 0: give the records per request, 1 or more");
        }
        if self.max_backoff.is_zero() || self.max_backoff > MAX_BACKOFF_LIMIT {
            return invalid("max_backoff", "must be more than 0 and at most 2 s");
        }
        if self.flush_interval.is_zero() || self.request_timeout.is_zero() {
            return invalid("flush_interval and request_timeout", "must be more than 0");
        }
        Ok(())
    }
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.to_owned())) }),
        ..KeyValue::default()
    }
}

/// Sends log records to an OTLP/HTTP receiver from a thread of its own.
/// Dropping it is [`Exporter::shutdown`] without the stats.
pub struct Exporter {
    queue: Sender<LogRecord>,
    counters: Arc<Counters>,
    capacity: usize,
    /// Dropped to tell the thread to finish.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Checks the config and starts the sender thread; connects only when
    /// the first batch is ready.
    pub fn start(config: ExporterConfig) -> Result<Exporter, OtlpError> {
        config.check()?;
        let client = Client::new(&config.endpoint)?;
        let (queue, records) = unbounded();
        let (stop, stopped) = crossbeam_channel::bounded(0);
        let counters = Arc::new(Counters::default());
        let capacity = config.queue_records;
        let worker = Worker { client, config, records, stopped, counters: Arc::clone(&counters) };
        let thread = std::thread::Builder::new()
            .name("proctap-otlp".into())
            .spawn(move || worker.run())
            .map_err(OtlpError::Spawn)?;
        Ok(Exporter { queue, counters, capacity, stop: Some(stop), thread: Some(thread) })
    }

    /// Queues a record without waiting: false when the queue is full (the
    /// record is dropped and counted). Sets its observed time to now when
    /// it has none.
    pub fn try_send(&self, mut record: LogRecord) -> bool {
        if !self.counters.reserve(self.capacity) {
            return false;
        }
        if record.observed_time_unix_nano == 0 {
            record.observed_time_unix_nano = now_unix_nanos();
        }
        // The thread holds the receiver until the exporter is dropped.
        self.queue.send(record).is_ok()
    }

    /// The counts so far.
    pub fn stats(&self) -> ExportStats {
        self.counters.snapshot()
    }

    /// Stops taking records, tries once more to deliver those queued (for
    /// at most [`ExporterConfig::shutdown_timeout`], plus a request in
    /// flight), and gives the final counts.
    pub fn shutdown(mut self) -> ExportStats {
        self.finish();
        self.counters.snapshot()
    }

    fn finish(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The worker does not panic on any input; if it did, the
            // counts still say what was delivered.
            let _ = thread.join();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.finish();
    }
}

fn now_unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What one try at a request came to.
enum Try {
    /// Delivered or refused: its records are counted.
    Settled,
    /// To be tried again, after the receiver's Retry-After if it gave one.
    Again(Option<Duration>),
}

/// An encoded request and the records in it.
struct Encoded {
    body: Vec<u8>,
    records: usize,
}

/// The sender thread's state.
struct Worker {
    client: Client,
    config: ExporterConfig,
    records: Receiver<LogRecord>,
    stopped: Receiver<()>,
    counters: Arc<Counters>,
}

impl Worker {
    fn run(self) {
        let mut batch = Vec::new();
        let mut unsent = None;
        while self.fill(&mut batch) {
            let encoded = self.encode(&mut batch);
            unsent = self.deliver(encoded);
            if unsent.is_some() {
                break;
            }
        }
        self.drain(unsent, batch);
    }

    /// Waits for records until the batch is full, or the flush interval
    /// passed since its first one; false when asked to stop.
    fn fill(&self, batch: &mut Vec<LogRecord>) -> bool {
        let mut deadline = None;
        while batch.len() < self.config.batch_records {
            let wait =
                deadline.map_or(self.config.flush_interval, |d: Instant| d.saturating_duration_since(Instant::now()));
            select! {
                recv(self.records) -> record => match record {
                    Ok(record) => {
                        batch.push(record);
                        deadline.get_or_insert_with(|| Instant::now() + self.config.flush_interval);
                    }
                    Err(_) => return false,
                },
                recv(self.stopped) -> _ => return false,
                default(wait) => if !batch.is_empty() { break },
            }
        }
        true
    }

    /// One request of the batch's records (taken out of it).
    fn encode(&self, batch: &mut Vec<LogRecord>) -> Encoded {
        let records = batch.len();
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource { attributes: self.config.resource.clone(), ..Resource::default() }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "proctap".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..InstrumentationScope::default()
                    }),
                    log_records: std::mem::take(batch),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        Encoded { body: request.encode_to_vec(), records }
    }

    /// Tries until the receiver takes or refuses the request; gives it
    /// back when asked to stop first.
    fn deliver(&self, encoded: Encoded) -> Option<Encoded> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let Try::Again(wait) = self.attempt(&encoded, self.config.request_timeout) else { return None };
            let wait = wait.unwrap_or(backoff).min(self.config.max_backoff);
            match self.stopped.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return Some(encoded),
            }
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }

    /// One try, counted.
    fn attempt(&self, encoded: &Encoded, timeout: Duration) -> Try {
        let c = &self.counters;
        Counters::add(&c.requests, 1);
        match self.client.post(&encoded.body, timeout) {
            Outcome::Delivered { rejected, message } => {
                let rejected = (rejected as usize).min(encoded.records);
                c.settle(&c.sent_records, encoded.records - rejected);
                c.settle(&c.rejected, rejected);
                if let Some(message) = message {
                    c.error(message);
                }
                Try::Settled
            }
            Outcome::Rejected { error } => {
                c.settle(&c.rejected, encoded.records);
                c.error(error);
                Try::Settled
            }
            Outcome::Retry { error, after } => {
                Counters::add(&c.retries, 1);
                c.error(error);
                Try::Again(after)
            }
        }
    }

    /// At shutdown: the request in flight, then the queue, each tried
    /// until the shutdown timeout; what is left then is counted dropped.
    fn drain(&self, unsent: Option<Encoded>, mut batch: Vec<LogRecord>) {
        let deadline = Instant::now() + self.config.shutdown_timeout;
        let mut next = unsent;
        loop {
            let encoded = match next.take() {
                Some(encoded) => encoded,
                None => {
                    batch.extend(
                        self.records
                            .try_iter()
                            .take(self.config.batch_records - batch.len().min(self.config.batch_records)),
                    );
                    if batch.is_empty() {
                        return;
                    }
                    self.encode(&mut batch)
                }
            };
            if !self.deliver_until(&encoded, deadline) {
                let c = &self.counters;
                c.settle(&c.dropped_at_shutdown, encoded.records + batch.len() + self.records.try_iter().count());
                return;
            }
        }
    }

    /// Tries until settled (true) or `deadline` passed (false).
    fn deliver_until(&self, encoded: &Encoded, deadline: Instant) -> bool {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let Try::Again(wait) = self.attempt(encoded, self.config.request_timeout.min(left)) else { return true };
            let left = deadline.saturating_duration_since(Instant::now());
            std::thread::sleep(wait.unwrap_or(backoff).min(self.config.max_backoff).min(left));
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }
}
