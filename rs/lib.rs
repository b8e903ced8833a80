//! proctap: a typed, loss-accounted stream of what processes do on a Linux
//! host, captured with eBPF.
//!
//! ```no_run
//! use proctap::{Config, Event, Tracer};
//!
//! let tracer = Tracer::start(&Config::new().argv_max(32 << 10))?;
//! for batch in tracer.events().iter().take(10) {
//!     for event in &batch {
//!         if let Event::Exec(exec) = event {
//!             println!("{} {:?}", exec.pid, exec.argv.iter().collect::<Vec<_>>());
//!         }
//!     }
//! }
//! println!("{:?}", tracer.stop()?);
//! # Ok::<(), proctap::Error>(())
//! ```
//!
//! Kernel programs write fixed metadata into a ring buffer and variable
//! bytes (filename, argv, stacks) into per-CPU data pages that the C loader
//! reads in place; records are copied once into reusable batch buffers and
//! decoded here without per-event allocation. Anything the kernel cannot
//! buffer is counted in [`Stats`], never dropped silently.
//!
//! Each kind of event is declared once (c/events); its Rust type, decoder,
//! JSON form and counters are generated from that declaration, as are the
//! kernel and C sides.

// Events as Arrow record batches and IPC files, one table per kind (the
// `arrow` feature; its docs are the module's own, where their links resolve).
#[cfg(feature = "arrow")]
#[path = "arrow/mod.rs"]
pub mod arrow;
mod binding;
mod config;
mod error;
mod event;
#[cfg(test)]
mod prebuilt_tests;
mod tracer;

/// CPU profiles from stack samples: symbolization, folded stacks, flamegraphs, pprof.
/// (The default `profile` feature.)
#[cfg(feature = "profile")]
pub mod profile;

#[path = "container/mod.rs"]
pub mod container;

#[path = "process/mod.rs"]
pub mod process;

/// L7 requests and responses paired from the bytes of followed connections.
#[path = "l7/mod.rs"]
pub mod l7;

// Events and L7 records as OpenTelemetry log records, exported over
// OTLP/HTTP (the `otlp` feature; its docs are the module's own).
#[cfg(feature = "otlp")]
#[path = "otlp/mod.rs"]
pub mod otlp;

pub use binding::monotonic_ns;
pub use config::{Config, ExitProbe, Profiler, SyntheticSource, SyntheticTransport, Unwind};
pub use error::Error;
// The event types: those generated from the registry (one per kind, with
// their enums, `Event` and `EventKind`) and the value types they are made of.
pub use event::*;
#[cfg(feature = "tokio")]
pub use tracer::BatchStream;
pub use tracer::{Batch, KindStats, Stats, StopHandle, Targets, Tracer};

/// Encoding of records as the C loader writes them, and the C library's
/// JSON of a record, for tests and benches.
#[doc(hidden)]
pub mod testing {
    pub use crate::binding::format_json;
    pub use crate::event::testing::*;
    pub use crate::tracer::BatchPipe;
}
