//! Events as Apache Arrow tables (the `arrow` feature): in memory, one
//! [`RecordBatch`] per kind ([`Tables`], [`record_batches`]); on disk, one
//! Arrow IPC file per kind ([`IpcDir`]).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use proctap::{arrow::IpcDir, Config, Tracer};
//!
//! let tracer = Tracer::start(&Config::new())?;
//! let mut out = IpcDir::create("trace")?;          // trace/exec.arrow, trace/exit.arrow, ...
//! for batch in tracer.events().iter().take(100) {
//!     out.write(&batch)?;
//! }
//! out.finish()?;
//! # Ok(()) }
//! ```
//!
//! Each kind's schema comes from its declaration (c/events), like its Rust
//! type and its JSON. A row holds what the kind's JSON object holds, one
//! column per key, named and ordered as the keys:
//!
//! - `ts_ns` UInt64; `time` Timestamp(ns, UTC); `pid`, `tid` UInt32 and `cpu`
//!   UInt16 for kinds that show them;
//! - integer fields as the matching Arrow integers; derived durations
//!   (`duration_ns`) UInt64;
//! - command names, strings and bytes (`comm`, `filename`, `data`) Binary:
//!   their bytes need not be UTF-8 (JSON shows those as `{"hex": ...}`);
//! - `argv` `List<Binary>`, one element per argument; stacks `List<UInt64>`,
//!   return addresses innermost first (JSON prints them in hex);
//! - enum fields and event kinds (`role`, a loss report's `kind`)
//!   `Dictionary<UInt8, Utf8>` of their names, the same dictionary in every
//!   batch;
//! - an exit status as JSON shows it (`exit_code` UInt8, `signal` UInt8 or
//!   null, `core_dumped` Boolean), plus `exit_status`, the raw
//!   `task->exit_code`;
//! - an errno Int32, positive, null when there is none (JSON shows
//!   `{"errno": N}` or leaves the key out); a syscall result Int64 and its
//!   `errno` Int32, one of them null;
//! - socket addresses Utf8 as JSON prints them (`"[::1]:80"`), or null;
//! - flags and `data_lost` Boolean;
//! - a declared tracepoint's attributes, a Struct column `args`.
//!
//! Columns JSON does not always show carry the field metadata
//! [`JSON_METADATA`]: `if_set` (JSON has the key only when the flag is true
//! or the value not null) or `hidden` (JSON never has it: fields declared
//! `json = false`, `exit_status`). The schema metadata [`TYPE_METADATA`]
//! holds the events' JSON `type`.

mod columns;
mod generated;
mod ipc;
mod tables;

use std::path::PathBuf;

pub use arrow_array::RecordBatch;
pub use arrow_schema::{ArrowError, SchemaRef};
/// The Arrow crates proctap builds with, to read its batches with the same versions.
pub use {arrow_array, arrow_schema};

pub use columns::{JSON_METADATA, TYPE_METADATA};
pub use ipc::IpcDir;
pub use tables::{record_batches, schema, Tables};

use crate::event::EventKind;

/// What can go wrong converting events or writing their files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The output directory could not be created.
    #[error("creating the Arrow output directory {path}: {source}; give a directory you may create and write in")]
    CreateDir { path: PathBuf, source: std::io::Error },

    /// The output directory holds a kind's file already.
    #[error("{path} exists, from an earlier trace; remove it or write into another directory")]
    Exists { path: PathBuf },

    /// A kind's file could not be created.
    #[error("creating {path}: {source}; check the directory's permissions and its file system's free space")]
    CreateFile { path: PathBuf, source: std::io::Error },

    /// Writing a kind's file failed.
    #[error("writing {path}: {source}; check its file system's free space")]
    Write { path: PathBuf, source: ArrowError },

    /// Building a kind's record batch failed: a bug in proctap's generated
    /// tables, never caused by the events.
    #[error("converting {kind} events into Arrow columns: {source}; this is a bug in proctap, please report it")]
    Convert { kind: EventKind, source: ArrowError },
}
