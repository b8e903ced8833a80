//! Events as OpenTelemetry log records, sent to an OTLP/HTTP receiver
//! (the `otlp` feature).
//!
//! Two halves, usable apart:
//!
//! - **Mapping** (pure, no I/O): [`log_record`] turns an [`Event`](crate::Event)
//!   (exec, exit, fork, open, oom_kill) and [`l7_log_record`] an
//!   [`l7::Record`](crate::l7::Record) into an OTLP [`LogRecord`], named by
//!   `event_name` (`proctap.exec`, `proctap.exit`, `proctap.fork`,
//!   `proctap.open`, `proctap.oom_kill`, `proctap.l7`), stamped with the
//!   event's wall time, its attributes named by the OpenTelemetry semantic
//!   conventions where they have a name (`process.pid`,
//!   `process.parent_pid`, `process.executable.path`, `process.command_args`,
//!   `process.exit.code`, `thread.id`, `file.path`, `server.address`,
//!   `http.request.method`, `db.system.name`, `db.query.text`, …) and
//!   `proctap.*` otherwise. What the event itself cannot say about its
//!   process (container, pod, host-unique exec ids) comes in a
//!   [`ProcessContext`].
//! - **Delivery**: an [`Exporter`] owns a bounded queue and one sender
//!   thread. [`Exporter::try_send`] never blocks (a full queue drops the
//!   record and counts it); the thread batches records into
//!   `ExportLogsServiceRequest`s, POSTs them as protobuf to
//!   `{endpoint}/v1/logs`, retries with backoff (at least every
//!   [`ExporterConfig::max_backoff`], 2 s by default) while the receiver is
//!   down or busy, and on [`Exporter::shutdown`] makes one last attempt,
//!   bounded by [`ExporterConfig::shutdown_timeout`]. [`ExportStats`] counts
//!   every record's fate.
//!
//! ```no_run
//! use proctap::otlp::{log_record, Exporter, ExporterConfig, ProcessContext};
//!
//! let tracer = proctap::Tracer::start(&proctap::Config::new())?;
//! let exporter = Exporter::start(ExporterConfig::new("http://localhost:4318"))?;
//! for batch in tracer.events().iter().take(10) {
//!     for event in &batch {
//!         if let Some(record) = log_record(&event, &ProcessContext::default()) {
//!             exporter.try_send(record);
//!         }
//!     }
//! }
//! println!("{:?}", exporter.shutdown());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Messages are the official protocol definitions as the
//! `opentelemetry-proto` crate generates them (re-exported as [`proto`]);
//! no gRPC transport is built in. OTLP profiles exist there only as the
//! experimental `v1development` definitions and are not exported.

mod attr;
mod encode;
mod export;
mod http;
mod l7;
mod stats;

pub use encode::{log_record, EVENT_NAME_PREFIX};
pub use export::{Exporter, ExporterConfig};
pub use l7::l7_log_record;
pub use stats::ExportStats;

/// The OTLP protobuf messages (the `opentelemetry-proto` crate's).
pub use opentelemetry_proto::tonic as proto;
pub use opentelemetry_proto::tonic::logs::v1::LogRecord;

/// What is known about an event's process beyond the event itself; each
/// field present becomes an attribute of its record: `proctap.exec_id`,
/// `proctap.parent_exec_id`, `container.id`, `k8s.pod.uid`,
/// `process.linux.cgroup`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessContext<'a> {
    /// A host-unique id of the process image (one per exec).
    pub exec_id: Option<&'a str>,
    /// The exec id of its parent process.
    pub parent_exec_id: Option<&'a str>,
    /// The container it runs in (see [`crate::container`]).
    pub container_id: Option<&'a str>,
    /// The Kubernetes pod it belongs to.
    pub pod_uid: Option<&'a str>,
    /// Its cgroup v2 path.
    pub cgroup: Option<&'a str>,
}

/// Why an [`Exporter`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error(
        "OTLP endpoint {endpoint:?} is not a base URL of an OTLP/HTTP receiver: \
         give http(s)://HOST:PORT (port 4318 by default), without /v1/logs"
    )]
    InvalidEndpoint { endpoint: String },
    #[error("OTLP exporter config: {field} {problem}")]
    InvalidConfig { field: &'static str, problem: String },
    #[error("starting the OTLP sender thread failed: {0}; free some threads or memory and start again")]
    Spawn(#[source] std::io::Error),
}
