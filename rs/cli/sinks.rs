//! The `proctap` command's outputs besides JSON lines: Arrow IPC files, one
//! per kind (`trace --format arrow --out DIR`), and OTLP log records sent
//! to a collector (`export --otlp URL`).

use std::io;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use proctap::arrow::IpcDir;
use proctap::l7::Record;
use proctap::otlp::{l7_log_record, log_record, Exporter, ProcessContext};
use proctap::Event;
use serde_json::{Map, Value};

use crate::output::{Context, EventSink};

/// Every event into DIR/KIND.arrow. The fields the options add (identity,
/// container) and the L7 records have no columns: trace refuses them.
pub struct ArrowFiles {
    dir: Option<IpcDir>,
    path: PathBuf,
}

impl ArrowFiles {
    pub fn create(path: PathBuf) -> Result<ArrowFiles, String> {
        let dir = IpcDir::create(&path).map_err(|e| format!("--out {}: {e}", path.display()))?;
        Ok(ArrowFiles { dir: Some(dir), path })
    }
}

fn io_error(err: proctap::arrow::Error) -> io::Error {
    io::Error::other(err)
}

impl EventSink for ArrowFiles {
    fn event(&mut self, event: &Event<&[u8]>, _context: Context<'_>) -> io::Result<()> {
        match self.dir.as_mut() {
            Some(dir) => dir.write_event(event).map_err(io_error),
            None => Err(io::Error::other("the Arrow files were finished already")),
        }
    }

    fn l7(&mut self, _record: &Record) -> io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.dir.as_mut().map_or(Ok(()), |dir| dir.flush().map_err(io_error))
    }

    fn destination(&self) -> String {
        self.path.display().to_string()
    }

    fn finish(&mut self) -> io::Result<Map<String, Value>> {
        let files = match self.dir.take() {
            Some(dir) => dir.finish().map_err(io_error)?,
            None => Vec::new(),
        };
        let files: Vec<Value> = files.iter().map(|p| Value::String(p.display().to_string())).collect();
        Ok(Map::from_iter([("arrow_files".to_string(), Value::Array(files))]))
    }
}

/// Events and L7 records as OTLP log records, queued for the exporter's
/// thread: a full queue drops and counts, it never blocks the tracer.
pub struct OtlpLogs {
    exporter: Option<Exporter>,
    endpoint: String,
    /// CLOCK_REALTIME - CLOCK_MONOTONIC, for the L7 records' times.
    realtime_offset_ns: i64,
}

impl OtlpLogs {
    pub fn new(exporter: Exporter, endpoint: String) -> OtlpLogs {
        OtlpLogs { exporter: Some(exporter), endpoint, realtime_offset_ns: realtime_offset_ns() }
    }
}

/// Now's CLOCK_REALTIME minus CLOCK_MONOTONIC, in nanoseconds.
fn realtime_offset_ns() -> i64 {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
    wall - proctap::monotonic_ns() as i64
}

impl EventSink for OtlpLogs {
    fn event(&mut self, event: &Event<&[u8]>, context: Context<'_>) -> io::Result<()> {
        let identity = context.identity.as_ref();
        let (exec_id, parent_exec_id) = (identity.map(|i| i.exec_id()), identity.and_then(|i| i.parent_exec_id()));
        let cgroup = context.cgroup.flatten();
        let process = ProcessContext {
            exec_id: exec_id.as_deref(),
            parent_exec_id: parent_exec_id.as_deref(),
            container_id: cgroup.and_then(|c| c.ids.container_id.as_deref()),
            pod_uid: cgroup.and_then(|c| c.ids.pod_uid.as_deref()),
            cgroup: cgroup.map(|c| c.path.as_str()),
        };
        if let Some((record, exporter)) = log_record(event, &process).zip(self.exporter.as_ref()) {
            exporter.try_send(record);
        }
        Ok(())
    }

    fn l7(&mut self, record: &Record) -> io::Result<()> {
        if let Some(exporter) = self.exporter.as_ref() {
            exporter.try_send(l7_log_record(record, &ProcessContext::default(), self.realtime_offset_ns));
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        // The clocks drift apart (NTP steps the wall clock): follow them.
        self.realtime_offset_ns = realtime_offset_ns();
        Ok(())
    }

    fn destination(&self) -> String {
        self.endpoint.clone()
    }

    /// One last bounded attempt to deliver the queue; its counters.
    fn finish(&mut self) -> io::Result<Map<String, Value>> {
        let Some(exporter) = self.exporter.take() else { return Ok(Map::new()) };
        let stats = serde_json::to_value(exporter.shutdown()).map_err(io::Error::other)?;
        Ok(Map::from_iter([("otlp".to_string(), stats)]))
    }
}
